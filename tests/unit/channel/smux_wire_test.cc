// An smux session facing a raw socket: the bytes it writes and how it meets a peer's bytes.
#include "agent/channel/smux_session.h"

#include <gtest/gtest.h>

#include "unit/channel/smux_test_support.h"

namespace strait::agent::smux_test {
namespace {

TEST(SmuxSession, WritesTheWireBytesOfAStreamsLife) {
  asio::io_context io;
  run_for(io, [&]() -> asio::awaitable<void> {
    auto peer = co_await raw_peer(true, quiet(1));
    auto stream = co_await peer.session->open_stream();
    EXPECT_TRUE(stream);
    EXPECT_EQ(co_await read_exactly(peer.raw, 8), frame(1, smux::command::kSyn, 3));
    co_await asio::async_write(**stream, asio::buffer("hi", 2), kUseTuple);
    EXPECT_EQ(co_await read_exactly(peer.raw, 10), std::string("\x01\x02\x02\x00\x03\x00\x00\x00hi", 10));
    (*stream)->shutdown_send();
    EXPECT_EQ(co_await read_exactly(peer.raw, 8), std::string("\x01\x01\x00\x00\x03\x00\x00\x00", 8));
    // The peer answers on stream 3, ends it, and opens stream 2 of its own.
    std::string input = frame(1, smux::command::kPsh, 3, "yo") + frame(1, smux::command::kFin, 3) +
                        frame(1, smux::command::kSyn, 2) + frame(1, smux::command::kPsh, 2, "second");
    co_await asio::async_write(peer.raw, asio::buffer(input), kUseTuple);
    auto [received, end] = co_await read_all(**stream);
    EXPECT_EQ(received, "yo");
    EXPECT_EQ(end, asio::error::eof);
    auto accepted = co_await peer.session->accept_stream();
    EXPECT_TRUE(accepted);
    char buffer[16];
    auto [error, n] = co_await (*accepted)->async_read_some(asio::buffer(buffer), kUseTuple);
    EXPECT_EQ(std::string(buffer, n), "second");
    EXPECT_EQ(peer.session->stream_count(), 2u);
    stream->reset();  // the stream is forgotten: what comes for it later is dropped
    EXPECT_EQ(peer.session->stream_count(), 1u);
    std::string late = frame(1, smux::command::kPsh, 3, "late") + frame(1, smux::command::kPsh, 2, "!");
    co_await asio::async_write(peer.raw, asio::buffer(late), kUseTuple);
    auto [bang_error, bang] = co_await (*accepted)->async_read_some(asio::buffer(buffer), kUseTuple);
    EXPECT_EQ(std::string(buffer, bang), "!");
    EXPECT_EQ(peer.session->buffered_bytes(), 0u);
    peer.session->close();
  }());
}

TEST(SmuxSession, Version2SendsWindowUpdateAfterTheFirstRead) {
  asio::io_context io;
  run_for(io, [&]() -> asio::awaitable<void> {
    auto peer = co_await raw_peer(true, quiet(2));
    std::string input = frame(2, smux::command::kSyn, 2) + frame(2, smux::command::kPsh, 2, "hello");
    co_await asio::async_write(peer.raw, asio::buffer(input), kUseTuple);
    auto stream = co_await peer.session->accept_stream();
    EXPECT_TRUE(stream);
    char buffer[16];
    auto [error, n] = co_await (*stream)->async_read_some(asio::buffer(buffer), kUseTuple);
    EXPECT_EQ(std::string(buffer, n), "hello");
    // UPD: consumed 5, window = max_stream_buffer 65536.
    EXPECT_EQ(co_await read_exactly(peer.raw, 16),
              std::string("\x02\x04\x08\x00\x02\x00\x00\x00\x05\x00\x00\x00\x00\x00\x01\x00", 16));
    peer.session->close();
  }());
}

TEST(SmuxSession, ThePeerClosingTheConnectionEndsItsStreamsAfterTheirData) {
  asio::io_context io;
  run_for(io, [&]() -> asio::awaitable<void> {
    auto peer = co_await raw_peer(true, quiet(1));
    std::string input = frame(1, smux::command::kSyn, 2) + frame(1, smux::command::kPsh, 2, "tail");
    co_await asio::async_write(peer.raw, asio::buffer(input), kUseTuple);
    auto stream = co_await peer.session->accept_stream();
    EXPECT_TRUE(stream);
    peer.raw.close();
    auto [received, end] = co_await read_all(**stream);
    EXPECT_EQ(received, "tail");
    EXPECT_EQ(end, asio::error::connection_reset);  // no FIN came: not a clean end
    EXPECT_TRUE(peer.session->closed());
    auto [write_error, n] = co_await (*stream)->async_write_some(asio::buffer("x", 1), kUseTuple);
    EXPECT_EQ(write_error, asio::error::connection_reset);
    auto opened = co_await peer.session->open_stream();
    EXPECT_FALSE(opened);
  }());
}

TEST(SmuxSession, ReceiveBufferLimitPausesTheReaderUntilTheApplicationReads) {
  asio::io_context io;
  run_for(io, [&]() -> asio::awaitable<void> {
    smux::Config config = quiet(1);
    config.max_receive_buffer = 65536;
    auto peer = co_await raw_peer(false, config);
    auto executor = co_await asio::this_coro::executor;
    // Stream 3 gets 256 KiB that nobody reads; stream 5 opens behind them.
    std::string data = testing::payload(256 * 1024, 3);
    std::string input = frame(1, smux::command::kSyn, 3);
    for (size_t offset = 0; offset < data.size(); offset += 32768) {
      input += frame(1, smux::command::kPsh, 3, std::string_view(data).substr(offset, 32768));
    }
    input += frame(1, smux::command::kSyn, 5) + frame(1, smux::command::kPsh, 5, "hello");
    Latch latch(executor, 1);
    latch.spawn([](tcp::socket& raw, std::string& bytes) -> asio::awaitable<void> {
      co_await asio::async_write(raw, asio::buffer(bytes), kUseTuple);
    }(peer.raw, input));
    auto first = co_await peer.session->accept_stream();
    EXPECT_TRUE(first);
    asio::steady_timer timeout(executor, 300ms);
    auto second = co_await (peer.session->accept_stream() || timeout.async_wait(kUseTuple));
    EXPECT_EQ(second.index(), 1u) << "the reader went past the receive buffer limit";
    EXPECT_GE(peer.session->buffered_bytes(), 65536u);
    EXPECT_LT(peer.session->buffered_bytes(), 65536u + 32768u);
    std::string received(data.size(), '\0');
    auto [error, n] = co_await asio::async_read(**first, asio::buffer(received), kUseTuple);
    EXPECT_FALSE(error);
    EXPECT_TRUE(n == data.size() && received == data);
    auto last = co_await peer.session->accept_stream();
    EXPECT_TRUE(last);
    char buffer[8];
    auto [last_error, last_n] = co_await (*last)->async_read_some(asio::buffer(buffer), kUseTuple);
    EXPECT_EQ(std::string(buffer, last_n), "hello");
    co_await latch.wait();
    peer.session->close();
  }());
}

TEST(SmuxSession, KeepaliveSendsNopAndClosesASilentSession) {
  asio::io_context io;
  run_for(io, [&]() -> asio::awaitable<void> {
    smux::Config config;
    config.keepalive_interval = 50ms;
    config.keepalive_timeout = 200ms;
    auto peer = co_await raw_peer(false, config);
    auto accepted = co_await peer.session->accept_stream();  // ends with the session
    EXPECT_EQ(accepted.error(), asio::error::timed_out);
    EXPECT_TRUE(peer.session->closed());
    std::string nops;
    auto [error, n] = co_await asio::async_read(peer.raw, asio::dynamic_buffer(nops), kUseTuple);
    EXPECT_EQ(error, asio::error::eof);
    EXPECT_GE(nops.size(), 8u);
    EXPECT_EQ(nops.size() % 8, 0u);
    for (size_t offset = 0; offset + 8 <= nops.size(); offset += 8) {
      EXPECT_EQ(nops.substr(offset, 8), frame(1, smux::command::kNop, 0));
    }
  }());
}

TEST(SmuxSession, MalformedFramesEndOnlyTheirSession) {
  struct Case {
    int version;
    std::string input;
  };
  std::vector<Case> cases = {
      {1, frame(2, smux::command::kSyn, 3)},                                                       // unknown version
      {1, std::string("\x01\x07\x00\x00\x03\x00\x00\x00", 8)},                                     // unknown command
      {2, frame(2, smux::command::kSyn, 3) + std::string("\x02\x04\x04\x00\x03\x00\x00\x00", 8)},  // UPD length 4
      {1, frame(1, smux::command::kSyn, 3) + frame(1, smux::command::kSyn, 3)},                    // stream id reused
      {2, frame(2, smux::command::kSyn, 3) + update_frame(3, 1, 65536)},                           // consumed > written
  };
  asio::io_context io;
  run_for(io, [&]() -> asio::awaitable<void> {
    auto healthy = co_await session_pair(quiet(1), quiet(1));
    auto client = co_await healthy.client->open_stream();
    auto server = co_await healthy.server->accept_stream();
    for (const auto& c : cases) {
      auto peer = co_await raw_peer(false, quiet(c.version));
      co_await asio::async_write(peer.raw, asio::buffer(c.input), kUseTuple);
      Result<StreamPtr> accepted = asio::error::would_block;
      do {
        accepted = co_await peer.session->accept_stream();
      } while (accepted);
      EXPECT_EQ(accepted.error(), asio::error::connection_reset);
      EXPECT_TRUE(peer.session->closed());
      char byte;
      auto [error, n] = co_await peer.raw.async_read_some(asio::buffer(&byte, 1), kUseTuple);
      EXPECT_EQ(error, asio::error::eof) << "the session did not close its connection";
    }
    co_await asio::async_write(**client, asio::buffer("still here", 10), kUseTuple);
    char buffer[10];
    auto [error, n] = co_await asio::async_read(**server, asio::buffer(buffer), kUseTuple);
    EXPECT_EQ(std::string(buffer, n), "still here");
    EXPECT_FALSE(healthy.client->closed());
    EXPECT_FALSE(healthy.server->closed());
    healthy.close();
  }());
}

}  // namespace
}  // namespace strait::agent::smux_test
