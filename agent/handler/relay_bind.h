#pragma once

// GOST relay BIND, server side (PROTOCOLS.md §3): what a GOST `rtcp://` or `rudp://` service
// (remote port forwarding) asks of the relay node at the end of its chain.

#include <string>

#include "agent/handler/handler.h"
#include "agent/protocol/smux.h"
#include "common/address.h"

namespace strait::agent {

// Listens on `address` (an empty host: every interface; port 0: any), replies OK with the
// bound address, then runs an smux *client* session over the client's connection and opens
// one stream per inbound connection, which starts with a relay OK response naming the
// inbound peer, then carries its bytes. Ends, closing the listener, when the session ends.
// A port in use gets ServiceUnavailable, as GOST answers. Inbound connections are bounded by
// the session's stream cap (`mux.maxStreams`); `early` holds bytes read after the request.
asio::awaitable<void> serve_relay_bind_tcp(StreamPtr client, common::HostPort address, std::string early,
                                           smux::Config mux, const HandlerContext& ctx);

// Binds a UDP socket on `address`, replies OK with it, then carries datagrams in GOST's UDP
// tun framing: a frame from the client goes out of the socket to the frame's address (an IP
// literal), a datagram arriving from anywhere comes back framed with its source. Ends with the
// client's connection, or after the relay's idle timeout with nothing passed.
asio::awaitable<void> serve_relay_bind_udp(StreamPtr client, common::HostPort address, std::string early,
                                           const HandlerContext& ctx);

}  // namespace strait::agent
