#include "agent/channel/registry.h"

#include "agent/channel/h2.h"
#include "agent/channel/kcp.h"
#include "agent/channel/mux.h"
#include "agent/channel/pht.h"
#include "agent/channel/tcp.h"
#include "agent/channel/tls.h"
#include "agent/channel/udp.h"
#include "agent/channel/ws.h"
#include "common/strings.h"

namespace strait::agent {
namespace {

using config::v1::Config;
using config::v1::NodeConfig;
using config::v1::ServiceConfig;

struct ListenerEntry {
  const char* type;
  ListenerMaker make;
};

struct DialerEntry {
  const char* type;
  DialerMaker make;
};

absl::StatusOr<std::unique_ptr<ListenerFactory>> tcp_listener(const ServiceConfig&, const Config&) {
  return make_tcp_listener_factory();
}
absl::StatusOr<std::unique_ptr<ListenerFactory>> udp_listener(const ServiceConfig&, const Config&) {
  return make_udp_listener_factory();
}
absl::StatusOr<std::unique_ptr<Dialer>> tcp_dialer(const NodeConfig&) { return make_tcp_dialer(); }
absl::StatusOr<std::unique_ptr<Dialer>> udp_dialer(const NodeConfig&) { return make_udp_dialer(); }

constexpr ListenerEntry kListeners[] = {
    {"tcp", tcp_listener},
    {"udp", udp_listener},
    {"tls", make_tls_listener_factory},
    {"ws", make_ws_listener_factory},
    {"wss", make_wss_listener_factory},
    {"mtcp", make_mtcp_listener_factory},
    {"mtls", make_mtls_listener_factory},
    {"mws", make_mws_listener_factory},
    {"mwss", make_mwss_listener_factory},
    {"h2", make_h2_listener_factory},
    {"h2c", make_h2c_listener_factory},
    {"http2", make_http2_listener_factory},
    {"pht", make_pht_listener_factory},
    {"phts", make_phts_listener_factory},
    {"kcp", make_kcp_listener_factory},
};

constexpr DialerEntry kDialers[] = {
    {"tcp", tcp_dialer},
    {"udp", udp_dialer},
    {"tls", make_tls_dialer},
    {"ws", make_ws_dialer},
    {"wss", make_wss_dialer},
    {"mtcp", make_mtcp_dialer},
    {"mtls", make_mtls_dialer},
    {"mws", make_mws_dialer},
    {"mwss", make_mwss_dialer},
    {"h2", make_h2_dialer},
    {"h2c", make_h2c_dialer},
    {"http2", make_http2_dialer},
    {"pht", make_pht_dialer},
    {"phts", make_phts_dialer},
    {"kcp", make_kcp_dialer},
};

template <typename Table>
std::vector<std::string> names_of(const Table& table) {
  std::vector<std::string> names;
  for (const auto& entry : table) names.emplace_back(entry.type);
  return names;
}

}  // namespace

std::vector<std::string> listener_types() { return names_of(kListeners); }
std::vector<std::string> dialer_types() { return names_of(kDialers); }

absl::StatusOr<std::unique_ptr<ListenerFactory>> make_listener_factory(const ServiceConfig& service,
                                                                       const Config& config) {
  const std::string type = service.listener().type().empty() ? "tcp" : service.listener().type();
  for (const auto& entry : kListeners) {
    if (type == entry.type) return entry.make(service, config);
  }
  return absl::InvalidArgumentError(
      common::str_cat("unknown listener type \"", type, "\"; known: ", common::join(listener_types(), ", ")));
}

absl::StatusOr<std::unique_ptr<Dialer>> make_dialer(const NodeConfig& node) {
  const std::string type = node.dialer().type().empty() ? "tcp" : node.dialer().type();
  for (const auto& entry : kDialers) {
    if (type == entry.type) return entry.make(node);
  }
  return absl::InvalidArgumentError(
      common::str_cat("unknown dialer type \"", type, "\"; known: ", common::join(dialer_types(), ", ")));
}

}  // namespace strait::agent
