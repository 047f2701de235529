#pragma once

#include "agent/connector/connector.h"

namespace strait::agent {

// GOST's relay protocol, client side (PROTOCOLS.md §3). The request goes out at once in its
// own write and the response is read, and checked, before the first payload byte is returned:
// that works with GOST servers in both `nodelay` modes and with targets that speak first.
// `nodelay=true` waits for the response before returning instead (connect errors are then
// reported at once). UDP datagrams are framed on the stream.
absl::StatusOr<std::unique_ptr<Connector>> make_relay_connector(const config::v1::NodeConfig& node);

}  // namespace strait::agent
