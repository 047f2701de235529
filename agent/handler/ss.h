#pragma once

#include "agent/handler/handler.h"

namespace strait::agent {

// Shadowsocks AEAD server over a stream channel (`ss`, PROTOCOLS.md §6): the client's first
// chunk names the target (SOCKS5 address form), which is dialed through the service's router
// (so through its chain); the service's forward targets play no part, as in shadowsocks.
// Bad input (wrong key, a chunk that fails authentication, a replayed salt, random bytes, a
// bad address) gets no reply: the connection is read and discarded until the client closes
// it or `readTimeout` (30 s by default) from its start, then closed, and a debug line names
// the peer. Every salt that authenticated is remembered by the service (ss_salt_filter.h).
absl::StatusOr<std::unique_ptr<Handler>> make_ss_handler(const config::v1::ServiceConfig& service);

}  // namespace strait::agent
