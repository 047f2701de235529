#include "agent/channel/smux_session.h"

#include <gtest/gtest.h>

#include <array>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <memory>
#include <string>

#include "agent/channel/tcp.h"
#include "support/asio_test.h"

namespace strait::agent {
namespace {

using namespace asio::experimental::awaitable_operators;
using namespace std::chrono_literals;
using asio::ip::tcp;
using testing::kUseTuple;
using testing::run_for;
using SessionPtr = std::shared_ptr<SmuxSession>;
using SharedStream = std::shared_ptr<Stream>;

smux::Config quiet(int version) {
  smux::Config config;
  config.version = version;
  config.keepalive_disabled = true;  // no NOP between the frames a test checks
  return config;
}

std::string frame(int version, uint8_t command, uint32_t id, std::string_view data = {}) {
  auto header =
      smux::encode_frame_header({static_cast<uint8_t>(version), command, static_cast<uint16_t>(data.size()), id});
  return std::string(header.begin(), header.end()) + std::string(data);
}

std::string update_frame(uint32_t id, uint32_t consumed, uint32_t window) {
  auto bytes = smux::encode_update(2, id, {consumed, window});
  return {bytes.begin(), bytes.end()};
}

struct SessionPair {
  SessionPtr client;
  SessionPtr server;
  void close() {
    client->close();
    server->close();
  }
};

asio::awaitable<SessionPair> session_pair(smux::Config client, smux::Config server) {
  auto sockets = co_await testing::tcp_pair();
  co_return SessionPair{SmuxSession::start(std::make_unique<TcpStream>(std::move(sockets.first)), true, client),
                        SmuxSession::start(std::make_unique<TcpStream>(std::move(sockets.second)), false, server)};
}

// A session facing a raw socket that plays the peer byte by byte.
struct RawPeer {
  SessionPtr session;
  tcp::socket raw;
};

asio::awaitable<RawPeer> raw_peer(bool session_is_client, smux::Config config) {
  auto sockets = co_await testing::tcp_pair();
  auto& mine = session_is_client ? sockets.first : sockets.second;
  auto& theirs = session_is_client ? sockets.second : sockets.first;
  co_return RawPeer{SmuxSession::start(std::make_unique<TcpStream>(std::move(mine)), session_is_client, config),
                    std::move(theirs)};
}

asio::awaitable<std::string> read_exactly(tcp::socket& socket, size_t size) {
  std::string out(size, '\0');
  auto [error, n] = co_await asio::async_read(socket, asio::buffer(out), kUseTuple);
  EXPECT_FALSE(error) << error.message();
  out.resize(n);
  co_return out;
}

// Reads until the stream ends; returns what came and how it ended.
asio::awaitable<std::pair<std::string, error_code>> read_all(Stream& stream) {
  std::string out;
  std::array<char, 16384> buffer;
  for (;;) {
    auto [error, n] = co_await stream.async_read_some(asio::buffer(buffer), kUseTuple);
    out.append(buffer.data(), n);
    if (error) co_return std::make_pair(std::move(out), error);
  }
}

// Counts spawned coroutines down; wait() returns when all have finished.
class Latch {
 public:
  Latch(asio::any_io_executor executor, int count)
      : executor_(executor), timer_(executor, asio::steady_timer::time_point::max()), count_(count) {}
  void spawn(asio::awaitable<void> task) {
    asio::co_spawn(executor_, std::move(task), [this](std::exception_ptr e) {
      if (e) failure_ = e;
      if (--count_ == 0) timer_.cancel();
    });
  }
  asio::awaitable<void> wait() {
    while (count_ > 0) co_await timer_.async_wait(kUseTuple);
    if (failure_) std::rethrow_exception(failure_);
  }

