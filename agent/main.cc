// strait-agent: GOST-compatible command line (-L, -F, -C, -O, -D, -V) over Strait's runtime.
#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <thread>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include "agent/channel/registry.h"
#include "agent/control/controller_client.h"
#include "common/agent_certificate.h"
#include "agent/connector/registry.h"
#include "agent/handler/registry.h"
#include "agent/net/pipe_pool.h"
#include "agent/net/resolver.h"
#include "agent/runtime/config_sources.h"
#include "agent/runtime/runtime.h"
#include "agent/runtime/takeover.h"
#include "common/cmdline_config.h"
#include "common/config_file.h"
#include "common/duration.h"
#include "common/logging.h"
#include "common/strings.h"

namespace {

namespace asio = boost::asio;
using strait::config::v1::Config;

constexpr const char* kVersion = STRAIT_VERSION;
constexpr int kExitUsage = 2;
constexpr int kExitRuntime = 1;

strait::common::KnownTypes known_types() {
  return {strait::agent::handler_types(), strait::agent::listener_types(), strait::agent::connector_types(),
          strait::agent::dialer_types()};
}

// GOST's fallback when neither -C nor -L is given: gost.{yaml,yml,json} in /etc/gost,
// $HOME/.gost and the working directory, first found wins.
std::string default_config_file() {
  std::vector<std::string> folders = {"/etc/gost"};
  if (const char* home = std::getenv("HOME")) folders.push_back(std::string(home) + "/.gost");
  folders.push_back(".");
  for (const auto& folder : folders) {
    for (const char* name : {"gost.yaml", "gost.yml", "gost.json"}) {
      std::string path = folder + "/" + name;
      if (std::filesystem::is_regular_file(path)) return path;
    }
  }
  return "";
}

// The config file (if any) merged with the -L/-F flags, file first, as GOST does.
absl::StatusOr<Config> effective_config(const std::string& config_argument, const std::vector<std::string>& services,
                                        const std::vector<std::string>& nodes) {
  Config config;
  if (!config_argument.empty()) {
    auto loaded = strait::common::load_config_argument(config_argument);
    if (!loaded.ok()) return loaded.status();
    for (const auto& warning : loaded->warnings) std::cerr << "strait-agent: warning: " << warning << "\n";
    config = std::move(loaded->config);
  }
  auto from_flags = strait::common::build_config_from_cmdline(services, nodes, known_types());
  if (!from_flags.ok()) return from_flags.status();
  strait::common::merge_config(config, *from_flags);
  return config;
}

// SIGHUP: re-read the config file and apply it through the same drain-safe entry point.
void reload(const std::string& config_argument, const std::vector<std::string>& services,
            const std::vector<std::string>& nodes, strait::agent::ConfigSources& sources) {
  if (config_argument.empty()) {
    spdlog::info("SIGHUP: no config file (-C) to reload");
    return;
  }
  auto config = effective_config(config_argument, services, nodes);
  if (!config.ok()) {
    spdlog::error("SIGHUP: {}; still serving the previous config", strait::common::to_std(config.status().message()));
    return;
  }
  auto applied = sources.set_local(*std::move(config));
  if (!applied.ok()) {
    spdlog::error("SIGHUP: {}; still serving the previous config", strait::common::to_std(applied.message()));
    return;
  }
  spdlog::info("SIGHUP: reloaded {}", config_argument);
}

// Says (at most every 10 s) that the log output could not keep up and lines were dropped.
class DroppedLogReport {
 public:
  void check() {
    auto now = std::chrono::steady_clock::now();
    size_t dropped = strait::common::dropped_log_lines();
    if (dropped == reported_ || now < next_) return;
    spdlog::warn("log output too slow: {} lines dropped so far", dropped);
    reported_ = dropped;
    next_ = now + std::chrono::seconds(10);
  }

