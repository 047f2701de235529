#include "agent/channel/tls_stream.h"

#include <gtest/gtest.h>

#include <array>
#include <vector>

#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "support/stream_io.h"
#include "unit/channel/tls_test_support.h"

namespace strait::agent {
namespace {

using namespace tls_test;
using testing::kUseTuple;
using testing::run_for;
using testing::send_and_receive;

SslContext server_context() {
  auto context = make_server_context({}, {});
  EXPECT_TRUE(context.ok()) << context.status();
  return *context;
}

SslContext client_context() {
  auto context = make_client_context({});
  EXPECT_TRUE(context.ok()) << context.status();
  return *context;
}

// A half close is close_notify then FIN: each side reads all of the other's data, then EOF,
// while still writing its own (TLS 1.3 allows writing after the peer's close_notify).
TEST(TlsStream, MovesOneMebibyteEachWayAcrossHalfCloses) {
  asio::io_context io;
  run_for(io, [&]() -> asio::awaitable<void> {
    auto pair = co_await tls_pair(server_context(), client_context());
    EXPECT_FALSE(pair.client_error || pair.server_error);
    if (pair.client_error || pair.server_error) co_return;
    const std::string up = testing::payload(1 << 20, 3);
    const std::string down = testing::payload(1 << 20, 4);
    auto [at_server, at_client] =
        co_await (send_and_receive(*pair.server, down) && send_and_receive(*pair.client, up));
    EXPECT_TRUE(at_server == up) << "the server read " << at_server.size() << " bytes";
    EXPECT_TRUE(at_client == down) << "the client read " << at_client.size() << " bytes";
  }());
}

// A gathered write (a WebSocket frame's header and payload) arrives whole and in order.
TEST(TlsStream, GatheredWriteArrivesInOrder) {
  asio::io_context io;
  run_for(io, [&]() -> asio::awaitable<void> {
    auto pair = co_await tls_pair(server_context(), client_context());
    EXPECT_FALSE(pair.client_error || pair.server_error);
    if (pair.client_error || pair.server_error) co_return;
    const std::string header = "head";
    const std::string empty;
    const std::string payload = testing::payload(40000, 8);
    std::array<asio::const_buffer, 3> buffers{asio::buffer(header), asio::buffer(empty), asio::buffer(payload)};
    std::string expected = header + payload;
    size_t written = 0;
    while (written < expected.size()) {
      // What is left of the three buffers after `written` bytes.
      std::vector<asio::const_buffer> rest;
      size_t skip = written;
      for (const auto& buffer : buffers) {
        if (skip >= buffer.size()) {
          skip -= buffer.size();
          continue;
        }
        rest.push_back(asio::buffer(static_cast<const char*>(buffer.data()) + skip, buffer.size() - skip));
        skip = 0;
      }
      auto [error, n] = co_await asio::async_initiate<decltype(kUseTuple), void(error_code, size_t)>(
          [&](auto handler) { pair.client->write_some_gathered(rest, std::move(handler)); }, kUseTuple);
      EXPECT_FALSE(error) << error.message();
      if (error || n == 0) co_return;
      written += n;
    }
    std::string received(expected.size(), '\0');
    auto [read_error, n] = co_await asio::async_read(*pair.server, asio::buffer(received), kUseTuple);
    EXPECT_FALSE(read_error) << read_error.message();
    EXPECT_TRUE(received == expected);
  }());
}

// The session ticket a TLS 1.3 server sends after its handshake is no data: it leaves an
// idle client end unreadable (a relay would otherwise start a read and hold its buffer).
TEST(TlsStream, ASessionTicketDoesNotMakeTheClientReadable) {
  asio::io_context io;
  run_for(io, [&]() -> asio::awaitable<void> {
    auto pair = co_await tls_pair(server_context(), client_context());
    EXPECT_FALSE(pair.client_error || pair.server_error);
    if (pair.client_error || pair.server_error) co_return;
    asio::steady_timer quiet(co_await asio::this_coro::executor, std::chrono::milliseconds(300));
    auto outcome = co_await (pair.client->async_wait_readable(asio::use_awaitable) ||
                             quiet.async_wait(asio::use_awaitable));
    EXPECT_EQ(outcome.index(), 1u) << "the client end became readable with no data sent";
    co_await asio::async_write(*pair.server, asio::buffer(std::string("data")), kUseTuple);
    auto [wait_error] = co_await pair.client->async_wait_readable(kUseTuple);
    EXPECT_FALSE(wait_error) << wait_error.message();
    std::string received(4, '\0');
    auto [read_error, n] = co_await asio::async_read(*pair.client, asio::buffer(received), kUseTuple);
    EXPECT_FALSE(read_error) << read_error.message();
    EXPECT_EQ(received, "data");
  }());
}

TEST(TlsStream, PlainTextBelowFailsTheHandshake) {
  asio::io_context io;
  run_for(io, [&]() -> asio::awaitable<void> {
    auto [client_socket, server_socket] = co_await testing::tcp_pair();
    SSL* ssl = SSL_new(server_context().get());
    SSL_set_accept_state(ssl);
    TlsStream server(std::make_unique<TcpStream>(std::move(server_socket)), ssl);
    co_await asio::async_write(client_socket, asio::buffer(std::string("GET / HTTP/1.1\r\n\r\n")), kUseTuple);
    auto error = co_await server.handshake();
    EXPECT_TRUE(error) << "plain text passed for a TLS handshake";
  }());
}

TEST(TlsStream, CloseCompletesAPendingRead) {
  asio::io_context io;
  run_for(io, [&]() -> asio::awaitable<void> {
    auto pair = co_await tls_pair(server_context(), client_context());
    EXPECT_FALSE(pair.client_error || pair.server_error);
    if (pair.client_error || pair.server_error) co_return;
    auto read = [&]() -> asio::awaitable<error_code> {
      char byte;
      auto [error, n] = co_await pair.server->async_read_some(asio::buffer(&byte, 1), kUseTuple);
      co_return error;
    };
    auto close = [&]() -> asio::awaitable<void> {
      co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
      pair.server->close();
    };
    auto error = co_await (read() && close());
    EXPECT_TRUE(error) << "a read on a closed stream completed without an error";
  }());
}

}  // namespace
}  // namespace strait::agent
