// Fuzzes an HTTP/2 server connection as the h2/h2c/http2 listeners run it: the bytes go to
// h2::Connection (agent/protocol/h2_connection), the same nghttp2 session and callbacks
// H2Session drives, and every complete request is answered by the listener's rule
// (h2::tunnel_request_status), its body read and echoed, its end answered, frames drained.
// First byte: how many bytes each receive() gets (1..256), so frames split everywhere; the
// connection's bytes follow (a client preface first, or nghttp2 refuses them at once).
#include <cstddef>
#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "agent/protocol/h2_connection.h"

namespace h2 = strait::agent::h2;

namespace {

struct CountingObserver final : h2::Observer {
  void on_stream_event(h2::StreamState& stream) override {
    if (stream.released) __builtin_trap();  // a released stream's owner is gone
    ++events;
  }
  size_t events = 0;
};

// What the listener and an echoing handler do between two reads.
void serve(h2::Connection& connection, std::vector<h2::StreamState*>& open, const h2::Limits& limits) {
  while (h2::StreamState* stream = connection.take_request()) {
    int status = h2::tunnel_request_status(stream->head, stream->head.method == "CONNECT" ? "" : "/tunnel");
    if (status != 200) {
      connection.submit_response(*stream, status, {}, true);
      connection.release(*stream);
      continue;
    }
    connection.submit_response(*stream, 200, {{"server", "fuzz"}}, false);
    open.push_back(stream);
  }
  if (connection.stream_count() > limits.max_concurrent_streams) __builtin_trap();  // the stream cap holds
  for (auto it = open.begin(); it != open.end();) {
    h2::StreamState& stream = **it;
    if (stream.buffered > limits.connection_window) __builtin_trap();  // flow control holds
    uint8_t buffer[4096];
    size_t n = connection.read(stream, buffer);
    if (n > 0) connection.write(stream, std::span<const uint8_t>(buffer, n));
    if (stream.remote_end && stream.buffered == 0) connection.end_stream(stream);
    if (stream.closed || stream.error != 0) {
      connection.release(stream);
      it = open.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t piece = size_t{data[0]} + 1;
  std::span<const uint8_t> input(data + 1, size - 1);
  h2::Limits limits;
  limits.max_concurrent_streams = 8;
  limits.stream_window = 32 * 1024;
  limits.connection_window = 64 * 1024;
  limits.send_buffer = 8 * 1024;
  CountingObserver observer;
  auto connection = h2::Connection::create(h2::Role::kServer, limits, &observer);
  if (!connection) return 0;
  std::vector<h2::StreamState*> open;
  std::vector<uint8_t> out;
  while (!input.empty() && connection->wants_read()) {
    auto chunk = input.first(std::min(piece, input.size()));
    input = input.subspan(chunk.size());
    if (connection->receive(chunk) != 0) {
      if (connection->protocol_error().empty()) __builtin_trap();  // the reason is always named
      break;
    }
    serve(*connection, open, limits);
    out.clear();
    if (connection->take_output(out, 1 << 20) != 0) break;
  }
  for (auto* stream : open) connection->release(*stream);
  out.clear();
  connection->take_output(out, 1 << 20);
  return 0;
}
