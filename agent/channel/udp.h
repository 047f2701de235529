#pragma once

#include "agent/channel/channel.h"

namespace strait::agent {

// udp listener: one socket per worker; each client address becomes a datagram Stream
// (a session) that ends when its handler closes it.
std::unique_ptr<ListenerFactory> make_udp_listener_factory();
// udp dialer: a connected UDP socket as a datagram Stream.
std::unique_ptr<Dialer> make_udp_dialer();

}  // namespace strait::agent
