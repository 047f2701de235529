#include "agent/channel/tcp.h"

#include <gtest/gtest.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "support/asio_test.h"

namespace strait::agent {
namespace {

using testing::kUseTuple;
using testing::run_for;

TEST(TcpChannel, ListenerAndDialerCarryBytesAndHalfClose) {
  asio::io_context io;
  auto factory = make_tcp_listener_factory();
  auto listener = factory->listen(io.get_executor(), {.address = common::HostPort{"127.0.0.1", 0}});
  ASSERT_TRUE(listener);
  std::string address = (*listener)->bound_address().to_string();
  auto dialer = make_tcp_dialer();
  run_for(io, [&]() -> asio::awaitable<void> {
    auto client = co_await dialer->dial(io.get_executor(), address, Network::kTcp, {});
    EXPECT_TRUE(client);
    auto server = co_await (*listener)->accept();
    EXPECT_TRUE(server);
    EXPECT_NE((*client)->plain_tcp_socket(), nullptr);
    EXPECT_EQ((*server)->remote_address(), (*client)->local_address());
    std::string message = testing::payload(100000);
    auto [write_error, written] = co_await asio::async_write(**client, asio::buffer(message), kUseTuple);
    EXPECT_FALSE(write_error);
    (*client)->shutdown_send();
    std::string received(message.size(), '\0');
    auto [read_error, n] = co_await asio::async_read(**server, asio::buffer(received), kUseTuple);
    EXPECT_FALSE(read_error);
    EXPECT_EQ(received, message);
    char extra;
    auto [eof, zero] = co_await (*server)->async_read_some(asio::buffer(&extra, 1), kUseTuple);
    EXPECT_EQ(eof, asio::error::eof);
    // The other direction still works after the half close.
    co_await asio::async_write(**server, asio::buffer("pong", 4), kUseTuple);
    char reply[4];
    auto [reply_error, reply_size] = co_await asio::async_read(**client, asio::buffer(reply), kUseTuple);
    EXPECT_FALSE(reply_error);
    EXPECT_EQ(std::string(reply, 4), "pong");
  }());
}

int socket_option(int fd, int level, int name) {
  int value = -1;
  socklen_t size = sizeof value;
  EXPECT_EQ(::getsockopt(fd, level, name, &value, &size), 0);
  return value;
}

// The listener sets them on its own socket, which the kernel copies to each connection.
TEST(TcpChannel, AcceptedConnectionsHaveNoDelayAndTheKeepaliveSettings) {
  asio::io_context io;
  KeepAlive keepalive{.enabled = true, .idle = std::chrono::seconds(31), .interval = std::chrono::seconds(7), .count = 4};
  auto listener = make_tcp_listener_factory()->listen(
      io.get_executor(), {.address = common::HostPort{"127.0.0.1", 0}, .keepalive = keepalive});
  ASSERT_TRUE(listener);
  std::string address = (*listener)->bound_address().to_string();
  auto dialer = make_tcp_dialer();
  auto accept_one = [&]() -> StreamPtr {
    return run_for(io, [&]() -> asio::awaitable<StreamPtr> {
      auto client = co_await dialer->dial(io.get_executor(), address, Network::kTcp, {});
      EXPECT_TRUE(client);
      auto server = co_await (*listener)->accept();
      EXPECT_TRUE(server);
      co_return server ? std::move(*server) : nullptr;
    }());
  };
  auto first = accept_one();
  ASSERT_TRUE(first && first->plain_tcp_socket());
  int fd = first->plain_tcp_socket()->native_handle();
  EXPECT_EQ(socket_option(fd, IPPROTO_TCP, TCP_NODELAY), 1);
  EXPECT_EQ(socket_option(fd, SOL_SOCKET, SO_KEEPALIVE), 1);
  EXPECT_EQ(socket_option(fd, IPPROTO_TCP, TCP_KEEPIDLE), 31);
  EXPECT_EQ(socket_option(fd, IPPROTO_TCP, TCP_KEEPINTVL), 7);
  EXPECT_EQ(socket_option(fd, IPPROTO_TCP, TCP_KEEPCNT), 4);
  // A reload's new settings reach the connections accepted after it.
  (*listener)->update({.address = common::HostPort{"127.0.0.1", 0}, .keepalive = KeepAlive{.enabled = false}});
  auto second = accept_one();
  ASSERT_TRUE(second && second->plain_tcp_socket());
  EXPECT_EQ(socket_option(second->plain_tcp_socket()->native_handle(), SOL_SOCKET, SO_KEEPALIVE), 0);
  EXPECT_EQ(socket_option(second->plain_tcp_socket()->native_handle(), IPPROTO_TCP, TCP_NODELAY), 1);
}

TEST(TcpChannel, ReusePortLetsEveryWorkerBindTheSamePort) {
  asio::io_context io;
  auto factory = make_tcp_listener_factory();
  auto first = factory->listen(io.get_executor(), {.address = common::HostPort{"127.0.0.1", 0}});
  ASSERT_TRUE(first);
  auto port = (*first)->bound_address().port;
  auto second = factory->listen(io.get_executor(), {.address = common::HostPort{"127.0.0.1", port}});
  ASSERT_TRUE(second) << second.error().message();
  EXPECT_EQ((*second)->bound_address().port, port);
}

TEST(TcpChannel, DialErrorsAreValues) {
  asio::io_context io;
  std::string closed = testing::closed_loopback_address(io);
  auto dialer = make_tcp_dialer();
  run_for(io, [&]() -> asio::awaitable<void> {
    auto refused = co_await dialer->dial(io.get_executor(), closed, Network::kTcp, {});
    EXPECT_EQ(refused.error(), asio::error::connection_refused);
    auto bad = co_await dialer->dial(io.get_executor(), "no-port", Network::kTcp, {});
    EXPECT_FALSE(bad);
    auto udp = co_await dialer->dial(io.get_executor(), closed, Network::kUdp, {});
    EXPECT_FALSE(udp);
  }());
}

}  // namespace
}  // namespace strait::agent