 private:
  size_t reported_ = 0;
  std::chrono::steady_clock::time_point next_;
};

// Re-arms itself to end draining services whose connections are gone.
void schedule_reaping(asio::steady_timer& timer, strait::agent::Runtime& runtime, DroppedLogReport& log_report) {
  timer.expires_after(std::chrono::milliseconds(500));
  timer.async_wait([&timer, &runtime, &log_report](const boost::system::error_code& ec) {
    if (ec) return;
    runtime.reap_draining();
    log_report.check();
    schedule_reaping(timer, runtime, log_report);
  });
}

// Flushes the log queue and exits; when the output stopped taking lines (a pipe nobody
// reads), exits without waiting for its writer thread, which would never end.
int exit_after_logs(int code) {
  if (!strait::common::flush_logging(std::chrono::seconds(2))) std::_Exit(code);
  spdlog::shutdown();
  return code;
}

struct ControlFlags {
  std::string controller;
  std::string join_token;
  std::string join_token_file;
  std::string ca_file;
  std::string labels;
  std::string state_dir = "/var/lib/strait-agent";
  std::string agent_id;
};

std::string read_text_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return "";
  std::stringstream contents;
  contents << in.rdbuf();
  return std::string(strait::common::strip_whitespace(contents.str()));
}

// "k=v,k2=v2" as a map; an entry without '=' is an error naming it.
absl::StatusOr<std::map<std::string, std::string>> parse_labels(const std::string& text) {
  std::map<std::string, std::string> labels;
  for (std::string_view entry : strait::common::split(text, ',', true)) {
    auto equals = entry.find('=');
    if (equals == std::string_view::npos || equals == 0) {
      return absl::InvalidArgumentError(strait::common::str_cat("--labels: \"", entry, "\" is not key=value"));
    }
    labels[std::string(strait::common::strip_whitespace(entry.substr(0, equals)))] =
        std::string(strait::common::strip_whitespace(entry.substr(equals + 1)));
  }
  return labels;
}

std::vector<std::string> capabilities() {
  std::vector<std::string> out;
  for (const auto& type : strait::agent::handler_types()) out.push_back("handler/" + type);
  for (const auto& type : strait::agent::listener_types()) out.push_back("listener/" + type);
  for (const auto& type : strait::agent::connector_types()) out.push_back("connector/" + type);
  for (const auto& type : strait::agent::dialer_types()) out.push_back("dialer/" + type);
  return out;
}

strait::control::v1::Status status_of(const strait::agent::Runtime& runtime) {
  strait::control::v1::Status status;
  for (const auto& report : runtime.report()) {
    auto& service = *status.add_services();
    service.set_name(report.name);
    service.set_listening(true);
    service.set_address(report.address);
    service.set_active_connections(report.active_connections);
    service.set_total_connections(report.connections);
    service.set_bytes_from_clients(report.bytes_from_clients);
    service.set_bytes_to_clients(report.bytes_to_clients);
    service.set_errors(report.errors);
    service.set_draining_connections(report.draining_connections);
  }
  return status;
}

// Raises the soft descriptor limit to the hard one, as Go does at start for GOST: a proxy
// needs two descriptors per connection, and systemd's default soft limit is 1024.
struct DescriptorLimit {
  rlim_t before = 0;
  rlim_t now = 0;
};

DescriptorLimit raise_descriptor_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return {1024, 1024};
  DescriptorLimit out{limit.rlim_cur, limit.rlim_cur};
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised{limit.rlim_max, limit.rlim_max};
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) out.now = limit.rlim_max;
  }
  return out;
}

// How the descriptors are shared out when the flags do not say: an eighth for splice pipes
// (two each), a small reserve for listeners, logs and the control plane, and two per
// connection for the rest.
struct DescriptorBudget {
  size_t pipes = 0;
  size_t connections = 0;
};

DescriptorBudget budget_for(rlim_t descriptors, size_t pipes_flag, size_t connections_flag) {
  constexpr size_t kReserve = 64;
  size_t total = static_cast<size_t>(std::min<rlim_t>(descriptors, 1u << 24));
  DescriptorBudget budget;
  budget.pipes = pipes_flag > 0 ? pipes_flag : total / 16;
  size_t left = total > kReserve + 2 * budget.pipes ? total - kReserve - 2 * budget.pipes : 0;
  budget.connections = connections_flag > 0 ? connections_flag : std::max<size_t>(1, left / 2);
  return budget;
}

std::string default_agent_id() {
  char hostname[256] = {};
  if (::gethostname(hostname, sizeof hostname - 1) != 0 || hostname[0] == '\0') return "agent";
  return hostname;
}

}  // namespace

