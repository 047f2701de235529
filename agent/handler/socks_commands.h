#pragma once

// CONNECT and BIND, served the same way for SOCKS4 and SOCKS5; only the replies differ.

#include <string>

#include "agent/handler/handler.h"
#include "agent/observe/session_log.h"
#include "common/address.h"
#include "common/metadata.h"

namespace strait::agent {

// What SOCKS4 and SOCKS5 handlers both read from their metadata: GOST's `readTimeout` (the
// handshake's deadline) and `bind` (BIND allowed).
struct SocksOptions {
  std::chrono::nanoseconds read_timeout;
  bool bind = false;
};
absl::StatusOr<SocksOptions> parse_socks_options(const common::Metadata& metadata);

// A reply in the client's protocol: success when `error` is empty, else the refusal that
// fits it; `address` is the bound (or peer) address the reply carries.
using SocksReplyEncoder = std::string (*)(const error_code& error, const common::HostPort& address);

// How long a BIND waits for its peer to connect.
constexpr std::chrono::seconds kBindAcceptTimeout{120};

// Dials `target` through the service's router, replies, then relays. `early` holds bytes the
// client sent right behind its request; they go to the target first.
asio::awaitable<void> serve_connect(StreamPtr client, const common::HostPort& target, std::string early,
                                    SocksReplyEncoder encode_reply, const HandlerContext& ctx, SessionLog& session);

// Serves BIND (SOCKS4, RFC 1928 §4): listens on the address the client reached this host
// on, replies with it, waits for one inbound connection (from `expected_peer`'s IP when that
// is an IP literal other than 0.0.0.0/::), replies with the peer's address, then relays.
// BIND listens on this host even when the service has a chain, as GOST's does.
asio::awaitable<void> serve_bind(StreamPtr client, std::string early, const common::HostPort& expected_peer,
                                 SocksReplyEncoder encode_reply, const HandlerContext& ctx, SessionLog& session);

}  // namespace strait::agent
