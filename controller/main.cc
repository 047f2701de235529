// strait-controller: holds the fleet's desired state and pushes each agent its snapshot.
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <iostream>

#include <CLI/CLI.hpp>
#include <grpcpp/grpcpp.h>
#include <cstdlib>

#include <spdlog/spdlog.h>

#include "absl/synchronization/mutex.h"

#include "common/duration.h"
#include "common/log_escape.h"
#include "common/logging.h"
#include "common/strings.h"
#include "controller/server/admin_service.h"
#include "controller/server/agent_service.h"
#include "controller/server/certificates.h"
#include "controller/server/enrollment.h"
#include "controller/server/http_endpoints.h"
#include "controller/server/tls_settings.h"
#include "controller/store/etcd_store.h"
#include "controller/store/sqlite_store.h"

namespace {

using namespace strait::controller;
constexpr const char* kVersion = STRAIT_VERSION;
constexpr int kExitUsage = 2;
constexpr int kExitRuntime = 1;

struct Options {
  std::string data_dir = "strait-data";
  std::string listen_agents = "0.0.0.0:7770";
  std::string listen_admin = "0.0.0.0:7771";
  std::string listen_http = "0.0.0.0:7772";
  std::string tls_cert;
  std::string tls_key;
  std::vector<std::string> tls_names;
  std::string admin_token_file;
  std::string bootstrap_token_file;
  std::string ca_dir;
  std::string store = "sqlite";
  std::string replica_name;
  std::vector<std::string> etcd_endpoints;
  std::string etcd_prefix = "/strait/";
  std::string etcd_ca_file;
  std::string etcd_cert_file;
  std::string etcd_key_file;
  std::string etcd_username;
  std::string etcd_password_file;
  int coalesce_ms = 20;
  std::string agent_cert_ttl = "720h";
  std::string agent_retention = "24h";
  std::string bootstrap_token_ttl = "1h";
  std::string bootstrap_token_labels;
  double enroll_rate = 20;
  bool debug = false;
};

// A gRPC server on one address with the controller's TLS identity; the bound port is
// written to `port`. With `client_ca_pem`, a client certificate is checked against that CA
// when one is presented (agents have one once enrolled; enrolment itself comes without).
// `many_peers`: the agent port, tuned for thousands of long-lived connections.
std::unique_ptr<grpc::Server> serve(const std::string& address, grpc::Service* service, const ServerCertificate& tls,
                                    const std::string& client_ca_pem, bool many_peers, int& port) {
  grpc::SslServerCredentialsOptions ssl(client_ca_pem.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                                              : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  ssl.pem_root_certs = client_ca_pem;
  ssl.pem_key_cert_pairs.push_back({tls.key_pem, tls.cert_pem});
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, grpc::SslServerCredentials(ssl), &port);
  // A status report of a thousand services is far below this; a larger message is refused.
  builder.SetMaxReceiveMessageSize(4 << 20);
  builder.RegisterService(service);
  // Dead agents (a host gone without closing TCP) are noticed within a minute.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  if (many_peers) {
    // Measured at 2 000 agents (bench/RESULTS.md, "Run of 2026-12-01 (2)"): with both off,
    // a change costs the controller 45 % less CPU and a connection 19 % less. With BDP
    // probing, data from an agent (every ACK) may start a ping that the agent has to answer;
    // what agents send is small, so the default window suffices. Channelz keeps a node per
    // connection for a debugging service the controller does not run.
    builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    builder.AddChannelArgument(GRPC_ARG_ENABLE_CHANNELZ, 0);
  }
  return builder.BuildAndStart();
}

// Unique among replicas on one host; the Helm chart passes the pod name instead.
std::string default_replica_name() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') std::snprintf(host, sizeof host, "controller");
  return strait::common::str_cat(host, "-", getpid());
}