int main(int argc, char** argv) {
  // Signals are taken by the main thread only: blocked before any thread starts (the log
  // writer, workers, lookups), unblocked once their handler is in place.
  sigset_t blocked;
  sigemptyset(&blocked);
  for (int signal_number : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) sigaddset(&blocked, signal_number);
  pthread_sigmask(SIG_BLOCK, &blocked, nullptr);
  CLI::App app{"strait-agent: runs Strait services and chains (GOST-compatible command line)"};
  std::vector<std::string> services;
  std::vector<std::string> nodes;
  std::string config_argument;
  std::string output_format;
  bool debug = false;
  bool version = false;
  std::string drain_timeout_text = "30s";
  unsigned worker_count = std::max(1u, std::thread::hardware_concurrency());
  app.add_option("-L", services, "service: [handler+listener://][user:pass@]addr[/targets][?key=value]");
  app.add_option("-F", nodes, "chain node (one hop per -F): [connector+dialer://][user:pass@]addr[?key=value]");
  app.add_option("-C", config_argument, "config file (YAML or JSON) or inline JSON");
  app.add_option("-O", output_format, "print the effective config as yaml or json and exit")
      ->check(CLI::IsMember({"yaml", "json"}));
  app.add_flag("-D", debug, "debug logging");
  app.add_flag("-V,--version", version, "print the version and exit");
  app.add_option("--drain-timeout", drain_timeout_text, "on SIGTERM/SIGINT, how long open connections may finish");
  app.add_option("--workers", worker_count, "worker threads (default: one per core)")->check(CLI::Range(1u, 1024u));
  size_t max_connections = 0;
  size_t max_pipes = 0;
  size_t pipe_size = 0;
  size_t dns_threads = 32;
  std::string dns_ttl_text = "30s";
  app.add_option("--max-connections", max_connections,
                 "open connections of the whole agent; beyond, new ones wait in the listen queue (default: from the "
                 "descriptor limit)");
  app.add_option("--max-pipes", max_pipes, "splice pipes of the whole agent (default: from the descriptor limit)");
  app.add_option("--pipe-size", pipe_size, "splice pipe size in bytes (default: the kernel's, 64 KiB)")
      ->check(CLI::Range(size_t{4096}, size_t{1} << 24));
  app.add_option("--dns-threads", dns_threads, "name lookups in progress at once")->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{1024}));
  app.add_option("--dns-cache-ttl", dns_ttl_text, "how long a looked-up name is remembered (0s: not at all)")
      ->capture_default_str();
  std::string takeover_path;
  app.add_option("--takeover", takeover_path,
                 "unix socket for binary upgrades: take the listening sockets of the agent serving there (if any), "
                 "tell it to drain, then serve the next upgrade from there");
  ControlFlags control_flags;
  app.add_option("--controller", control_flags.controller, "strait-controller agent address host:port (TLS); several replicas: a:7770,b:7770, tried in turn");
  app.add_option("--join-token", control_flags.join_token, "join token to enrol with (prefer --join-token-file: argv is visible)");
  app.add_option("--join-token-file", control_flags.join_token_file, "file holding the join token, read at each enrolment");
  app.add_option("--ca-file", control_flags.ca_file, "CA certificate to trust for the controller (its data dir's ca.pem)");
  app.add_option("--labels", control_flags.labels, "labels to ask for at enrolment: k=v,k2=v2 (the token decides)");
  app.add_option("--state-dir", control_flags.state_dir, "the agent's certificate and last applied snapshot")->capture_default_str();
  app.add_option("--agent-id", control_flags.agent_id, "id to enrol as (default: the enrolled one, else the host name)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitUsage;
  }
  if (version) {
    std::cout << "strait-agent " << kVersion << " (gost-compatible command line)\n";
    return 0;
  }
  auto drain_timeout = strait::common::parse_timeout(drain_timeout_text);
  if (!drain_timeout.ok()) {
    std::cerr << "strait-agent: --drain-timeout: " << drain_timeout.status().message() << "\n";
    return kExitUsage;
  }
  auto dns_ttl = strait::common::parse_timeout(dns_ttl_text);
  if (!dns_ttl.ok()) {
    std::cerr << "strait-agent: --dns-cache-ttl: " << dns_ttl.status().message() << "\n";
    return kExitUsage;
  }

  const bool controlled = !control_flags.controller.empty();
  if (config_argument.empty() && services.empty() && !controlled) config_argument = default_config_file();
  auto loaded = effective_config(config_argument, services, nodes);
  if (!loaded.ok()) {
    std::cerr << "strait-agent: " << loaded.status().message() << "\n";
    return kExitUsage;
  }
  Config config = *std::move(loaded);

  if (!output_format.empty()) {
    std::cout << (output_format == "json" ? strait::common::config_to_json(config)
                                          : strait::common::config_to_yaml(config));
    return 0;
  }
  if (auto status = strait::common::configure_logging(config.log(), debug); !status.ok()) {
    std::cerr << "strait-agent: " << status.message() << "\n";
    return kExitUsage;
  }
  if (config.services().empty() && !controlled) {
    std::cerr << "strait-agent: nothing to serve: give -L (e.g. -L http://:8080), -C with services, or --controller\n";
    return kExitUsage;
  }
  strait::agent::ControllerClientOptions control_options;
  std::optional<strait::agent::StateDir> state_dir;
  std::optional<strait::control::v1::Snapshot> persisted;
  if (controlled) {
    auto labels = parse_labels(control_flags.labels);
    if (!labels.ok()) {
      std::cerr << "strait-agent: " << labels.status().message() << "\n";
      return kExitUsage;
    }
    std::string ca_pem;
    if (!control_flags.ca_file.empty()) {
      ca_pem = read_text_file(control_flags.ca_file);
      if (ca_pem.empty()) {
        std::cerr << "strait-agent: --ca-file " << control_flags.ca_file << " is missing or empty\n";
        return kExitUsage;
      }
    }
    auto opened = strait::agent::StateDir::open(control_flags.state_dir);
    if (!opened.ok()) {
      std::cerr << "strait-agent: " << opened.status().message() << "\n";
      return kExitRuntime;
    }
    state_dir.emplace(*std::move(opened));
    auto identity = state_dir->load_identity();
    if (!identity.ok()) {
      std::cerr << "strait-agent: " << identity.status().message() << "\n";
      return kExitRuntime;
    }
    std::string enrolled_id;
    if (*identity) {
      auto facts = strait::common::read_certificate((*identity)->cert_pem);
      if (facts.ok()) enrolled_id = facts->agent_id;
    }
    if (!enrolled_id.empty() && !control_flags.agent_id.empty() && control_flags.agent_id != enrolled_id) {
      std::cerr << "strait-agent: --agent-id " << control_flags.agent_id << ": this state dir holds the identity of agent "
                << enrolled_id << "; use another --state-dir, or remove " << state_dir->identity_path()
                << " after `straitctl agents delete " << enrolled_id << "`\n";
      return kExitUsage;
    }
    if (!*identity && control_flags.join_token.empty() && control_flags.join_token_file.empty()) {
      std::cerr << "strait-agent: --controller: this agent is not enrolled yet; give --join-token-file (or --join-token)\n";
      return kExitUsage;
    }
    auto snapshot = state_dir->load_snapshot();
    if (!snapshot.ok()) {
      spdlog::warn("{}; starting without it", strait::common::to_std(snapshot.status().message()));
    } else {
      persisted = *std::move(snapshot);
    }
    for (auto address : strait::common::split(control_flags.controller, ',', true)) {
      if (address = strait::common::strip_whitespace(address); !address.empty()) {
        control_options.addresses.emplace_back(address);
      }
    }
    if (control_options.addresses.empty()) {
      std::cerr << "strait-agent: --controller: no address in \"" << control_flags.controller << "\"\n";
      return kExitUsage;
    }
    control_options.join_token = control_flags.join_token;
    control_options.join_token_file = control_flags.join_token_file;
    control_options.identity = *std::move(identity);
    control_options.ca_pem = ca_pem;
    control_options.agent_id = !control_flags.agent_id.empty() ? control_flags.agent_id
                               : !enrolled_id.empty()         ? enrolled_id
                                                              : default_agent_id();
    control_options.labels = *std::move(labels);
    control_options.agent_version = kVersion;
    control_options.capabilities = capabilities();
  }

  auto descriptors = raise_descriptor_limit();
  auto budget = budget_for(descriptors.now, max_pipes, max_connections);
  strait::agent::PipePool::configure(
      {std::max<size_t>(1, budget.pipes / std::max<size_t>(1, worker_count)), pipe_size});
  strait::agent::ResolverOptions resolver_options;
  resolver_options.max_threads = dns_threads;
  resolver_options.ttl = *dns_ttl;
  strait::agent::Resolver::configure(resolver_options);
  spdlog::info("descriptors: {}{}; up to {} connections and {} splice pipes", descriptors.now,
               descriptors.now != descriptors.before ? strait::common::str_cat(" (raised from ", descriptors.before, ")")
                                                     : std::string(),
               budget.connections, budget.pipes);


  strait::agent::InheritedSockets inherited;
  size_t from_systemd = strait::agent::add_systemd_sockets(inherited);
  if (from_systemd > 0) spdlog::info("systemd passed {} listening sockets", from_systemd);
  std::unique_ptr<strait::agent::Handover> handover;
  if (!takeover_path.empty()) {
    auto taken = strait::agent::take_over(takeover_path, inherited, std::chrono::seconds(5));
    if (!taken.ok()) {
      std::cerr << "strait-agent: " << taken.status().message() << "\n";
      return kExitRuntime;
    }
    handover = *std::move(taken);
    if (handover) spdlog::info("takeover: took {} listening sockets from the agent at {}", inherited.size(), takeover_path);
  }

  strait::agent::Workers workers(worker_count);
  strait::agent::Runtime runtime(workers, *drain_timeout, budget.connections);
  runtime.adopt(std::move(inherited));
  strait::agent::ConfigSources sources(runtime);
  auto applied = sources.set_local(config);
  if (applied.ok() && persisted) {
    // The controller may be away: serve what it last gave until it says otherwise.
    auto restored = sources.set_controller(persisted->config());
    if (restored.ok()) {
      spdlog::info("serving snapshot {} from the state dir until the controller answers", persisted->version());
    } else {
      spdlog::warn("the persisted snapshot {} no longer applies: {}", persisted->version(),
                   strait::common::to_std(restored.message()));
      persisted.reset();
    }
  }
  if (!applied.ok()) {
    spdlog::error("{}", strait::common::to_std(applied.message()));
    std::cerr << "strait-agent: " << applied.message() << "\n";
    if (handover) spdlog::error("takeover: not taking over; the agent at {} goes on serving", takeover_path);
    runtime.close_unclaimed_sockets();
    workers.stop();
    return exit_after_logs(absl::IsUnavailable(applied) ? kExitRuntime : kExitUsage);
  }
  runtime.close_unclaimed_sockets();
  if (handover) {
    // This agent serves on the sockets now: the old one may stop accepting and drain.
    if (auto drained = handover->tell_old_agent_to_drain(); !drained.ok()) {
      spdlog::warn("{}", strait::common::to_std(drained.message()));
    } else {
      spdlog::info("takeover: serving; the previous agent drains and exits");
    }
    handover.reset();
  }
  std::unique_ptr<strait::agent::ControllerClient> controller;
  if (controlled) {
    controller = std::make_unique<strait::agent::ControllerClient>(
        control_options, *state_dir, [&sources](const Config& snapshot) { return sources.set_controller(snapshot); },
        [&runtime] { return status_of(runtime); }, persisted);
    controller->start();
  }

  // The signal_set installs its handlers before the signals are unblocked, so a signal that
  // arrived while the listeners were starting is handled, not fatal.
  asio::io_context control;
  asio::signal_set signals(control, SIGINT, SIGTERM, SIGHUP);
  std::signal(SIGPIPE, SIG_IGN);
  pthread_sigmask(SIG_UNBLOCK, &blocked, nullptr);
  std::unique_ptr<strait::agent::TakeoverServer> takeover_server;
  if (!takeover_path.empty()) {
    auto server = strait::agent::TakeoverServer::listen(
        control, takeover_path, [&runtime] { return runtime.listening_sockets(); },
        [] { ::kill(::getpid(), SIGTERM); });
    if (!server.ok()) {
      spdlog::warn("{}; upgrades by takeover are off", strait::common::to_std(server.status().message()));
    } else {
      takeover_server = *std::move(server);
    }
  }
  asio::steady_timer reaper(control);
  DroppedLogReport log_report;
  schedule_reaping(reaper, runtime, log_report);
  int received = 0;
  std::function<void(const boost::system::error_code&, int)> on_signal = [&](const boost::system::error_code& ec,
                                                                              int signal_number) {
    if (ec) return;
    if (signal_number == SIGHUP) {
      reload(config_argument, services, nodes, sources);
      signals.async_wait(on_signal);
      return;
    }
    received = signal_number;
    reaper.cancel();
    takeover_server.reset();  // nothing may keep the control loop running now
  };
  signals.async_wait(on_signal);
  control.run();
  spdlog::info("received {}, stopping (grace {})", received == SIGINT ? "SIGINT" : "SIGTERM",
               strait::common::format_duration(*drain_timeout));
  if (controller) controller->stop();
  runtime.shutdown(*drain_timeout);
  workers.stop();
  spdlog::info("stopped");
  return exit_after_logs(0);
}
