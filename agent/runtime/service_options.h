#pragma once

#include <cstddef>

#include "absl/status/statusor.h"
#include "agent/channel/channel.h"
#include "agent/relay/relay.h"
#include "strait/v1/config.pb.h"

namespace strait::agent {

// What a service's metadata says about its sockets, its connections' lifetime and its
// limits, with the defaults in one place. Keys are GOST's where GOST has one
// (common/metadata.cc lists them all with their ranges).
struct ServiceOptions {
  ListenOptions listen;      // address, backlog, keepalive, UDP sessions (per worker)
  RelayOptions relay;        // idle and half-close timeouts (udp: ttl)
  size_t max_connections = 0;  // per service; 0: only the agent-wide limit
  bool datagram = false;       // a udp listener: sessions, not connections
};

// The default UDP session idle time (GOST's `ttl` for udp listeners).
constexpr std::chrono::seconds kDefaultUdpTtl{5};
// Clients a udp service serves at once when `maxConnections` is not set.
constexpr size_t kDefaultUdpSessions = 10000;

absl::StatusOr<ServiceOptions> parse_service_options(const config::v1::ServiceConfig& service, size_t workers);

}  // namespace strait::agent
