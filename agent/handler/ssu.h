#pragma once

#include "agent/handler/handler.h"

namespace strait::agent {

// Shadowsocks AEAD UDP server (`ssu`) over a datagram channel (the udp listener gives one
// session per client): each packet is SALT | seal(address | payload) and is relayed to its
// target through the router; answers go back sealed with their source address. Packets that
// fail authentication are dropped (counted, one debug line per session). A target flow, and
// the client's session, end after `udpConnTTL` (30 s) without traffic.
absl::StatusOr<std::unique_ptr<Handler>> make_ssu_handler(const config::v1::ServiceConfig& service);

}  // namespace strait::agent
