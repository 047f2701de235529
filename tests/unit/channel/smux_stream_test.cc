#include "agent/channel/smux_stream.h"

#include <gtest/gtest.h>

#include "unit/channel/smux_test_support.h"

namespace strait::agent::smux_test {
namespace {

// Reads one byte into nothing; `out` is would_block while the read is pending, then its result.
asio::awaitable<void> pending_read_of(SharedStream stream, error_code& out) {
  out = asio::error::would_block;
  char byte;
  auto [error, n] = co_await stream->async_read_some(asio::buffer(&byte, 1), kUseTuple);
  out = error;
}

TEST(SmuxStream, HalfCloseDeliversEndOfStreamAfterTheData) {
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

TEST(SmuxStream, Version2WindowHoldsTheWriterOfASlowReader) {
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

TEST(SmuxStream, CloseAndCancellationCompletePendingOperations) {
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
}  // namespace strait::agent::smux_test
