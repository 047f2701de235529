#include "agent/handler/registry.h"

#include "agent/handler/auto.h"
#include "agent/handler/forward.h"
#include "agent/handler/http.h"
#include "agent/handler/http2.h"
#include "agent/handler/relay.h"
#include "agent/handler/socks4.h"
#include "agent/handler/socks5.h"
#include "agent/handler/ss.h"
#include "agent/handler/ssu.h"
#include "common/strings.h"

namespace strait::agent {
namespace {

using config::v1::Config;
using config::v1::ServiceConfig;

// Handlers that need the agent's config (its default TLS certificate) take it as well.
using HandlerMaker = absl::StatusOr<std::unique_ptr<Handler>> (*)(const ServiceConfig& service, const Config& config);

template <HandlerFactory make>
absl::StatusOr<std::unique_ptr<Handler>> service_only(const ServiceConfig& service, const Config&) {
  return make(service);
}

struct HandlerEntry {
  const char* type;
  HandlerMaker make;
};

constexpr HandlerEntry kHandlers[] = {
    {"auto", service_only<make_auto_handler>},
    {"http", service_only<make_http_handler>},
    {"http2", service_only<make_http2_handler>},
    {"relay", service_only<make_relay_handler>},
    {"socks5", make_socks5_handler},
    {"socks", make_socks5_handler},  // GOST alias
    {"socks4", service_only<make_socks4_handler>},
    {"socks4a", service_only<make_socks4_handler>},
    {"ss", service_only<make_ss_handler>},
    {"ssu", service_only<make_ssu_handler>},
    {"tcp", service_only<make_tcp_forward_handler>},
    {"forward", service_only<make_tcp_forward_handler>},
    {"udp", service_only<make_udp_forward_handler>},
};

}  // namespace

std::vector<std::string> handler_types() {
  std::vector<std::string> names;
  for (const auto& entry : kHandlers) names.emplace_back(entry.type);
  return names;
}

absl::StatusOr<std::unique_ptr<Handler>> make_handler(const config::v1::ServiceConfig& service,
                                                      const config::v1::Config& config) {
  const std::string& type = service.handler().type();
  for (const auto& entry : kHandlers) {
    if (type == entry.type) return entry.make(service, config);
  }
  return absl::InvalidArgumentError(common::str_cat("unknown handler type \"", type,
                                                 "\"; known: ", common::join(handler_types(), ", ")));
}

}  // namespace strait::agent
