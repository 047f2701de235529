#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "agent/channel/channel.h"
#include "agent/channel/h2_session.h"

namespace strait::agent {

// How an HTTP/2 listener treats the connections its base listener accepts.
struct H2ListenerConfig {
  std::string name = "h2 listener";  // for log lines
  // The connection is TLS (the base runs it in handshake()) and must have selected ALPN h2.
  bool tls = false;
  // h2/h2c: each request is answered by the path rule (h2::tunnel_request_status) and, on
  // 200, accept() returns its stream as the tunnel. http2: every request is returned
  // unanswered, for the http2 handler.
  bool tunnel = true;
  std::string path;
  // Cleartext only: an HTTP/1.1 request with `Upgrade: h2c` is upgraded (RFC 7540 §3.2).
  bool accept_upgrade = false;
  size_t backlog = 128;  // streams waiting for accept(); more are refused (REFUSED_STREAM)
  std::chrono::nanoseconds handshake_timeout = std::chrono::seconds(10);
  H2SessionOptions session;
};

// Listeners whose accept() returns HTTP/2 streams rather than connections: each listener
// accepts connections from its `base` listener itself (one coroutine, started by the first
// accept()), runs their handshake on a coroutine per connection, and serves each with a
// server H2Session on the listener's worker. close() stops taking connections and sends
// GOAWAY on the sessions: their open streams go on, new ones are refused. take_pending()
// returns the streams that wait for accept(); close() resets those left.
std::unique_ptr<ListenerFactory> make_h2_session_listener_factory(std::unique_ptr<ListenerFactory> base,
                                                                  H2ListenerConfig config);

}  // namespace strait::agent
