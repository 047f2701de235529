#include "agent/relay/relay.h"

#include <gtest/gtest.h>

#include <optional>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "agent/channel/tcp.h"
#include "agent/net/pipe_pool.h"
#include "common/prefixed_stream.h"
#include "support/asio_test.h"

namespace strait::agent {
namespace {

using namespace asio::experimental::awaitable_operators;
using testing::kUseTuple;
using testing::run_for;

// Client app <-> [client stream | relay | target stream] <-> target app.
struct Topology {
  asio::ip::tcp::socket client_app;
  StreamPtr client_side;
  StreamPtr target_side;
  asio::ip::tcp::socket target_app;
};

asio::awaitable<Topology> make_topology(bool prefixed_client) {
  auto [client_app, client_socket] = co_await testing::tcp_pair();
  auto [target_socket, target_app] = co_await testing::tcp_pair();
  StreamPtr client_side = std::make_unique<TcpStream>(std::move(client_socket));
  if (prefixed_client) client_side = common::with_prefix(std::move(client_side), "early:");
  co_return Topology{std::move(client_app), std::move(client_side),
                     std::make_unique<TcpStream>(std::move(target_socket)), std::move(target_app)};
}

// Target app: reads everything until EOF, then answers with what it read, then closes.
asio::awaitable<std::string> echo_after_eof(asio::ip::tcp::socket& socket) {
  std::string received;
  char buffer[8192];
  for (;;) {
    auto [ec, n] = co_await socket.async_read_some(asio::buffer(buffer), kUseTuple);
    received.append(buffer, n);
    if (ec) break;
  }
  co_await asio::async_write(socket, asio::buffer(received), kUseTuple);
  socket.shutdown(asio::ip::tcp::socket::shutdown_send);
  co_return received;
}

asio::awaitable<std::string> send_then_read_all(asio::ip::tcp::socket& socket, std::string message) {
  co_await asio::async_write(socket, asio::buffer(message), kUseTuple);
  socket.shutdown(asio::ip::tcp::socket::shutdown_send);
  std::string reply;
  char buffer[8192];
  for (;;) {
    auto [ec, n] = co_await socket.async_read_some(asio::buffer(buffer), kUseTuple);
    reply.append(buffer, n);
    if (ec) break;
  }
  co_return reply;
}

void expect_round_trip(bool prefixed_client, bool expect_splice) {
  asio::io_context io;
  run_for(io, [&]() -> asio::awaitable<void> {
    auto topology = co_await make_topology(prefixed_client);
    std::string message = testing::payload(3 << 20);
    auto [relayed, echoed, reply] = co_await (
        relay(*topology.client_side, *topology.target_side, {}) && echo_after_eof(topology.target_app) &&
        send_then_read_all(topology.client_app, message));
    std::string expected = prefixed_client ? "early:" + message : message;
    EXPECT_EQ(echoed, expected);
    EXPECT_EQ(reply, expected);
    EXPECT_EQ(relayed.bytes_from_client, expected.size());
    EXPECT_EQ(relayed.bytes_to_client, expected.size());
    EXPECT_FALSE(relayed.error) << relayed.error.message();
    EXPECT_EQ(relayed.spliced, expect_splice);
  }());
}

TEST(Relay, SplicesPlainTcpBothWaysWithHalfClose) { expect_round_trip(false, true); }

TEST(Relay, CopiesWhenBytesAreBufferedInUserSpace) { expect_round_trip(true, false); }

TEST(Relay, IdleTimeoutEndsASilentRelay) {
  asio::io_context io;
  run_for(io, [&]() -> asio::awaitable<void> {
    auto topology = co_await make_topology(false);
    auto result = co_await relay(*topology.client_side, *topology.target_side, {std::chrono::milliseconds(100)});
    EXPECT_TRUE(result.idle_timeout);
    EXPECT_EQ(result.bytes_from_client, 0u);
  }());
}

TEST(Relay, ResetOnOneSideEndsBoth) {
  asio::io_context io;
  run_for(io, [&]() -> asio::awaitable<void> {
    auto topology = co_await make_topology(false);
    // SO_LINGER 0 makes close() send a reset.
    topology.client_app.set_option(asio::socket_base::linger(true, 0));
    topology.client_app.close();
    auto result = co_await relay(*topology.client_side, *topology.target_side, {});
    EXPECT_EQ(result.error, asio::error::connection_reset) << result.error.message();
    char byte;
    auto [ec, n] = co_await topology.target_app.async_read_some(asio::buffer(&byte, 1), kUseTuple);
    // The target side was closed too, not left hanging: it reads an end, not a timeout.
    EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
  }());
}

// Swaps this thread's pipe pool for one with `settings` for the life of the object.
class ScopedPipePool {
 public:
  explicit ScopedPipePool(PipePool::Settings settings)
      : saved_(std::exchange(PipePool::this_thread(), PipePool(settings))) {}
  ~ScopedPipePool() { PipePool::this_thread() = std::move(saved_); }

