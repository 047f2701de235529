// A WebSocket server's input: the upgrade request (Beast's HTTP parser, then our checks of
// RFC 6455 §4.2.1), then the client's frames through our decoder in pieces whose sizes the
// input chooses; the same frames through a client-role decoder too.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>

#include "agent/protocol/websocket.h"

namespace http = boost::beast::http;
using namespace strait::agent::websocket;

namespace {

// Decodes `bytes` in pieces of 1..256 bytes as `sizes` says; checks that payload never
// exceeds what came in.
void decode_all(Role role, std::vector<uint8_t> bytes, const uint8_t* sizes, size_t sizes_count) {
  FrameDecoder decoder(role);
  size_t at = 0;
  size_t turn = 0;
  while (at < bytes.size()) {
    size_t piece = sizes_count == 0 ? bytes.size() : size_t{sizes[turn++ % sizes_count]} + 1;
    piece = std::min(piece, bytes.size() - at);
    auto result = decoder.decode(std::span(bytes.data() + at, piece));
    if (result.payload > piece) __builtin_trap();
    if (result.ping && result.ping->size() > kMaxControlPayload) __builtin_trap();
    if (!result.error.empty() || result.closed) return;
    at += piece;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  // The first byte: how many of the next bytes give the pieces' sizes.
  size_t sizes_count = std::min<size_t>(data[0] % 16, size - 1);
  const uint8_t* sizes = data + 1;
  data += 1 + sizes_count;
  size -= 1 + sizes_count;

  http::request_parser<http::empty_body> parser;
  parser.header_limit(8 * 1024);
  parser.eager(true);
  boost::beast::error_code ec;
  size_t used = parser.put(boost::asio::buffer(data, size), ec);
  if (!ec && parser.is_header_done()) {
    (void)check_upgrade_request(parser.get());
    data += used;
    size -= used;
  }
  std::vector<uint8_t> frames(data, data + size);
  decode_all(Role::kServer, frames, sizes, sizes_count);
  decode_all(Role::kClient, frames, sizes, sizes_count);
  return 0;
}