// "k=v,k2=*" -> map; an error names the entry.
absl::StatusOr<std::map<std::string, std::string>> parse_grants(const std::string& text) {
  std::map<std::string, std::string> grants;
  for (auto entry : strait::common::split(text, ',', true)) {
    auto equals = entry.find('=');
    if (equals == std::string_view::npos) {
      return absl::InvalidArgumentError(strait::common::str_cat("--bootstrap-token-labels: \"", entry, "\" is not key=value"));
    }
    grants[std::string(entry.substr(0, equals))] = std::string(entry.substr(equals + 1));
  }
  return grants;
}

// A bootstrap join token on first start, so the first agents can join before anyone runs
// `straitctl token create`. It expires soon unless the operator says otherwise.
absl::Status ensure_bootstrap_token(const std::string& path, Credentials& credentials, int64_t ttl_seconds,
                                    const std::map<std::string, std::string>& grants) {
  if (std::filesystem::exists(path)) {
    std::ifstream in(path);
    std::string token;
    std::getline(in, token);
    if (!credentials.join_token("Bearer " + token)) {
      spdlog::info("the bootstrap join token in {} has expired or was deleted; `straitctl token create` makes another",
                   path);
    }
    return absl::OkStatus();
  }
  auto token = credentials.create_join_token("bootstrap", ttl_seconds, grants);
  if (!token.ok()) return token.status();
  mode_t previous = ::umask(077);
  std::ofstream out(path);
  out << token->token() << "\n";
  out.close();
  ::umask(previous);
  if (!out) return absl::UnavailableError("cannot write " + path);
  return absl::OkStatus();
}

