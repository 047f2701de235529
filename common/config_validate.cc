#include "common/config_validate.h"

#include <algorithm>

#include "common/address.h"
#include "common/duration.h"
#include "common/metadata.h"
#include "common/resource_error.h"
#include "common/strings.h"

namespace strait::common {
namespace {

using config::v1::Config;
using config::v1::HopConfig;
using config::v1::NodeConfig;
using config::v1::SelectorConfig;
using config::v1::ServiceConfig;

// Longest name or address a config may hold; keeps messages and logs bounded.
constexpr size_t kMaxFieldLength = 1024;
constexpr int kMaxRetries = 100;

bool known(const std::vector<std::string>& names, std::string_view type) {
  return std::find(names.begin(), names.end(), type) != names.end();
}

// Walks one config, stopping at the first error; `context_` names where it is.
class Validator {
 public:
  Validator(const Config& config, const ValidationOptions& options, std::vector<std::string>* warnings)
      : config_(config), types_(options.types != nullptr ? *options.types : gost_types()), warnings_(warnings) {
    references_ = options.references ? options.references : [this](std::string_view kind, std::string_view name) {
      return defined_here(kind, name);
    };
  }

  absl::Status run() {
    for (const auto& service : config_.services()) {
      if (auto status = service_fields(service); !status.ok()) {
        return with_resource(absl::InvalidArgumentError(str_cat("service ", service.name(), ": ", status.message())),
                             "service", service.name());
      }
    }
    for (const auto& chain : config_.chains()) {
      absl::Status status = chain.name().empty() ? absl::InvalidArgumentError("a chain needs a name") : absl::OkStatus();
      for (const auto& hop : chain.hops()) {
        if (!status.ok()) break;
        status = chain_hop(hop);
        if (!status.ok()) status = absl::InvalidArgumentError(str_cat("hop ", hop.name(), ": ", status.message()));
      }
      if (!status.ok()) {
        return with_resource(absl::InvalidArgumentError(str_cat("chain ", chain.name(), ": ", status.message())),
                             "chain", chain.name());
      }
    }
    for (const auto& hop : config_.hops()) {
      if (auto status = hop_nodes(hop); !status.ok()) {
        return with_resource(absl::InvalidArgumentError(str_cat("hop ", hop.name(), ": ", status.message())), "hop",
                             hop.name());
      }
    }
    for (const auto& auther : config_.authers()) {
      if (auther.name().empty()) return absl::InvalidArgumentError("an auther needs a name");
    }
    return absl::OkStatus();
  }

 private:
  absl::Status service_fields(const ServiceConfig& service) {
    if (service.name().empty()) return absl::InvalidArgumentError("a service needs a name");
    if (auto status = bounded("name", service.name()); !status.ok()) return status;
    if (auto address = parse_host_port(service.addr(), true); !address.ok()) {
      return absl::InvalidArgumentError(str_cat("addr: ", address.status().message()));
    }
    const std::string& handler = service.handler().type();
    if (!handler.empty() && !known(types_.handlers, handler)) return unknown_type("handler", handler, types_.handlers);
    const std::string& listener = service.listener().type();
    if (!listener.empty() && !known(types_.listeners, listener)) {
      return unknown_type("listener", listener, types_.listeners);
    }
    if (service.handler().retries() < 0 || service.handler().retries() > kMaxRetries) {
      return absl::InvalidArgumentError(str_cat("handler.retries: ", service.handler().retries(), " is not within 0..",
                                                kMaxRetries));
    }
    for (const auto& [where, metadata] : {std::pair{"metadata", &service.metadata()},
                                          std::pair{"handler.metadata", &service.handler().metadata()},
                                          std::pair{"listener.metadata", &service.listener().metadata()}}) {
      if (auto status = validate_metadata(*metadata, where, &unknown_keys_); !status.ok()) return status;
    }
    flush_unknown(str_cat("service ", service.name()));
    if (!service.handler().chain().empty() && !references_("chain", service.handler().chain())) {
      return absl::InvalidArgumentError(str_cat("handler.chain: no chain named \"", service.handler().chain(), "\""));
    }
    std::vector<std::string> authers(service.handler().authers().begin(), service.handler().authers().end());
    if (!service.handler().auther().empty()) authers.push_back(service.handler().auther());
    for (const auto& name : authers) {
      if (!references_("auther", name)) {
        return absl::InvalidArgumentError(str_cat("handler.auther: no auther named \"", name, "\""));
      }
    }
    for (const auto& node : service.forwarder().nodes()) {
      if (auto target = parse_host_port(node.addr()); !target.ok()) {
        return absl::InvalidArgumentError(str_cat("forwarder node ", node.name(), ": addr: ", target.status().message()));
      }
    }
    return selector(service.forwarder().selector(), "forwarder.selector");
  }

  // A hop inside a chain: inline nodes, or a reference to a top-level hop by name.
  absl::Status chain_hop(const HopConfig& hop) {
    if (!hop.nodes().empty()) return hop_nodes(hop);
    if (!references_("hop", hop.name())) return absl::InvalidArgumentError("has no nodes and no top-level hop of that name");
    return absl::OkStatus();
  }

  absl::Status hop_nodes(const HopConfig& hop) {
    if (auto status = selector(hop.selector(), "selector"); !status.ok()) return status;
    for (const auto& node : hop.nodes()) {
      if (auto status = node_fields(node); !status.ok()) {
        return absl::InvalidArgumentError(str_cat("node ", node.name(), ": ", status.message()));
      }
    }
    return absl::OkStatus();
  }

