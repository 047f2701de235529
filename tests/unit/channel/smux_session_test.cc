#include "agent/channel/smux_session.h"

#include <gtest/gtest.h>

#include "unit/channel/smux_test_support.h"

namespace strait::agent::smux_test {
namespace {

class SmuxVersions : public ::testing::TestWithParam<int> {};

TEST_P(SmuxVersions, ManyStreamsCarryOneMegabyteEachWayAtOnce) {
  constexpr int kStreams = 8;
  constexpr size_t kSize = 1 << 20;
  asio::io_context io;
  run_for(
      io,
      [&]() -> asio::awaitable<void> {
        auto pair = co_await session_pair(quiet(GetParam()), quiet(GetParam()));
        auto executor = co_await asio::this_coro::executor;
        Latch latch(executor, 3 * kStreams);
        for (int i = 0; i < kStreams; ++i) {
          auto opened = co_await pair.client->open_stream();
          EXPECT_TRUE(opened);
          SharedStream stream(std::move(*opened));
          auto data = std::make_shared<std::string>(testing::payload(kSize, i + 1));
          latch.spawn([](SharedStream s, std::shared_ptr<std::string> out) -> asio::awaitable<void> {
            auto [error, n] = co_await asio::async_write(*s, asio::buffer(*out), kUseTuple);
            EXPECT_FALSE(error);
            EXPECT_EQ(n, out->size());
            s->shutdown_send();
          }(stream, data));
          latch.spawn([](SharedStream s, std::shared_ptr<std::string> expected) -> asio::awaitable<void> {
            auto [echo, end] = co_await read_all(*s);
            EXPECT_EQ(end, asio::error::eof);
            EXPECT_EQ(echo.size(), expected->size());
            EXPECT_TRUE(echo == *expected) << "the echo differs from what was sent";
          }(stream, data));
        }
        // The server echoes each stream while its client still writes: both directions at once.
        for (int i = 0; i < kStreams; ++i) {
          auto accepted = co_await pair.server->accept_stream();
          EXPECT_TRUE(accepted);
          latch.spawn([](SharedStream s) -> asio::awaitable<void> {
            std::array<char, 20000> buffer;
            for (;;) {
              auto [error, n] = co_await s->async_read_some(asio::buffer(buffer), kUseTuple);
              if (n > 0) co_await asio::async_write(*s, asio::buffer(buffer.data(), n), kUseTuple);
              if (error) break;
            }
            s->shutdown_send();
          }(SharedStream(std::move(*accepted))));
        }
        co_await latch.wait();
        // Each side's streams are gone with their coroutines: closed streams are forgotten.
        EXPECT_EQ(pair.client->stream_count(), 0u);
        EXPECT_EQ(pair.server->stream_count(), 0u);
        EXPECT_EQ(pair.server->buffered_bytes(), 0u);
        EXPECT_FALSE(pair.client->closed() || pair.server->closed());
        pair.close();
      }(),
      30s);
}

INSTANTIATE_TEST_SUITE_P(Smux, SmuxVersions, ::testing::Values(1, 2));

TEST(SmuxSession, KeepaliveKeepsAnIdlePairOpen) {
  asio::io_context io;
  run_for(io, [&]() -> asio::awaitable<void> {
    smux::Config config;
    config.keepalive_interval = 50ms;
    config.keepalive_timeout = 150ms;
    auto pair = co_await session_pair(config, config);
    asio::steady_timer idle(co_await asio::this_coro::executor, 600ms);
    co_await idle.async_wait(kUseTuple);
    EXPECT_FALSE(pair.client->closed());
    EXPECT_FALSE(pair.server->closed());
    pair.close();
  }());
}

TEST(SmuxSession, StreamLimitAnswersSynWithFin) {
  asio::io_context io;
  run_for(io, [&]() -> asio::awaitable<void> {
    smux::Config client_config = quiet(1);
    client_config.max_streams = 3;
    smux::Config server_config = quiet(1);
    server_config.max_streams = 2;
    auto pair = co_await session_pair(client_config, server_config);
    std::vector<StreamPtr> streams;
    for (int i = 0; i < 3; ++i) {
      auto opened = co_await pair.client->open_stream();
      EXPECT_TRUE(opened);
      streams.push_back(std::move(*opened));
    }
    auto fourth = co_await pair.client->open_stream();
    EXPECT_EQ(fourth.error(), asio::error::no_buffer_space);
    // The third stream is refused: its reader sees the end at once.
    auto [received, end] = co_await read_all(*streams[2]);
    EXPECT_EQ(end, asio::error::eof);
    EXPECT_EQ(pair.server->stream_count(), 2u);
    auto first = co_await pair.server->accept_stream();
    auto second = co_await pair.server->accept_stream();
    EXPECT_TRUE(first && second);
    // Closing streams on both sides makes room for another.
    streams[0].reset();
    first->reset();
    auto fifth = co_await pair.client->open_stream();
    EXPECT_TRUE(fifth);
    co_await asio::async_write(**fifth, asio::buffer("x", 1), kUseTuple);
    auto third = co_await pair.server->accept_stream();
    EXPECT_TRUE(third);
    char byte = 0;
    auto [error, n] = co_await (*third)->async_read_some(asio::buffer(&byte, 1), kUseTuple);
    EXPECT_EQ(n, 1u);
    EXPECT_EQ(byte, 'x');
    EXPECT_EQ(pair.server->stream_count(), 2u);
    pair.close();
  }());
}

}  // namespace
}  // namespace strait::agent::smux_test