// The bootstrap join token chosen by the operator (a mounted Kubernetes Secret): registered
// on first sight and left alone after, so rotating it means writing another one.
absl::Status import_bootstrap_token(const std::string& path, Credentials& credentials, int64_t ttl_seconds,
                                    const std::map<std::string, std::string>& grants) {
  auto secret = read_secret(path);
  if (!secret.ok()) return secret.status();
  auto id = credentials.import_join_token(*secret, "bootstrap from " + path, ttl_seconds, grants);
  if (!id.ok()) return absl::InvalidArgumentError(strait::common::str_cat("--bootstrap-token-file ", path, ": ",
                                                                          id.status().message()));
  if (credentials.join_token("Bearer " + *secret)) {
    spdlog::info("bootstrap join token {} from {}", *id, path);
  } else {
    spdlog::warn("the bootstrap join token in {} ({}) has expired; write another one there", path, *id);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Store>> open_store(const Options& options) {
  if (options.store == "sqlite") return open_sqlite_store(options.data_dir + "/strait.db");
  if (options.store != "etcd") {
    return absl::InvalidArgumentError(strait::common::str_cat("--store ", options.store, ": sqlite or etcd"));
  }
  EtcdStoreOptions etcd;
  etcd.prefix = options.etcd_prefix;
  etcd.controller_name = options.replica_name;
  etcd.etcd.endpoints = options.etcd_endpoints;
  etcd.etcd.ca_file = options.etcd_ca_file;
  etcd.etcd.cert_file = options.etcd_cert_file;
  etcd.etcd.key_file = options.etcd_key_file;
  etcd.etcd.username = options.etcd_username;
  if (options.etcd_username.empty() != options.etcd_password_file.empty()) {
    return absl::InvalidArgumentError("--etcd-username and --etcd-password-file go together");
  }
  if (!options.etcd_password_file.empty()) {
    auto password = read_secret(options.etcd_password_file);
    if (!password.ok()) {
      return absl::InvalidArgumentError(strait::common::str_cat("--etcd-password-file: ", password.status().message()));
    }
    etcd.etcd.password = *password;
  }
  return open_etcd_store(etcd);
}

std::string store_description(const Options& options) {
  if (options.store == "sqlite") return "sqlite " + options.data_dir + "/strait.db";
  return strait::common::str_cat("etcd ", strait::common::join(options.etcd_endpoints, ","), " under ",
                                 options.etcd_prefix);
}

int run(const Options& options) {
  std::error_code fs_error;
  std::filesystem::create_directories(options.data_dir, fs_error);
  if (fs_error) {
    std::cerr << "strait-controller: cannot create --data-dir " << options.data_dir << ": " << fs_error.message() << "\n";
    return kExitRuntime;
  }
  auto store = open_store(options);
  if (!store.ok()) {
    std::cerr << "strait-controller: " << store.status().message() << "\n";
    return absl::IsInvalidArgument(store.status()) ? kExitUsage : kExitRuntime;
  }
  auto seconds_of = [](const std::string& flag, const std::string& text) -> absl::StatusOr<std::chrono::seconds> {
    auto value = strait::common::parse_timeout(text);
    if (!value.ok()) return absl::InvalidArgumentError(strait::common::str_cat(flag, ": ", value.status().message()));
    return std::chrono::duration_cast<std::chrono::seconds>(*value);
  };
  auto cert_ttl = seconds_of("--agent-cert-ttl", options.agent_cert_ttl);
  auto retention = seconds_of("--agent-retention", options.agent_retention);
  auto bootstrap_ttl = seconds_of("--bootstrap-token-ttl", options.bootstrap_token_ttl);
  auto grants = parse_grants(options.bootstrap_token_labels);
  for (const absl::Status& status : {cert_ttl.status(), retention.status(), bootstrap_ttl.status(), grants.status()}) {
    if (!status.ok()) {
      std::cerr << "strait-controller: " << status.message() << "\n";
      return kExitUsage;
    }
  }
  if (cert_ttl->count() < 2) {
    std::cerr << "strait-controller: --agent-cert-ttl: at least 2s\n";
    return kExitUsage;
  }
  bool created_ca = false;
  auto authority =
      CertificateAuthority::load_or_create(options.ca_dir.empty() ? options.data_dir : options.ca_dir, created_ca);
  if (!authority.ok()) {
    std::cerr << "strait-controller: " << authority.status().message() << "\n";
    return kExitUsage;
  }
  bool own_server_certificate = options.tls_cert.empty() && options.tls_key.empty();
  auto tls = own_server_certificate ? authority->issue_server(options.tls_names)
                                    : read_server_certificate(options.tls_cert, options.tls_key);
  if (!tls.ok()) {
    std::cerr << "strait-controller: " << tls.status().message() << "\n";
    return kExitUsage;
  }
  std::string admin_token_path =
      options.admin_token_file.empty() ? options.data_dir + "/admin.token" : options.admin_token_file;
  auto admin_token = load_or_create_secret(admin_token_path);
  if (!admin_token.ok()) {
    std::cerr << "strait-controller: admin token: " << admin_token.status().message() << "\n";
    return kExitRuntime;
  }
  ControllerMetrics metrics;
  Credentials credentials(**store, *admin_token);
  std::string join_token_path =
      options.bootstrap_token_file.empty() ? options.data_dir + "/join.token" : options.bootstrap_token_file;
  absl::Status bootstrap = options.bootstrap_token_file.empty()
                               ? ensure_bootstrap_token(join_token_path, credentials, bootstrap_ttl->count(), *grants)
                               : import_bootstrap_token(join_token_path, credentials, bootstrap_ttl->count(), *grants);
  if (!bootstrap.ok()) {
    std::cerr << "strait-controller: " << bootstrap.message() << "\n";
    return kExitRuntime;
  }
  metrics.store_revision.store((*store)->revision());
  if (auto tokens = (*store)->list_tokens(); tokens.ok()) {
    for (const auto& token : *tokens) {
      if (token.grants.contains("*")) {
        spdlog::warn("join token {} ({}) predates label grants and lets agents enrol with any label; replace it: "
                     "straitctl token create --labels ..., then straitctl token delete {}",
                     token.id, strait::common::text_escaped(token.description), token.id);
      }
    }
  }

  FleetOptions fleet_options;
  fleet_options.coalesce = std::chrono::milliseconds(options.coalesce_ms);
  fleet_options.retention = *retention;
  fleet_options.controller_name = options.replica_name;
  Fleet fleet(**store, metrics, fleet_options);
  if (auto status = fleet.load(); !status.ok()) {
    std::cerr << "strait-controller: " << status.message() << "\n";
    return kExitRuntime;
  }
  EnrollmentOptions enrollment_options;
  enrollment_options.certificate_ttl = *cert_ttl;
  enrollment_options.rate_per_second = options.enroll_rate;
  enrollment_options.burst = std::max(1.0, options.enroll_rate * 2);
  Enrollment enrollment(fleet, credentials, *authority, metrics, enrollment_options);
  AgentControlService agent_service(fleet, enrollment, metrics);
  if (!turn_off_session_tickets()) {
    spdlog::info("TLS session tickets stay on: the system's OpenSSL configuration sets the defaults of TLS contexts");
  }
  AdminService admin_service(**store, fleet, credentials, metrics);
  int agent_port = 0;
  int admin_port = 0;
  auto agent_server = serve(options.listen_agents, &agent_service, *tls, authority->cert_pem(), true, agent_port);
  auto admin_server = serve(options.listen_admin, &admin_service, *tls, "", false, admin_port);
  if (!agent_server || agent_port == 0 || !admin_server || admin_port == 0) {
    std::cerr << "strait-controller: cannot listen on " << (agent_port == 0 ? options.listen_agents : options.listen_admin)
              << " (address in use or not local?)\n";
    return kExitRuntime;
  }
  // Started last: once it answers, the store is open and both gRPC ports serve, so ready.
  auto http = HttpEndpoints::start(
      options.listen_http, [&metrics] { return metrics.text(); }, [] { return true; });
  if (!http.ok()) {
    std::cerr << "strait-controller: " << http.status().message() << "\n";
    return kExitRuntime;
  }
  spdlog::info("strait-controller {}: store {} at revision {}", kVersion, store_description(options),
               (*store)->revision());
  spdlog::info("agents on port {}, admin API on port {} (TLS), /metrics /healthz /readyz on port {}", agent_port,
               admin_port, (*http)->port());
  spdlog::info("CA for agent certificates{}: {}{}", own_server_certificate ? " and the server's" : "",
               authority->cert_path(), created_ca ? " (created now)" : "");
  spdlog::info("admin token in {}, bootstrap join token in {}", admin_token_path, join_token_path);

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  int received = 0;
  // A hangup (a closed terminal, a habitual `systemctl kill -s HUP`) must not stop the
  // controller: everything it serves is in its store, so there is nothing to reload.
  while (sigwait(&signals, &received) == 0 && received == SIGHUP) {
    spdlog::info("received SIGHUP: nothing to reload (the desired state is in the store), still running");
  }
  spdlog::info("received {}, stopping", received == SIGINT ? "SIGINT" : "SIGTERM");
  auto deadline = std::chrono::system_clock::now() + std::chrono::seconds(2);
  agent_server->Shutdown(deadline);
  admin_server->Shutdown(deadline);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Signals go to sigwait on the main thread only; gRPC's threads inherit the mask.
  sigset_t blocked;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGINT);
  sigaddset(&blocked, SIGTERM);
  sigaddset(&blocked, SIGHUP);
  sigaddset(&blocked, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &blocked, nullptr);

  // Debian builds Abseil without NDEBUG, which leaves absl::Mutex's deadlock detection on:
  // every lock of one of gRPC's mutexes (a few dozen per agent connection) looks it up in a
  // process-wide graph of all of them, under one lock. Off, at 2 000 agents: 5 KiB less
  // memory per agent and 14 % less CPU per change (bench/RESULTS.md).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  CLI::App app{"strait-controller: desired state of a Strait fleet, pushed to every agent"};
  Options options;
  bool version = false;
  app.add_option("--data-dir", options.data_dir, "store, CA and tokens live here")->capture_default_str();
  app.add_option("--listen-agents", options.listen_agents, "agent stream address (TLS)")->capture_default_str();
  app.add_option("--listen-admin", options.listen_admin, "Admin API address for straitctl (TLS)")->capture_default_str();
  app.add_option("--listen-http", options.listen_http, "plain HTTP /metrics /healthz /readyz")->capture_default_str();
  app.add_option("--tls-cert", options.tls_cert, "server certificate (PEM); default: issued by the data dir's CA");
  app.add_option("--tls-key", options.tls_key, "server key (PEM)");
  app.add_option("--tls-san", options.tls_names, "extra DNS name or IP for the issued server certificate")
      ->delimiter(',');
  app.add_option("--admin-token-file", options.admin_token_file, "admin token file (default: <data-dir>/admin.token)");
  app.add_option("--bootstrap-token-file", options.bootstrap_token_file,
                 "join token chosen by the operator (e.g. a mounted Secret), registered if new "
                 "(default: one is made in <data-dir>/join.token)");
  app.add_option("--ca-dir", options.ca_dir,
                 "where ca.pem and ca.key live, made there if absent (default: the data dir)");
  app.add_option("--store", options.store, "sqlite (embedded, one controller) or etcd (several controllers)")
      ->capture_default_str();
  app.add_option("--replica-name", options.replica_name,
                 "this controller's name among replicas on one store (default: <hostname>-<pid>)");
  app.add_option("--etcd-endpoints", options.etcd_endpoints, "etcd client URLs: http(s)://host:port,...")
      ->delimiter(',');
  app.add_option("--etcd-prefix", options.etcd_prefix, "every key of the store starts with it")->capture_default_str();
  app.add_option("--etcd-ca-file", options.etcd_ca_file, "CA of etcd's client port (TLS to etcd)");
  app.add_option("--etcd-cert-file", options.etcd_cert_file, "client certificate for etcd (--client-cert-auth)");
  app.add_option("--etcd-key-file", options.etcd_key_file, "its key");
  app.add_option("--etcd-username", options.etcd_username, "etcd user (etcd auth)");
  app.add_option("--etcd-password-file", options.etcd_password_file, "file holding that user's password");
  app.add_option("--coalesce-ms", options.coalesce_ms, "changes this close together go out as one push")
      ->capture_default_str()->check(CLI::Range(0, 10000));
  app.add_option("--agent-cert-ttl", options.agent_cert_ttl, "lifetime of agent certificates (agents renew at 2/3)")
      ->capture_default_str();
  app.add_option("--agent-retention", options.agent_retention,
                 "forget agents gone this long after their certificate expired")
      ->capture_default_str();
  app.add_option("--bootstrap-token-ttl", options.bootstrap_token_ttl,
                 "lifetime of the join token made on first start (0: no expiry)")
      ->capture_default_str();
  app.add_option("--bootstrap-token-labels", options.bootstrap_token_labels,
                 "labels the bootstrap token grants: k=v,k2=* (* = any value)");
  app.add_option("--enroll-rate", options.enroll_rate, "enrolments and renewals per second, whole controller")
      ->capture_default_str()->check(CLI::Range(0.1, 10000.0));
  app.add_flag("-D,--debug", options.debug, "debug logging");
  app.add_flag("-V,--version", version, "print the version and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitUsage;
  }
  if (version) {
    std::cout << "strait-controller " << kVersion << "\n";
    return 0;
  }
  if (options.replica_name.empty()) options.replica_name = default_replica_name();
  if (options.replica_name.find('/') != std::string::npos) {
    std::cerr << "strait-controller: --replica-name: must hold no '/'\n";
    return kExitUsage;
  }
  strait::config::v1::LogConfig log;
  if (auto status = strait::common::configure_logging(log, options.debug); !status.ok()) {
    std::cerr << "strait-controller: " << status.message() << "\n";
    return kExitUsage;
  }
  int code = run(options);
  // A log output that stopped taking lines must not hold the exit.
  if (!strait::common::flush_logging(std::chrono::seconds(2))) std::_Exit(code);
  spdlog::shutdown();
  return code;
}
