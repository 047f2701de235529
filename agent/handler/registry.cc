#include "agent/handler/registry.h"

#include "agent/handler/auto.h"
#include "agent/handler/forward.h"
#include "agent/handler/http.h"
#include "agent/handler/relay.h"
#include "agent/handler/socks4.h"
#include "agent/handler/socks5.h"
#include "common/strings.h"

namespace strait::agent {
namespace {

struct HandlerEntry {
  const char* type;
  HandlerFactory make;
};

constexpr HandlerEntry kHandlers[] = {
    {"auto", make_auto_handler},
    {"http", make_http_handler},
    {"relay", make_relay_handler},
    {"socks5", make_socks5_handler},
    {"socks", make_socks5_handler},  // GOST alias
    {"socks4", make_socks4_handler},
    {"socks4a", make_socks4_handler},
    {"tcp", make_tcp_forward_handler},
    {"forward", make_tcp_forward_handler},
    {"udp", make_udp_forward_handler},
};

}  // namespace

std::vector<std::string> handler_types() {
  std::vector<std::string> names;
  for (const auto& entry : kHandlers) names.emplace_back(entry.type);
  return names;
}

absl::StatusOr<std::unique_ptr<Handler>> make_handler(const config::v1::ServiceConfig& service) {
  const std::string& type = service.handler().type();
  for (const auto& entry : kHandlers) {
    if (type == entry.type) return entry.make(service);
  }
  return absl::InvalidArgumentError(common::str_cat("unknown handler type \"", type,
                                                 "\"; known: ", common::join(handler_types(), ", ")));
}

}  // namespace strait::agent
