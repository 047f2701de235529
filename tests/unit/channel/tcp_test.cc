#include "agent/channel/tcp.h"

#include <gtest/gtest.h>

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
