#include "common/cmdline_config.h"

#include <algorithm>
#include <set>

#include "common/gost_url.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "common/strings.h"

namespace strait::common {
namespace {

using config::v1::Config;
using google::protobuf::Struct;

bool contains(const std::vector<std::string>& names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// Listener types whose name is also the port-forwarding handler for that channel.
const std::set<std::string, std::less<>> kForwardListeners = {
    "tcp", "udp", "rtcp", "rudp", "tun", "tap", "dns", "unix", "runix", "serial"};

// Query keys that GOST turns into objects or features this agent does not provide yet.
// Refusing them is safer than silently serving without the policy the operator asked for.
const std::set<std::string, std::less<>> kUnsupportedKeys = {
    "admission", "bypass",    "resolver",  "hosts",       "limiter.in", "limiter.out",
    "limiter.conn.in", "limiter.conn.out", "climiter",    "rlimiter",   "dns",
    "proxyprotocol", "netns", "netns.out", "so_mark",     "interface"};

void set_meta(Struct& meta, const std::string& key, const std::string& value) {
  (*meta.mutable_fields())[key].set_string_value(value);
}

absl::Status unknown_word_error(std::string_view arg, std::string_view word, std::string_view role_a,
                                const std::vector<std::string>& known_a, std::string_view role_b,
                                const std::vector<std::string>& known_b) {
  return absl::InvalidArgumentError(str_cat(
      "\"", arg, "\": unknown type \"", word, "\"; known ", role_a, "s: ", join(known_a, ", "),
      "; known ", role_b, "s: ", join(known_b, ", ")));
}

// A URL without a handler means GOST's `auto`; say so rather than "unknown type auto".
absl::Status missing_auto_error(std::string_view arg, const KnownTypes& known) {
  return absl::InvalidArgumentError(
      str_cat("\"", arg, "\": names no handler, which means GOST's auto handler (HTTP and SOCKS on one port); ",
              "this agent does not have it yet, so name one: ", join(known.handlers, ", ")));
}

struct TlsKeys {
  std::string cert, key, ca;
};

// Removes GOST's TLS query aliases from the query and returns their values.
using Query = std::vector<std::pair<std::string, std::string>>;

// Removes every key matching one of `names` (GOST's aliases, case-insensitive) from the
// query and returns the first value found.
std::string take_key(Query& query, std::initializer_list<std::string_view> names) {
  std::string value;
  bool found = false;
  std::erase_if(query, [&](const auto& entry) {
    for (auto name : names) {
      if (!iequals(entry.first, name)) continue;
      if (!found) value = entry.second;
      found = true;
      return true;
    }
    return false;
  });
  return value;
}

TlsKeys take_tls_keys(Query& query, std::string_view scheme) {
  TlsKeys tls;
  tls.cert = take_key(query, {"tls.certFile", "certFile", "cert"});
  // Shadowsocks reads `key` as its raw cipher key: without a certificate it is that.
  if (scheme.starts_with("ss") && tls.cert.empty()) {
    tls.key = take_key(query, {"tls.keyFile", "keyFile"});
  } else {
    tls.key = take_key(query, {"tls.keyFile", "keyFile", "key"});
  }
  tls.ca = take_key(query, {"tls.caFile", "caFile", "ca"});
  return tls;
}

absl::Status reject_unsupported(std::string_view arg,
                                const Query& query) {
  for (const auto& [key, value] : query) {
    if (kUnsupportedKeys.contains(to_lower(key))) {
      return absl::UnimplementedError(str_cat("\"", arg, "\": query parameter \"", key,
                                                   "\" is not supported by this strait-agent yet; remove it"));
    }
  }
  return absl::OkStatus();
}

// Takes strategy/maxFails/failTimeout out of the query; GOST's defaults apply once any is given.
std::optional<config::v1::SelectorConfig> take_selector(Query& query,
                                                        absl::Status& error) {
  std::optional<config::v1::SelectorConfig> selector;
  for (auto it = query.begin(); it != query.end();) {
    std::string key = to_lower(it->first);
    bool is_selector = key == "strategy" || key == "maxfails" || key == "max_fails" ||
                       key == "failtimeout" || key == "fail_timeout";
    if (!is_selector) {
      ++it;
      continue;
    }
    if (!selector) {
      selector.emplace();
      selector->set_strategy("round");
      selector->set_max_fails(1);
      selector->set_fail_timeout("30s");
    }
    if (key == "strategy") {
      selector->set_strategy(it->second);
    } else if (key == "maxfails" || key == "max_fails") {
      int value = 0;
      if (!absl::SimpleAtoi(it->second, &value) || value < 0) {
        error = absl::InvalidArgumentError(str_cat("maxFails=", it->second, ": expected a non-negative integer"));
      }
      selector->set_max_fails(value);
    } else {
      selector->set_fail_timeout(it->second);
    }
    it = query.erase(it);
  }
  return selector;
}

// SIP002: the userinfo of an ss/ssu URL without ":password" may be the base64 (URL-safe
// unpadded, else standard) of "method:password", as GOST's decodeSIP002Auth reads it; when it
// does not decode to that, it stays a plain username.
void decode_sip002_userinfo(GostUrl& url) {
  if (!url.scheme.starts_with("ss") || !url.username || url.password) return;
  std::string decoded;
  if (!absl::WebSafeBase64Unescape(*url.username, &decoded) && !absl::Base64Unescape(*url.username, &decoded)) return;
  auto colon = decoded.find(':');
  if (colon == std::string::npos) return;
  url.password = decoded.substr(colon + 1);
  url.username = decoded.substr(0, colon);
}

absl::Status add_service(Config& config, std::string_view arg, const KnownTypes& known, int& service_index) {
  auto url = parse_gost_url(arg);
  if (!url.ok()) return url.status();
  decode_sip002_userinfo(*url);
  std::string handler = url->first;
  std::string listener = url->second;
  bool handler_known = contains(known.handlers, handler);
  bool listener_known = contains(known.listeners, listener);
  if (handler == "auto" && !handler_known) return missing_auto_error(arg, known);
  if (url->one_word ? !(handler_known || listener_known) : !handler_known) {
    return unknown_word_error(arg, handler, "handler", known.handlers, "listener", known.listeners);
  }
  if (!url->one_word && !listener_known) {
    return unknown_word_error(arg, listener, "listener", known.listeners, "handler", known.handlers);
  }
  if (!handler_known) handler = "auto";
  if (!listener_known) listener = handler == "ssu" ? "udp" : "tcp";

  std::string_view target_text = url->path;
  while (!target_text.empty() && target_text.front() == '/') target_text.remove_prefix(1);
  while (!target_text.empty() && target_text.back() == '/') target_text.remove_suffix(1);
  std::vector<std::string> targets;
  for (std::string_view target : split(target_text, ',', true)) {
    auto expanded = expand_port_range(target);
    if (!expanded.ok()) return expanded.status();
    targets.insert(targets.end(), expanded->begin(), expanded->end());
  }
  if (!targets.empty() && handler != "relay") {
    handler = kForwardListeners.contains(listener) ? listener : "forward";
  }
  if (!contains(known.handlers, handler)) {
    if (handler == "auto") return missing_auto_error(arg, known);
    return unknown_word_error(arg, handler, "handler", known.handlers, "listener", known.listeners);
  }

  auto query = url->query;
  TlsKeys tls = take_tls_keys(query, url->scheme);
  absl::Status selector_error;
  auto selector = take_selector(query, selector_error);
  if (!selector_error.ok()) return selector_error;
  if (auto status = reject_unsupported(arg, query); !status.ok()) return status;

  auto addresses = expand_port_range(url->host);
  if (!addresses.ok()) return addresses.status();
  for (size_t i = 0; i < addresses->size(); ++i) {
    auto& service = *config.add_services();
    service.set_name(str_cat("service-", service_index++));
    service.set_addr((*addresses)[i]);
    auto& handler_config = *service.mutable_handler();
    auto& listener_config = *service.mutable_listener();
    handler_config.set_type(handler);
    listener_config.set_type(listener);
    if (url->username) {
      handler_config.mutable_auth()->set_username(*url->username);
      handler_config.mutable_auth()->set_password(url->password.value_or(""));
    }
    if (!tls.cert.empty()) {
      auto& tls_config = *listener_config.mutable_tls();
      tls_config.set_cert_file(tls.cert);
      tls_config.set_key_file(tls.key);
      tls_config.set_ca_file(tls.ca);
    }
    for (const auto& [key, value] : query) {
      if (iequals(key, "retries")) {
        int retries = 0;
        if (!absl::SimpleAtoi(value, &retries)) {
          return absl::InvalidArgumentError(str_cat("\"", arg, "\": retries=", value, " is not an integer"));
        }
        handler_config.set_retries(retries);
      } else if (istarts_with(key, "service.")) {
        set_meta(*service.mutable_metadata(), key.substr(8), value);
      } else if (istarts_with(key, "handler.")) {
        set_meta(*handler_config.mutable_metadata(), key.substr(8), value);
      } else if (istarts_with(key, "listener.")) {
        set_meta(*listener_config.mutable_metadata(), key.substr(9), value);
      } else {
        set_meta(*handler_config.mutable_metadata(), key, value);
        set_meta(*listener_config.mutable_metadata(), key, value);
        set_meta(*service.mutable_metadata(), key, value);
      }
    }
    // With several targets, service i forwards to target i (port-range mapping); one target
    // is shared by every service.
    std::vector<std::string> service_targets;
    if (targets.size() == 1) {
      service_targets = targets;
    } else if (i < targets.size() && addresses->size() > 1) {
      service_targets = {targets[i]};
    } else if (addresses->size() == 1) {
      service_targets = targets;
    }
    if (!service_targets.empty()) {
      auto& forwarder = *service.mutable_forwarder();
      for (size_t t = 0; t < service_targets.size(); ++t) {
        auto& node = *forwarder.add_nodes();
        node.set_name(str_cat("target-", t));
        node.set_addr(service_targets[t]);
      }
      if (selector) *forwarder.mutable_selector() = *selector;
    }
  }
  return absl::OkStatus();
}

absl::Status add_hop(config::v1::ChainConfig& chain, std::string_view arg, const KnownTypes& known) {
  auto url = parse_gost_url(arg);
  if (!url.ok()) return url.status();
  decode_sip002_userinfo(*url);
  std::string connector = url->first;
  std::string dialer = url->second;
  bool connector_known = contains(known.connectors, connector);
  bool dialer_known = contains(known.dialers, dialer);
  if (url->one_word ? !(connector_known || dialer_known) : !connector_known) {
    return unknown_word_error(arg, connector, "connector", known.connectors, "dialer", known.dialers);
  }
  if (!url->one_word && !dialer_known) {
    return unknown_word_error(arg, dialer, "dialer", known.dialers, "connector", known.connectors);
  }
  if (!connector_known) connector = "http";
  if (!dialer_known) dialer = connector == "ssu" ? "udp" : "tcp";

  auto query = url->query;
  TlsKeys tls = take_tls_keys(query, url->scheme);
  std::string secure = take_key(query, {"tls.secure", "secure"});
  std::string server_name = take_key(query, {"tls.serverName", "serverName"});
  absl::Status selector_error;
  auto selector = take_selector(query, selector_error);
  if (!selector_error.ok()) return selector_error;
  if (auto status = reject_unsupported(arg, query); !status.ok()) return status;

  auto& hop = *chain.add_hops();
  hop.set_name(str_cat("hop-", chain.hops_size() - 1));
  if (selector) *hop.mutable_selector() = *selector;
  int node_index = 0;
  for (std::string_view address : split(url->host, ',', true)) {
    auto& node = *hop.add_nodes();
    node.set_name(str_cat("node-", node_index++));
    node.set_addr(std::string(address));
    auto& connector_config = *node.mutable_connector();
    auto& dialer_config = *node.mutable_dialer();
    connector_config.set_type(connector);
    dialer_config.set_type(dialer);
    if (url->username) {
      connector_config.mutable_auth()->set_username(*url->username);
      connector_config.mutable_auth()->set_password(url->password.value_or(""));
    }
    bool secure_on = secure == "true" || secure == "1";
    if (secure_on || !tls.cert.empty() || !tls.ca.empty() || !server_name.empty()) {
      auto& tls_config = *node.mutable_tls();
      tls_config.set_cert_file(tls.cert);
      tls_config.set_key_file(tls.key);
      tls_config.set_ca_file(tls.ca);
      tls_config.set_secure(secure_on);
      tls_config.set_server_name(server_name);
    }
    for (const auto& [key, value] : query) {
      if (istarts_with(key, "hop.")) {
        set_meta(*hop.mutable_metadata(), key.substr(4), value);
      } else if (istarts_with(key, "node.")) {
        set_meta(*node.mutable_metadata(), key.substr(5), value);
      } else if (istarts_with(key, "connector.")) {
        set_meta(*connector_config.mutable_metadata(), key.substr(10), value);
      } else if (istarts_with(key, "dialer.")) {
        set_meta(*dialer_config.mutable_metadata(), key.substr(7), value);
      } else {
        set_meta(*hop.mutable_metadata(), key, value);
        set_meta(*node.mutable_metadata(), key, value);
        set_meta(*connector_config.mutable_metadata(), key, value);
        set_meta(*dialer_config.mutable_metadata(), key, value);
      }
    }
  }
  if (hop.nodes_size() == 0) {
    return absl::InvalidArgumentError(str_cat("\"", arg, "\": a chain node needs an address (host:port)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Config> build_config_from_cmdline(const std::vector<std::string>& services,
                                                 const std::vector<std::string>& nodes, const KnownTypes& known) {
  Config config;
  int service_index = 0;
  for (const auto& arg : services) {
    if (auto status = add_service(config, arg, known, service_index); !status.ok()) return status;
  }
  if (!nodes.empty()) {
    auto& chain = *config.add_chains();
    chain.set_name("chain-0");
    for (const auto& arg : nodes) {
      if (auto status = add_hop(chain, arg, known); !status.ok()) return status;
    }
    for (auto& service : *config.mutable_services()) {
      const std::string& listener = service.listener().type();
      if (listener == "rtcp" || listener == "rudp" || listener == "runix") {
        service.mutable_listener()->set_chain("chain-0");
      } else {
        service.mutable_handler()->set_chain("chain-0");
      }
    }
  }
  return config;
}

void merge_config(Config& base, const Config& extra) {
  base.mutable_services()->MergeFrom(extra.services());
  base.mutable_chains()->MergeFrom(extra.chains());
  base.mutable_hops()->MergeFrom(extra.hops());
  base.mutable_authers()->MergeFrom(extra.authers());
  base.mutable_admissions()->MergeFrom(extra.admissions());
  base.mutable_bypasses()->MergeFrom(extra.bypasses());
  base.mutable_resolvers()->MergeFrom(extra.resolvers());
  base.mutable_hosts()->MergeFrom(extra.hosts());
  base.mutable_limiters()->MergeFrom(extra.limiters());
  base.mutable_climiters()->MergeFrom(extra.climiters());
  base.mutable_rlimiters()->MergeFrom(extra.rlimiters());
  if (extra.has_tls()) *base.mutable_tls() = extra.tls();
  if (extra.has_log()) *base.mutable_log() = extra.log();
  if (extra.has_api()) *base.mutable_api() = extra.api();
  if (extra.has_metrics()) *base.mutable_metrics() = extra.metrics();
  if (extra.has_profiling()) *base.mutable_profiling() = extra.profiling();
}

}  // namespace strait::common
