#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "agent/channel/channel.h"

namespace strait::agent {

// One protocol layer of a channel on the server side: TLS over TCP, WebSocket over TLS...
// It takes the stream below it and returns the stream above it, or the reason it could not.
class ServerLayer {
 public:
  virtual ~ServerLayer() = default;
  virtual asio::awaitable<Result<StreamPtr>> accept(StreamPtr below) const = 0;
};

// The client side of a layer; `address` is the node's host:port (SNI, the WebSocket Host).
class ClientLayer {
 public:
  virtual ~ClientLayer() = default;
  virtual asio::awaitable<Result<StreamPtr>> connect(StreamPtr below, const std::string& address) const = 0;
};

using ServerLayers = std::vector<std::shared_ptr<const ServerLayer>>;
using ClientLayers = std::vector<std::shared_ptr<const ClientLayer>>;

// Listeners of `base` whose accepted streams run `layers` bottom-up in Listener::handshake,
// all of them within `handshake_timeout` (then the connection is closed).
std::unique_ptr<ListenerFactory> make_layered_listener_factory(std::unique_ptr<ListenerFactory> base,
                                                               ServerLayers layers,
                                                               std::chrono::nanoseconds handshake_timeout);

// A dialer that dials with `base` and then runs `layers` bottom-up within `handshake_timeout`;
// handshake() runs the layers alone over a stream a previous hop opened.
std::unique_ptr<Dialer> make_layered_dialer(std::unique_ptr<Dialer> base, ClientLayers layers,
                                            std::chrono::nanoseconds handshake_timeout);

}  // namespace strait::agent
