#pragma once

#include <chrono>
#include <string>

#include <boost/asio/ip/udp.hpp>

#include "agent/channel/channel.h"

namespace strait::agent {

// udp listener: one socket per worker; each client address becomes a datagram Stream
// (a session) that ends when its handler closes it.
std::unique_ptr<ListenerFactory> make_udp_listener_factory();
// udp dialer: a connected UDP socket as a datagram Stream.
std::unique_ptr<Dialer> make_udp_dialer();

// "host:port" of a UDP endpoint, IPv6 hosts in brackets, as endpoint_to_string for TCP.
std::string endpoint_to_string(const asio::ip::udp::endpoint& endpoint);

// A UDP socket connected to `address` (host:port), the host resolved within `timeout`; what
// the udp and kcp dialers start from.
asio::awaitable<Result<asio::ip::udp::socket>> connect_udp_socket(asio::any_io_executor executor,
                                                                  const std::string& address,
                                                                  std::chrono::nanoseconds timeout);

}  // namespace strait::agent
