#pragma once

#include "agent/connector/connector.h"

namespace strait::agent {

// Shadowsocks AEAD UDP client (`ssu`): over a datagram channel (the udp dialer), each
// datagram written goes as SALT | seal(target address | payload) and each packet read is
// opened and returned without its address; packets that fail authentication are dropped.
// UDP targets only; UDP over a stream hop is not supported.
absl::StatusOr<std::unique_ptr<Connector>> make_ssu_connector(const config::v1::NodeConfig& node);

}  // namespace strait::agent
