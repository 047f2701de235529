#pragma once

#include "agent/connector/connector.h"

namespace strait::agent {

// socks5 / socks: a SOCKS5 hop (RFC 1928) with username/password auth (RFC 1929) when the
// node has auth. TCP targets use CONNECT; UDP targets use GOST's UDP-over-TCP command
// (works through any chain), or a standard UDP ASSOCIATE when the node sets `relay=udp`
// (needs the hop's UDP port reachable from this host, as with dante).
absl::StatusOr<std::unique_ptr<Connector>> make_socks5_connector(const config::v1::NodeConfig& node);

}  // namespace strait::agent
