#include "agent/channel/ws_stream.h"

#include <gtest/gtest.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "agent/channel/tcp.h"
#include "support/asio_test.h"

namespace strait::agent {
namespace {

using namespace asio::experimental::awaitable_operators;
using testing::kUseTuple;
using testing::run_for;
using tcp = asio::ip::tcp;

const websocket::MaskKey kMask = {0x11, 0x22, 0x33, 0x44};

// A connected pair: our WebSocket stream in `role` on one end, a raw socket (the peer,
// writing frames by hand) on the other.
struct Ends {
  StreamPtr ours;
  tcp::socket peer;
};

asio::awaitable<Ends> connect(websocket::Role role, std::string prefetched = {}) {
  auto executor = co_await asio::this_coro::executor;
  tcp::acceptor acceptor(executor, {asio::ip::make_address("127.0.0.1"), 0});
  tcp::socket peer(executor);
  co_await peer.async_connect(acceptor.local_endpoint(), asio::use_awaitable);
  auto accepted = co_await acceptor.async_accept(asio::use_awaitable);
  auto ours = make_ws_stream(std::make_unique<TcpStream>(std::move(accepted)),
                             {.role = role, .prefetched = std::move(prefetched)});
  co_return Ends{std::move(ours), std::move(peer)};
}

std::string data_frame(std::string_view payload, bool masked) {
  websocket::HeaderBytes header;
  auto mask = masked ? std::optional(kMask) : std::nullopt;
  size_t size = websocket::encode_header(websocket::opcode::kBinary, payload.size(), mask, header);
  std::string frame(reinterpret_cast<const char*>(header.data()), size);
  std::string body(payload);
  if (masked) websocket::apply_mask(std::span(reinterpret_cast<uint8_t*>(body.data()), body.size()), kMask, 0);
  return frame + body;
}

asio::awaitable<std::string> read_bytes(tcp::socket& socket, size_t size) {
  std::string bytes(size, '\0');
  auto [error, n] = co_await asio::async_read(socket, asio::buffer(bytes), kUseTuple);
  EXPECT_FALSE(error) << error.message();
  bytes.resize(n);
  co_return bytes;
}

asio::awaitable<std::string> read_some(Stream& stream) {
  char chunk[256];
  auto [error, n] = co_await stream.async_read_some(asio::buffer(chunk), kUseTuple);
  EXPECT_FALSE(error) << error.message();
  co_return std::string(chunk, n);
}

TEST(WsStream, ServerAnswersAPingAndReadsTheDataAroundIt) {
  asio::io_context io;
  run_for(io, [&]() -> asio::awaitable<void> {
    auto ends = co_await connect(websocket::Role::kServer);
    std::string wire = data_frame("before ", true) + websocket::control_frame(websocket::opcode::kPing, "p1", kMask) +
                       data_frame("after", true);
    co_await asio::async_write(ends.peer, asio::buffer(wire), kUseTuple);
    std::string received;
    while (received.size() < 12) received += co_await read_some(*ends.ours);
    EXPECT_EQ(received, "before after");
    // The pong is unmasked (a server's) and echoes the ping's payload.
    EXPECT_EQ(co_await read_bytes(ends.peer, 4), std::string("\x8A\x02p1", 4));
  }());
}

TEST(WsStream, ClientMasksItsFramesAndAnswersTheServersClose) {
  asio::io_context io;
  run_for(io, [&]() -> asio::awaitable<void> {
    auto ends = co_await connect(websocket::Role::kClient);
    co_await asio::async_write(*ends.ours, asio::buffer(std::string("abc")), kUseTuple);
    std::string frame = co_await read_bytes(ends.peer, 2 + 4 + 3);
    EXPECT_EQ(frame.substr(0, 2), std::string("\x82\x83", 2));
    if (frame.size() != 9) co_return;
    websocket::MaskKey key;
    std::memcpy(key.data(), frame.data() + 2, 4);
    std::string payload = frame.substr(6);
    websocket::apply_mask(std::span(reinterpret_cast<uint8_t*>(payload.data()), payload.size()), key, 0);
    EXPECT_EQ(payload, "abc");
    // The server's close frame ends our reads; our answer is a masked close frame.
    std::string close = websocket::control_frame(websocket::opcode::kClose, websocket::close_payload(1000), std::nullopt);
    co_await asio::async_write(ends.peer, asio::buffer(close), kUseTuple);
    char byte;
    auto [eof, n] = co_await ends.ours->async_read_some(asio::buffer(&byte, 1), kUseTuple);
    EXPECT_EQ(eof, asio::error::eof) << eof.message();
    std::string answer = co_await read_bytes(ends.peer, 2 + 4 + 2);
    EXPECT_EQ(answer.substr(0, 2), std::string("\x88\x82", 2));
    auto [write_error, written] = co_await asio::async_write(*ends.ours, asio::buffer(std::string("late")), kUseTuple);
    EXPECT_TRUE(write_error) << "a write after the closing handshake went through";
  }());
}

TEST(WsStream, AnUnmaskedClientFrameGetsClose1002AndTheConnectionEnds) {
  asio::io_context io;
  run_for(io, [&]() -> asio::awaitable<void> {
    auto ends = co_await connect(websocket::Role::kServer);
    std::string bad = data_frame("unmasked", false);
    co_await asio::async_write(ends.peer, asio::buffer(bad), kUseTuple);
    char chunk[64];
    auto [error, n] = co_await ends.ours->async_read_some(asio::buffer(chunk), kUseTuple);
    EXPECT_EQ(error, asio::error::connection_aborted) << error.message();
    EXPECT_EQ(co_await read_bytes(ends.peer, 4), std::string("\x88\x02\x03\xEA", 4));
    // Then the server drops the connection (no close answer from this peer: the grace ends it).
    auto [end, more] = co_await ends.peer.async_read_some(asio::buffer(chunk), kUseTuple);
    EXPECT_EQ(end, asio::error::eof) << end.message();
  }());
}

TEST(WsStream, AnIdleStreamWaitsForTheSocketAndPrefetchedBytesComeFirst) {
  asio::io_context io;
  run_for(io, [&]() -> asio::awaitable<void> {
    auto ends = co_await connect(websocket::Role::kServer, data_frame("early", true));
    // Bytes read past the handshake make the stream readable at once.
    co_await ends.ours->async_wait_readable(asio::use_awaitable);
    EXPECT_EQ(co_await read_some(*ends.ours), "early");
    // With nothing there the wait holds until the peer sends.
    asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::milliseconds(200));
    auto first = co_await (ends.ours->async_wait_readable(asio::use_awaitable) || timer.async_wait(asio::use_awaitable));
    EXPECT_EQ(first.index(), 1u) << "an idle stream was readable";
    std::string frame = data_frame("late", true);
    co_await asio::async_write(ends.peer, asio::buffer(frame), kUseTuple);
    co_await ends.ours->async_wait_readable(asio::use_awaitable);
    EXPECT_EQ(co_await read_some(*ends.ours), "late");
  }());
}

TEST(WsStream, ALargeWriteGoesAsFramesOfAtMostARelayBuffer) {
  asio::io_context io;
  run_for(io, [&]() -> asio::awaitable<void> {
    auto ends = co_await connect(websocket::Role::kServer);
    const std::string big = testing::payload(200 * 1024, 3);
    auto [error, n] = co_await ends.ours->async_write_some(asio::buffer(big), kUseTuple);
    EXPECT_FALSE(error) << error.message();
    EXPECT_EQ(n, 64u * 1024);
    if (n != 64u * 1024) co_return;
    std::string frame = co_await read_bytes(ends.peer, 10 + n);
    EXPECT_EQ(frame.substr(0, 10), std::string("\x82\x7F\0\0\0\0\0\x01\0\0", 10));
    EXPECT_TRUE(frame.substr(10) == big.substr(0, n));
  }());
}

}  // namespace
}  // namespace strait::agent
