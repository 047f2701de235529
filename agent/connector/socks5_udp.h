#pragma once

#include <boost/asio/awaitable.hpp>

#include "agent/channel/channel.h"
#include "common/address.h"

namespace strait::agent {

// The datagram Streams a socks5 connector returns for UDP targets: each write sends one
// datagram to `target`, each read returns the payload of one datagram from it.

// GOST's UDPTun: datagrams framed on the SOCKS5 connection itself
// (RSV(2) = length | FRAG | ATYP ADDR PORT | DATA), so UDP crosses any chain.
StreamPtr make_udp_tun_client_stream(StreamPtr tunnel, common::HostPort target);

// Standard UDP ASSOCIATE (RFC 1928 §7): datagrams with the SOCKS5 UDP header go by UDP to the
// relay address the server replied with (its host when the reply names an unspecified
// address); `control` is the TCP connection that keeps the association alive.
asio::awaitable<Result<StreamPtr>> make_udp_associate_client_stream(StreamPtr control,
                                                                    const common::HostPort& relay_address,
                                                                    const common::HostPort& target, size_t buffer_size);

}  // namespace strait::agent