  absl::Status node_fields(const NodeConfig& node) {
    if (auto address = parse_host_port(node.addr()); !address.ok()) {
      return absl::InvalidArgumentError(str_cat("addr: ", address.status().message()));
    }
    const std::string& connector = node.connector().type();
    if (!connector.empty() && !known(types_.connectors, connector)) {
      return unknown_type("connector", connector, types_.connectors);
    }
    const std::string& dialer = node.dialer().type();
    if (!dialer.empty() && !known(types_.dialers, dialer)) return unknown_type("dialer", dialer, types_.dialers);
    for (const auto& [where, metadata] : {std::pair{"metadata", &node.metadata()},
                                          std::pair{"connector.metadata", &node.connector().metadata()},
                                          std::pair{"dialer.metadata", &node.dialer().metadata()}}) {
      if (auto status = validate_metadata(*metadata, where, &unknown_keys_); !status.ok()) return status;
    }
    flush_unknown(str_cat("node ", node.name()));
    return absl::OkStatus();
  }

  static absl::Status selector(const SelectorConfig& config, std::string_view where) {
    std::string strategy = to_lower(config.strategy());
    if (!strategy.empty() && strategy != "round" && strategy != "roundrobin" && strategy != "rand" &&
        strategy != "random" && strategy != "fifo" && strategy != "ha" && strategy != "hash") {
      return absl::InvalidArgumentError(str_cat(where, ".strategy \"", config.strategy().substr(0, 40),
                                                "\": use round, rand, fifo or hash"));
    }
    if (config.max_fails() < 0) return absl::InvalidArgumentError(str_cat(where, ".maxFails must not be negative"));
    if (!config.fail_timeout().empty()) {
      if (auto timeout = parse_timeout(config.fail_timeout()); !timeout.ok()) {
        return absl::InvalidArgumentError(str_cat(where, ".failTimeout: ", timeout.status().message()));
      }
    }
    return absl::OkStatus();
  }

  static absl::Status bounded(std::string_view field, std::string_view value) {
    if (value.size() <= kMaxFieldLength) return absl::OkStatus();
    return absl::InvalidArgumentError(str_cat(field, " is longer than ", kMaxFieldLength, " bytes"));
  }

  static absl::Status unknown_type(std::string_view kind, std::string_view type, const std::vector<std::string>& names) {
    return absl::InvalidArgumentError(str_cat("unknown ", kind, " type \"", type.substr(0, 40), "\"; known: ",
                                              join(names, ", ")));
  }

  bool defined_here(std::string_view kind, std::string_view name) const {
    auto named = [&](const auto& list) {
      return std::any_of(list.begin(), list.end(), [&](const auto& item) { return item.name() == name; });
    };
    if (kind == "chain") return named(config_.chains());
    if (kind == "auther") return named(config_.authers());
    if (kind == "hop") {
      return std::any_of(config_.hops().begin(), config_.hops().end(),
                         [&](const HopConfig& hop) { return hop.name() == name && !hop.nodes().empty(); });
    }
    return false;
  }

  void flush_unknown(const std::string& owner) {
    // The command line puts each query key in several metadata maps: one warning per key.
    std::sort(unknown_keys_.begin(), unknown_keys_.end());
    unknown_keys_.erase(std::unique(unknown_keys_.begin(), unknown_keys_.end()), unknown_keys_.end());
    if (warnings_ != nullptr) {
      for (const auto& key : unknown_keys_) {
        warnings_->push_back(str_cat(owner, ": metadata key \"", key.substr(0, 64), "\" is not one Strait reads; ignored"));
      }
    }
    unknown_keys_.clear();
  }

  const Config& config_;
  const KnownTypes& types_;
  std::vector<std::string>* warnings_;
  ReferenceLookup references_;
  std::vector<std::string> unknown_keys_;
};

}  // namespace

const KnownTypes& gost_types() {
  static const KnownTypes types = {
      {"api", "auto", "dns", "file", "forward", "http", "http2", "http3", "masque", "metrics", "red", "redir",
       "redirect", "redu", "relay", "router", "rtcp", "rudp", "runix", "serial", "sni", "socks", "socks4", "socks4a",
       "socks5", "ss", "sshd", "ssu", "tap", "tcp", "tun", "tungo", "tunnel", "udp", "unix"},
      {"dns", "dtls", "ftcp", "grpc", "h2", "h2c", "h3", "http2", "http3", "icmp", "icmp6", "kcp", "mtcp", "mtls",
       "mws", "mwss", "ohttp", "otls", "pht", "phts", "quic", "red", "redir", "redirect", "redu", "rtcp", "rudp",
       "runix", "serial", "ssh", "sshd", "stdio", "tap", "tcp", "tls", "tun", "tungo", "udp", "unix", "ws", "wss",
       "wt"},
      {"direct", "forward", "http", "http2", "masque", "relay", "router", "serial", "sni", "socks", "socks4",
       "socks4a", "socks5", "ss", "sshd", "ssu", "tcp", "tunnel", "unix", "virtual"},
      {"direct", "dtls", "ftcp", "grpc", "h2", "h2c", "h3", "h3-masque", "http2", "http3", "icmp", "icmp6", "kcp",
       "mtcp", "mtls", "mws", "mwss", "ohttp", "ohttps", "otls", "pht", "phts", "quic", "serial", "ssh", "sshd", "tcp",
       "tls", "udp", "unix", "utls", "virtual", "wg", "ws", "wss", "wt"},
  };
  return types;
}

absl::Status validate_config(const Config& config, const ValidationOptions& options, std::vector<std::string>* warnings) {
  return Validator(config, options, warnings).run();
}

}  // namespace strait::common
