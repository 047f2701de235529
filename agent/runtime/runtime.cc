#include "agent/runtime/runtime.h"

#include <algorithm>
#include <thread>

#include <spdlog/spdlog.h>

#include "agent/channel/registry.h"
#include "agent/connector/registry.h"
#include "agent/handler/registry.h"
#include "agent/runtime/service_options.h"
#include "common/address.h"
#include "common/config_validate.h"
#include "common/duration.h"
#include "common/metadata.h"
#include "common/resource_error.h"
#include "common/strings.h"

namespace strait::agent {
namespace {

using config::v1::Config;
using config::v1::ServiceConfig;

struct Prepared {
  std::string name;
  std::string socket_key;
  std::string fingerprint;
  ServiceOptions options;
  std::unique_ptr<ListenerFactory> factory;
  std::shared_ptr<const Handler> handler;
  std::shared_ptr<HandlerContext> context;
};

std::string deterministic_bytes(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::io::StringOutputStream stream(&out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  message.SerializeToCodedStream(&coded);
  coded.Trim();
  return out;
}

// What the listening sockets of a service are: when it is the same after a reload, the
// sockets are kept (their other options change in place).
std::string socket_key(const std::string& listener_type, const ListenOptions& listen) {
  return common::str_cat(listener_type, " ", listen.address.to_string());
}

absl::Status service_error(const ServiceConfig& service, const absl::Status& status) {
  return common::with_resource(
      absl::Status(status.code(), common::str_cat("service ", service.name(), ": ", status.message())), "service",
      service.name());
}

absl::StatusOr<std::shared_ptr<const Forwarder>> build_forwarder(const config::v1::ForwarderConfig& config) {
  auto forwarder = std::make_shared<Forwarder>();
  for (const auto& node : config.nodes()) {
    std::string target = node.addr();
    if (auto parsed = common::parse_host_port(target); !parsed.ok()) {
      return absl::InvalidArgumentError(common::str_cat("forwarder node ", node.name(), ": ", parsed.status().message()));
    }
    // ":80" means this host, as GOST's empty host does.
    if (target.front() == ':') target = "127.0.0.1" + target;
    forwarder->names.push_back(node.name());
    forwarder->targets.push_back(target);
  }
  auto selector = parse_selector(config.selector());
  if (!selector.ok()) return selector.status();
  forwarder->selector = std::make_unique<Selector>(*selector, forwarder->targets.size());
  return std::shared_ptr<const Forwarder>(std::move(forwarder));
}

absl::StatusOr<Prepared> prepare_service(const ServiceConfig& service, const Config& config,
                                         const std::map<std::string, std::shared_ptr<const Chain>>& chains,
                                         const std::map<std::string, std::string>& chain_fingerprints,
                                         size_t workers) {
  Prepared prepared;
  prepared.name = service.name();
  if (prepared.name.empty()) return absl::InvalidArgumentError("a service needs a name");
  auto options = parse_service_options(service, workers);
  if (!options.ok()) return service_error(service, options.status());
  prepared.options = *std::move(options);
  std::string listener_type = service.listener().type().empty() ? "tcp" : service.listener().type();
  auto factory = make_listener_factory(service, config);
  if (!factory.ok()) return service_error(service, factory.status());
  prepared.factory = *std::move(factory);
  prepared.socket_key = socket_key(listener_type, prepared.options.listen);
  // A layered listener (tls, ws...) holds its certificate and options in its listeners: when
  // those change, new listeners take over the address (drained, like any changed socket).
  if (listener_type != "tcp" && listener_type != "udp") {
    prepared.socket_key += deterministic_bytes(service.listener()) + deterministic_bytes(config.tls());
  }
  auto handler = make_handler(service, config);
  if (!handler.ok()) return service_error(service, handler.status());
  prepared.handler = *std::move(handler);

  auto context = std::make_shared<HandlerContext>();
  context->service = service.name();
  std::shared_ptr<const Chain> chain;
  std::string fingerprint = deterministic_bytes(service);
  if (!service.handler().chain().empty()) {
    auto it = chains.find(service.handler().chain());
    if (it == chains.end()) {
      return service_error(service, absl::InvalidArgumentError(
                                        common::str_cat("handler.chain \"", service.handler().chain(), "\" is not defined")));
    }
    chain = it->second;
    fingerprint += chain_fingerprints.at(it->first);
  }
  if (!service.listener().chain().empty()) {
    return service_error(service, absl::UnimplementedError("listener.chain (rtcp/rudp) is not supported yet"));
  }
  context->router = std::make_shared<Router>(chain, service.handler().retries(), DialOptions{});
  auto auther = build_auther(service.handler(), config);
  if (!auther.ok()) return service_error(service, auther.status());
  context->auther = *auther;
  // Only the authers this service names: editing another one leaves it alone.
  for (const auto& named : config.authers()) {
    bool referenced = named.name() == service.handler().auther() ||
                      std::find(service.handler().authers().begin(), service.handler().authers().end(),
                                named.name()) != service.handler().authers().end();
    if (referenced) fingerprint += deterministic_bytes(named);
  }

  if (service.forwarder().nodes_size() > 0) {
    auto forwarder = build_forwarder(service.forwarder());
    if (!forwarder.ok()) return service_error(service, forwarder.status());
    context->forwarder = *std::move(forwarder);
  }
  context->relay = prepared.options.relay;
  prepared.context = std::move(context);
  prepared.fingerprint = std::move(fingerprint);
  return prepared;
}

// The chain's config plus the top-level hops it names.
std::string chain_fingerprint(const config::v1::ChainConfig& chain, const Config& config) {
  std::string fingerprint = deterministic_bytes(chain);
  for (const auto& listed : chain.hops()) {
    if (!listed.nodes().empty()) continue;
    for (const auto& hop : config.hops()) {
      if (hop.name() == listed.name()) fingerprint += deterministic_bytes(hop);
    }
  }
  return fingerprint;
}

absl::Status reject_unsupported_sections(const Config& config) {
  auto refuse = [](std::string_view section) {
    return absl::UnimplementedError(common::str_cat("\"", section, "\" is not supported by this strait-agent yet; remove it"));
  };
  if (!config.admissions().empty()) return refuse("admissions");
  if (!config.bypasses().empty()) return refuse("bypasses");
  if (!config.resolvers().empty()) return refuse("resolvers");
  if (!config.hosts().empty()) return refuse("hosts");
  if (!config.limiters().empty() || !config.climiters().empty() || !config.rlimiters().empty()) return refuse("limiters");
  for (const auto& service : config.services()) {
    if (!service.admission().empty() || !service.admissions().empty() || !service.bypass().empty() ||
        !service.bypasses().empty() || !service.limiter().empty() || !service.climiter().empty() ||
        !service.rlimiter().empty() || !service.resolver().empty() || !service.hosts().empty()) {
      return service_error(service, absl::UnimplementedError(
                                        "admission/bypass/limiter/resolver/hosts are not supported yet"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

Runtime::Runtime(Workers& workers, std::chrono::nanoseconds drain_timeout, size_t max_connections)
    : drain_timeout_(drain_timeout), budget_(std::make_shared<ConnectionBudget>(max_connections)) {
  for (size_t i = 0; i < workers.size(); ++i) executors_.push_back(workers.executor(i));
}

absl::Status Runtime::apply(std::shared_ptr<const Config> snapshot) {
  const Config& config = *snapshot;
  static const common::KnownTypes kRegistered{handler_types(), listener_types(), connector_types(), dialer_types()};
  std::vector<std::string> warnings;
  if (auto status = common::validate_config(config, {&kRegistered, nullptr}, &warnings); !status.ok()) return status;
  for (const auto& warning : warnings) spdlog::warn("{}", warning);
  if (auto status = reject_unsupported_sections(config); !status.ok()) return status;
  std::map<std::string, std::shared_ptr<const Chain>> chains;
  std::map<std::string, std::string> chain_fingerprints;
  for (const auto& chain_config : config.chains()) {
    if (chains.contains(chain_config.name())) {
      return common::with_resource(
          absl::InvalidArgumentError(common::str_cat("chain ", chain_config.name(), " is defined twice")), "chain",
          chain_config.name());
    }
    auto chain = build_chain(chain_config, config);
    if (!chain.ok()) return chain.status();
    chains[chain_config.name()] = *chain;
    chain_fingerprints[chain_config.name()] = chain_fingerprint(chain_config, config);
  }
  std::map<std::string, Prepared> prepared;
  for (const auto& service : config.services()) {
    auto one = prepare_service(service, config, chains, chain_fingerprints, executors_.size());
    if (!one.ok()) return one.status();
    if (prepared.contains(one->name)) {
      return common::with_resource(
          absl::InvalidArgumentError(common::str_cat("service ", one->name, " is defined twice")), "service", one->name);
    }
    prepared.emplace(one->name, *std::move(one));
  }

  std::lock_guard lock(mutex_);
  // Bind every service whose sockets are new before touching the running ones, so a taken
  // port leaves the old configuration serving.
  std::map<std::string, std::shared_ptr<Service>> bound;
  for (auto& [name, candidate] : prepared) {
    auto running = running_.find(name);
    if (running != running_.end() && running->second.socket_key == candidate.socket_key) continue;
    // Datagram services make room by closing their least recent session instead: a client
    // that is not read would lose its datagrams, not wait for them.
    auto inherited = inherited_.take(candidate.options.datagram ? "udp" : "tcp", candidate.options.listen.address);
    auto service = Service::bind(name, candidate.options.listen, *candidate.factory, executors_,
                                 candidate.options.datagram ? nullptr : budget_, candidate.options.max_connections,
                                 std::move(inherited), candidate.options.datagram);
    if (!service.ok()) {
      for (auto& [unused, fresh] : bound) fresh->stop_accepting();
      return service.status();
    }
    bound[name] = *std::move(service);
  }
  auto deadline = std::chrono::steady_clock::now() + drain_timeout_;
  for (auto& [name, candidate] : prepared) {
    auto old = running_.find(name);
    auto fresh = bound.find(name);
    if (fresh == bound.end() && old->second.fingerprint == candidate.fingerprint) continue;
    // Totals go on across reloads of the same service.
    candidate.context->stats = old != running_.end() ? old->second.stats : std::make_shared<ServiceStats>();
    auto generation = std::make_shared<ServiceGeneration>(candidate.handler, candidate.context, executors_.size());
    if (fresh == bound.end()) {
      old->second.service->update(candidate.options.listen, candidate.options.max_connections);
      old->second.service->serve(generation);
      draining_.push_back({old->second.service, old->second.generation, deadline});
      old->second.generation = generation;
      old->second.fingerprint = candidate.fingerprint;
      spdlog::info("{}: new config on the same sockets ({})", name, old->second.service->bound_address().to_string());
      continue;
    }
    fresh->second->serve(generation);
    spdlog::info("{}: listening on {}", name, fresh->second->bound_address().to_string());
    if (old != running_.end()) {
      old->second.service->stop_accepting();
      draining_.push_back({old->second.service, old->second.generation, deadline});
    }
    running_[name] = Running{fresh->second, candidate.socket_key, candidate.fingerprint, generation,
                             candidate.context->stats};
  }
  for (auto it = running_.begin(); it != running_.end();) {
    if (prepared.contains(it->first)) {
      ++it;
      continue;
    }
    spdlog::info("{}: removed, draining", it->first);
    it->second.service->stop_accepting();
    draining_.push_back({it->second.service, it->second.generation, deadline});
    it = running_.erase(it);
  }
  return absl::OkStatus();
}

void Runtime::adopt(InheritedSockets sockets) {
  std::lock_guard lock(mutex_);
  inherited_ = std::move(sockets);
}

void Runtime::close_unclaimed_sockets() {
  std::lock_guard lock(mutex_);
  if (inherited_.size() > 0) spdlog::info("{} inherited sockets match no service; closing them", inherited_.size());
  inherited_.close_rest();
}

std::vector<int> Runtime::listening_sockets() const {
  std::lock_guard lock(mutex_);
  std::vector<int> fds;
  for (const auto& [name, running] : running_) {
    auto mine = running.service->listening_fds();
    fds.insert(fds.end(), mine.begin(), mine.end());
  }
  return fds;
}

std::vector<ServiceReport> Runtime::report() const {
  std::lock_guard lock(mutex_);
  std::vector<ServiceReport> out;
  for (const auto& [name, running] : running_) {
    const ServiceStats& stats = *running.stats;
    ServiceReport report;
    report.name = name;
    report.address = running.service->bound_address().to_string();
    report.active_connections = running.generation->active();
    report.connections = stats.connections.load(std::memory_order_relaxed);
    report.bytes_from_clients = stats.bytes_from_clients.load(std::memory_order_relaxed);
    report.bytes_to_clients = stats.bytes_to_clients.load(std::memory_order_relaxed);
    report.errors = stats.errors.load(std::memory_order_relaxed);
    for (const auto& draining : draining_) {
      if (draining.service->name() == name) report.draining_connections += draining.generation->active();
    }
    out.push_back(std::move(report));
  }
  return out;
}

void Runtime::reap_draining() {
  std::lock_guard lock(mutex_);
  auto now = std::chrono::steady_clock::now();
  std::erase_if(draining_, [&](const Draining& draining) {
    if (draining.generation->active() == 0) return true;
    if (now < draining.deadline) return false;
    spdlog::info("{}: grace period over, closing {} connections of the previous config", draining.service->name(),
                 draining.generation->active());
    draining.service->close_connections(draining.generation);
    return true;
  });
}

void Runtime::shutdown(std::chrono::nanoseconds grace) {
  std::vector<Draining> all;
  {
    std::lock_guard lock(mutex_);
    for (auto& [name, running] : running_) {
      running.service->stop_accepting();
      all.push_back({running.service, running.generation, {}});
    }
    all.insert(all.end(), draining_.begin(), draining_.end());
    running_.clear();
    draining_.clear();
  }
  auto deadline = std::chrono::steady_clock::now() + grace;
  auto open = [&] {
    size_t total = 0;
    for (auto& entry : all) total += entry.generation->active();
    return total;
  };
  if (open() > 0) spdlog::info("draining {} open connections (up to {})", open(), common::format_duration(grace));
  // Polling is coarse but this runs once at exit, on the main thread, off the data path.
  while (open() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (open() > 0) {
    spdlog::info("grace period over, closing {} connections", open());
    for (auto& entry : all) entry.service->close_connections(entry.generation);
    auto hard_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (open() > 0 && std::chrono::steady_clock::now() < hard_deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
}

}  // namespace strait::agent
