#pragma once

#include <string>

#include "agent/handler/handler.h"
#include "agent/handler/udp_association.h"
#include "agent/protocol/socks5.h"
#include "agent/observe/session_log.h"

namespace strait::agent {

// UDP ASSOCIATE (RFC 1928 §7): opens a UDP relay socket on the address the client reached
// this host on, replies with it, and relays datagrams between the client and their targets
// until the control connection ends. Only datagrams from the control connection's IP (and
// from the port the request named, when not 0) are taken; fragmented ones are dropped.
asio::awaitable<void> serve_udp_associate(StreamPtr client, const socks5::Request& request,
                                          const HandlerContext& ctx, UdpAssociation::Limits limits,
                                          SessionLog& session);

// GOST's UDPTun in relay mode: the same relay, with datagrams framed on the control
// connection itself. `buffered` holds bytes already read after the request.
asio::awaitable<void> serve_udp_tun(StreamPtr client, std::string buffered, const HandlerContext& ctx,
                                    UdpAssociation::Limits limits, SessionLog& session);

}  // namespace strait::agent
