#include "agent/connector/registry.h"

#include "agent/connector/forward.h"
#include "agent/connector/http.h"
#include "agent/connector/http2.h"
#include "agent/connector/relay.h"
#include "agent/connector/socks4.h"
#include "agent/connector/socks5.h"
#include "agent/connector/ss.h"
#include "agent/connector/ssu.h"
#include "common/strings.h"

namespace strait::agent {
namespace {

struct ConnectorEntry {
  const char* type;
  ConnectorFactory make;
};

constexpr ConnectorEntry kConnectors[] = {
    {"forward", make_forward_connector},
    {"http", make_http_connector},
    {"http2", make_http2_connector},
    {"relay", make_relay_connector},
    {"socks4", make_socks4_connector},
    {"socks4a", make_socks4_connector},
    {"socks5", make_socks5_connector},
    {"socks", make_socks5_connector},  // GOST alias
    {"ss", make_ss_connector},
    {"ssu", make_ssu_connector},
};

}  // namespace

std::vector<std::string> connector_types() {
  std::vector<std::string> names;
  for (const auto& entry : kConnectors) names.emplace_back(entry.type);
  return names;
}

absl::StatusOr<std::unique_ptr<Connector>> make_connector(const config::v1::NodeConfig& node) {
  const std::string& type = node.connector().type().empty() ? std::string("http") : node.connector().type();
  for (const auto& entry : kConnectors) {
    if (type == entry.type) return entry.make(node);
  }
  return absl::InvalidArgumentError(common::str_cat("unknown connector type \"", type,
                                                 "\"; known: ", common::join(connector_types(), ", ")));
}

}  // namespace strait::agent