 private:
  PipePool saved_;
};

TEST(Relay, CopiesPlainTcpWhenNoPipeCanBeHad) {
  ScopedPipePool no_pipes({.max_pipes = 0, .pipe_size = 0});
  expect_round_trip(false, true);
  EXPECT_EQ(PipePool::this_thread().in_use(), 0u);
  EXPECT_GT(PipePool::this_thread().misses(), 0u) << "the relay asked for pipes and got none";
}

TEST(Relay, GivesPipesBackOnceEmpty) {
  ScopedPipePool pool({.max_pipes = 4, .pipe_size = 0});
  expect_round_trip(false, true);
  EXPECT_EQ(PipePool::this_thread().in_use(), 0u);
  EXPECT_GT(PipePool::this_thread().idle(), 0u);
}

TEST(Relay, HalfClosedConnectionEndsAfterItsOwnSilenceLimit) {
  asio::io_context io;
  run_for(io, [&]() -> asio::awaitable<void> {
    auto topology = co_await make_topology(false);
    // The client is done sending; the target never answers and never closes.
    topology.client_app.shutdown(asio::ip::tcp::socket::shutdown_send);
    RelayOptions options;
    options.idle_timeout = std::chrono::hours(1);
    options.half_close_timeout = std::chrono::milliseconds(150);
    auto started = std::chrono::steady_clock::now();
    auto result = co_await relay(*topology.client_side, *topology.target_side, options);
    EXPECT_TRUE(result.half_close_timeout);
    EXPECT_FALSE(result.idle_timeout);
    EXPECT_FALSE(result.error);
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
  }());
}

TEST(Relay, ActivityPushesTheIdleDeadlineBack) {
  asio::io_context io;
  run_for(io, [&]() -> asio::awaitable<void> {
    auto topology = co_await make_topology(false);
    RelayOptions options;
    options.idle_timeout = std::chrono::milliseconds(300);
    auto chatter = [&]() -> asio::awaitable<void> {
      // Six messages 100 ms apart: 600 ms of traffic, never 300 ms of silence.
      asio::steady_timer pause(co_await asio::this_coro::executor);
      char buffer[16];
      for (int i = 0; i < 6; ++i) {
        co_await asio::async_write(topology.client_app, asio::buffer("tick", 4), kUseTuple);
        co_await asio::async_read(topology.target_app, asio::buffer(buffer, 4), kUseTuple);
        pause.expires_after(std::chrono::milliseconds(100));
        co_await pause.async_wait(kUseTuple);
      }
    };
    auto result = co_await (relay(*topology.client_side, *topology.target_side, options) && chatter());
    EXPECT_TRUE(result.idle_timeout);
    EXPECT_EQ(result.bytes_from_client, 24u) << "every message passed before the relay went idle";
  }());
}

// Counts the destruction of the stream it is attached to, to see who ends up owning it.
class DestructionCounter final : public Stream::Attachment {
 public:
  explicit DestructionCounter(int& destroyed) : destroyed_(destroyed) {}
  ~DestructionCounter() override { ++destroyed_; }

 private:
  int& destroyed_;
};

StreamPtr counted(StreamPtr stream, int& destroyed) {
  stream->attach(std::make_unique<DestructionCounter>(destroyed));
  return stream;
}

TEST(Relay, StartedRelayOwnsBothStreamsAndReportsOnceBothWaysEnd) {
  asio::io_context io;
  int destroyed = 0;
  std::optional<RelayResult> finished;
  run_for(io, [&]() -> asio::awaitable<void> {
    auto topology = co_await make_topology(false);
    start_relay(counted(std::move(topology.client_side), destroyed),
                counted(std::move(topology.target_side), destroyed), {},
                [&](const RelayResult& result) {
                  EXPECT_EQ(destroyed, 0) << "the streams outlive the report";
                  finished = result;
                });
    std::string message = testing::payload(1 << 20);
    auto [echoed, reply] = co_await (echo_after_eof(topology.target_app) &&
                                     send_then_read_all(topology.client_app, message));
    EXPECT_EQ(echoed, message);
    EXPECT_EQ(reply, message);
  }());
  ASSERT_TRUE(finished.has_value());
  EXPECT_EQ(finished->bytes_from_client, 1u << 20);
  EXPECT_EQ(finished->bytes_to_client, 1u << 20);
  EXPECT_FALSE(finished->error) << finished->error.message();
  EXPECT_EQ(destroyed, 2) << "both streams go with the relay";
}

// An agent stopping destroys its io_contexts with relays still waiting: each relay goes with
// its pending callbacks (AddressSanitizer's leak check fails the test otherwise).
TEST(Relay, StartedRelayGoesWithItsIoContext) {
  int destroyed = 0;
  bool finished = false;
  {
    asio::io_context io;
    std::optional<Topology> topology;
    run_for(io, [&]() -> asio::awaitable<void> {
      topology.emplace(co_await make_topology(true));  // prefixed: the copying relay
      start_relay(counted(std::move(topology->client_side), destroyed),
                  counted(std::move(topology->target_side), destroyed), {},
                  [&](const RelayResult&) { finished = true; });
    }());
    EXPECT_EQ(destroyed, 0) << "the relay waits on two silent peers";
  }
  EXPECT_EQ(destroyed, 2);
  EXPECT_FALSE(finished) << "a relay cut short by its io_context reports nothing";
}

}  // namespace
}  // namespace strait::agent
