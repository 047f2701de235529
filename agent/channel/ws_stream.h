#pragma once

#include <chrono>
#include <string>

#include "agent/channel/channel.h"
#include "agent/protocol/websocket.h"

namespace strait::agent {

struct WsStreamOptions {
  websocket::Role role = websocket::Role::kServer;
  std::string prefetched{};  // bytes read past the handshake: the first frames
  // A client's keepalive: a ping this often, and the connection ends when the peer has sent
  // nothing for twice as long. Zero: none.
  std::chrono::nanoseconds ping_interval{0};
};

// A WebSocket connection after its handshake (RFC 6455) over `below`: each write is one
// binary frame of at most a relay buffer, reads return the payloads of the peer's data
// frames as one byte stream, pings are answered. shutdown_send() sends a close frame
// (WebSocket has no half close: the peer answers with its own and stops sending too);
// close() sends one if needed, then ends the connection. Frames are decoded in the reader's
// own buffer and a client masks into a pooled one taken for the write, so an idle
// connection holds no buffer and waits for readability below. A peer that breaks the
// protocol gets a close frame with 1002 and a log line.
StreamPtr make_ws_stream(StreamPtr below, WsStreamOptions options);

}  // namespace strait::agent
