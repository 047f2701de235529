#pragma once

#include "agent/connector/connector.h"

namespace strait::agent {

// socks4 / socks4a: a SOCKS4 hop, CONNECT only. Host names go to the hop as SOCKS4a unless the
// node sets `disable4a=true` (then they are resolved here, IPv4 only, as GOST does); the
// node's auth username is sent as the user id.
absl::StatusOr<std::unique_ptr<Connector>> make_socks4_connector(const config::v1::NodeConfig& node);

}  // namespace strait::agent
