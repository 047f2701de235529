// A WebSocket server as the ws/wss/mws/mwss listeners configure Beast (binary, no message
// size limit, partial reads), fed a client's bytes: the upgrade request, then frames. Beast's
// test stream stands in for the socket, so no coroutine code is needed here.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/websocket/stream.hpp>

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  boost::asio::io_context io;
  beast::test::stream client_bytes(io, std::string_view(reinterpret_cast<const char*>(data), size));
  client_bytes.close_remote();  // the end of the input is the client's EOF
  beast::flat_buffer buffer(8 * 1024);
  http::request_parser<http::empty_body> parser;
  parser.header_limit(8 * 1024);
  beast::error_code ec;
  http::read(client_bytes, buffer, parser, ec);
  if (ec) return 0;
  auto request = parser.release();
  if (request.target() != "/ws") return 0;
  websocket::stream<beast::test::stream&> ws(client_bytes);
  ws.binary(true);
  ws.read_message_max(0);
  ws.accept(request, ec);
  if (ec) return 0;
  char chunk[16 * 1024];
  size_t total = 0;
  for (;;) {
    size_t n = ws.read_some(boost::asio::buffer(chunk), ec);
    if (ec) break;
    total += n;
    if (total > (64u << 20)) __builtin_trap();  // more payload than input: impossible
  }
  return 0;
}