 private:
  asio::any_io_executor executor_;
  asio::steady_timer timer_;
  int count_;
  std::exception_ptr failure_;
};

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

TEST(SmuxSession, HalfCloseDeliversEndOfStreamAfterTheData) {
  asio::io_context io;
  run_for(io, [&]() -> asio::awaitable<void> {
    auto pair = co_await session_pair(quiet(1), quiet(1));
    auto client = co_await pair.client->open_stream();
    co_await asio::async_write(**client, asio::buffer("request", 7), kUseTuple);
    (*client)->shutdown_send();
    auto server = co_await pair.server->accept_stream();
    EXPECT_TRUE(server);
    auto [request, request_end] = co_await read_all(**server);
    EXPECT_EQ(request, "request");
    EXPECT_EQ(request_end, asio::error::eof);
    // The other direction still works after the half close.
    co_await asio::async_write(**server, asio::buffer("response", 8), kUseTuple);
    (*server)->shutdown_send();
    auto [response, response_end] = co_await read_all(**client);
    EXPECT_EQ(response, "response");
    EXPECT_EQ(response_end, asio::error::eof);
    auto [after, written] = co_await (*client)->async_write_some(asio::buffer("x", 1), kUseTuple);
    EXPECT_EQ(after, asio::error::broken_pipe);
    pair.close();
  }());
}

TEST(SmuxSession, Version2WindowHoldsTheWriterOfASlowReader) {
  constexpr size_t kSize = 1 << 20;
  asio::io_context io;
  run_for(io, [&]() -> asio::awaitable<void> {
    auto pair = co_await session_pair(quiet(2), quiet(2));
    auto executor = co_await asio::this_coro::executor;
    auto client = co_await pair.client->open_stream();
    std::string data = testing::payload(kSize, 7);
    // Nobody reads yet: the writer may send the initial window (256 KiB), not a byte more.
    size_t written = 0;
    for (;;) {
      asio::steady_timer timeout(executor, 300ms);
      auto chunk = asio::buffer(data.data() + written, 16384);
      auto result = co_await ((*client)->async_write_some(chunk, kUseTuple) || timeout.async_wait(kUseTuple));
      if (result.index() == 1) break;
      auto [error, n] = std::get<0>(result);
      EXPECT_FALSE(error);
      written += n;
      if (error || written > smux::kInitialPeerWindow) break;
    }
    EXPECT_EQ(written, smux::kInitialPeerWindow);
    EXPECT_LE(pair.server->buffered_bytes(), smux::kInitialPeerWindow);
    // Reading opens the window (UPD) and the writer resumes.
    auto server = co_await pair.server->accept_stream();
    Latch latch(executor, 1);
    latch.spawn([](SharedStream s, std::string& out, size_t from) -> asio::awaitable<void> {
      auto [error, n] = co_await asio::async_write(*s, asio::buffer(out.data() + from, out.size() - from), kUseTuple);
      EXPECT_FALSE(error);
      s->shutdown_send();
    }(SharedStream(std::move(*client)), data, written));
    auto [received, end] = co_await read_all(**server);
    EXPECT_EQ(end, asio::error::eof);
    EXPECT_TRUE(received == data) << "received " << received.size() << " bytes";
    co_await latch.wait();
    pair.close();
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

// Reads one byte into nothing; `out` is would_block while the read is pending, then its result.
asio::awaitable<void> pending_read_of(SharedStream stream, error_code& out) {
  out = asio::error::would_block;
  char byte;
  auto [error, n] = co_await stream->async_read_some(asio::buffer(&byte, 1), kUseTuple);
  out = error;
}

TEST(SmuxSession, CloseAndCancellationCompletePendingOperations) {
  asio::io_context io;
  run_for(io, [&]() -> asio::awaitable<void> {
    auto pair = co_await session_pair(quiet(2), quiet(2));
    auto executor = co_await asio::this_coro::executor;
    auto client = co_await pair.client->open_stream();
    auto server = co_await pair.server->accept_stream();
    // read || timer: the timer wins, the read is cancelled, the stream still works.
    char buffer[8];
    asio::steady_timer timeout(executor, 50ms);
    auto raced =
        co_await ((*client)->async_read_some(asio::buffer(buffer), kUseTuple) || timeout.async_wait(kUseTuple));
    EXPECT_EQ(raced.index(), 1u);
    co_await asio::async_write(**server, asio::buffer("data", 4), kUseTuple);
    auto [wait_error] = co_await (*client)->async_wait_readable(kUseTuple);
    EXPECT_FALSE(wait_error);
    auto [read_error, n] = co_await (*client)->async_read_some(asio::buffer(buffer), kUseTuple);
    EXPECT_EQ(std::string(buffer, n), "data");
    // Closing the stream completes its pending read.
    SharedStream stream(std::move(*client));
    error_code pending_read;
    Latch latch(executor, 2);
    latch.spawn(pending_read_of(stream, pending_read));
    // Closing the session completes a pending accept and the other streams' reads.
    error_code pending_accept;
    int accepting = 0;
    latch.spawn([](SessionPtr session, error_code& out, int& started) -> asio::awaitable<void> {
      ++started;
      auto accepted = co_await session->accept_stream();
      out = accepted ? error_code{} : accepted.error();
    }(pair.server, pending_accept, accepting));
    while (pending_read != asio::error::would_block || accepting == 0)
      co_await asio::post(executor, asio::use_awaitable);
    stream->close();
    auto other = co_await pair.client->open_stream();
    SharedStream other_stream(std::move(*other));
    error_code other_read;
    Latch second(executor, 1);
    second.spawn(pending_read_of(other_stream, other_read));
    while (other_read != asio::error::would_block) co_await asio::post(executor, asio::use_awaitable);
    pair.client->close();
    pair.server->close();
    co_await latch.wait();
    co_await second.wait();
    EXPECT_EQ(pending_read, asio::error::operation_aborted);
    EXPECT_EQ(pending_accept, asio::error::operation_aborted);
    EXPECT_EQ(other_read, asio::error::operation_aborted);
    auto late = co_await pair.client->open_stream();
    EXPECT_FALSE(late);
  }());
}

}  // namespace
}  // namespace strait::agent
