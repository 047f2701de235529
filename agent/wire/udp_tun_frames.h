#pragma once

// GOST's UDP tun framing read off a stream (PROTOCOLS.md §3; socks5 UDPTun and relay BIND
// over UDP), for the handlers that carry those datagrams.

#include <string>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "agent/channel/channel.h"
#include "agent/protocol/socks5.h"

namespace strait::agent {

struct TunFramesEnd {
  error_code error;    // of the stream; empty when a bad frame ended the reading
  std::string reason;  // why the frame was refused, else empty
};

// Reads frames from `stream` until it ends or a frame is malformed, awaiting
// `on_frame(address, payload)` for each; `received` holds bytes read before (and is the
// reading buffer, bounded by one frame plus one chunk).
template <typename OnFrame>
asio::awaitable<TunFramesEnd> read_udp_tun_frames(Stream& stream, std::string& received, OnFrame on_frame) {
  constexpr size_t kReadChunk = 16 * 1024;
  for (;;) {
    auto bytes = std::span(reinterpret_cast<const uint8_t*>(received.data()), received.size());
    auto frame = socks5::parse_udp_tun_frame(bytes);
    if (frame.state == ParseState::kInvalid) co_return TunFramesEnd{{}, frame.reason};
    if (frame.state == ParseState::kComplete) {
      co_await on_frame(frame.value.address, bytes.subspan(frame.value.payload_offset, frame.value.payload_size));
      received.erase(0, frame.size);
      continue;
    }
    size_t held = received.size();
    received.resize(held + kReadChunk);
    auto [error, n] = co_await stream.async_read_some(asio::buffer(received.data() + held, kReadChunk),
                                                      asio::as_tuple(asio::use_awaitable));
    received.resize(held + n);
    if (error) co_return TunFramesEnd{error, {}};
  }
}

}  // namespace strait::agent
