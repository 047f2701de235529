#include "agent/handler/forward.h"

#include <gtest/gtest.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "agent/channel/tcp.h"
#include "support/asio_test.h"

namespace strait::agent {
namespace {

using namespace asio::experimental::awaitable_operators;
using testing::kUseTuple;
using testing::run_for;

config::v1::ServiceConfig service_with_target() {
  config::v1::ServiceConfig service;
  service.mutable_handler()->set_type("tcp");
  service.mutable_forwarder()->add_nodes()->set_addr("127.0.0.1:1");
  return service;
}

TEST(ForwardHandler, NeedsTargets) {
  config::v1::ServiceConfig service;
  service.mutable_handler()->set_type("udp");
  auto handler = make_udp_forward_handler(service);
  ASSERT_FALSE(handler.ok());
  EXPECT_NE(handler.status().message().find("handler udp forwards to targets but none are given"), std::string::npos);
}

TEST(ForwardHandler, SkipsAnUnreachableTargetAndRelays) {
  asio::io_context io;
  std::string dead_address = testing::closed_loopback_address(io);
  auto target = testing::loopback_acceptor(io);
  HandlerContext context;
  context.service = "service-0";
  context.router = std::make_shared<Router>(nullptr, 0, DialOptions{});
  auto forwarder = std::make_shared<Forwarder>();
  forwarder->names = {"target-0", "target-1"};
  forwarder->targets = {dead_address, testing::address_of(target)};
  forwarder->selector = std::make_unique<Selector>(SelectorOptions{Strategy::kFifo, 1, std::chrono::seconds(30)}, 2);
  context.forwarder = forwarder;
  auto handler = make_tcp_forward_handler(service_with_target());
  ASSERT_TRUE(handler.ok());
  run_for(io, [&]() -> asio::awaitable<void> {
    auto [client_app, client_socket] = co_await testing::tcp_pair();
    auto target_side = [&]() -> asio::awaitable<void> {
      auto socket = co_await target.async_accept(asio::use_awaitable);
      char buffer[5];
      co_await asio::async_read(socket, asio::buffer(buffer), kUseTuple);
      co_await asio::async_write(socket, asio::buffer(buffer), kUseTuple);
    };
    auto client_side = [&]() -> asio::awaitable<std::string> {
      co_await asio::async_write(client_app, asio::buffer("hello", 5), kUseTuple);
      char reply[5];
      co_await asio::async_read(client_app, asio::buffer(reply), kUseTuple);
      client_app.close();
      co_return std::string(reply, 5);
    };
    std::string reply =
        co_await ((*handler)->handle(std::make_unique<TcpStream>(std::move(client_socket)), context) && client_side() &&
                  target_side());
    EXPECT_EQ(reply, "hello");
  }());
  EXPECT_TRUE(context.forwarder->selector->excluded(0));
}

TEST(ForwardHandler, ClosesTheClientWhenNoTargetIsReachable) {
  asio::io_context io;
  std::string dead_address = testing::closed_loopback_address(io);
  HandlerContext context;
  context.service = "service-0";
  context.router = std::make_shared<Router>(nullptr, 0, DialOptions{});
  auto forwarder = std::make_shared<Forwarder>();
  forwarder->names = {"target-0"};
  forwarder->targets = {dead_address};
  forwarder->selector = std::make_unique<Selector>(SelectorOptions{}, 1);
  context.forwarder = forwarder;
  auto handler = make_tcp_forward_handler(service_with_target());
  run_for(io, [&]() -> asio::awaitable<void> {
    auto [client_app, client_socket] = co_await testing::tcp_pair();
    co_await (*handler)->handle(std::make_unique<TcpStream>(std::move(client_socket)), context);
    char byte;
    auto [ec, n] = co_await client_app.async_read_some(asio::buffer(&byte, 1), kUseTuple);
    EXPECT_EQ(ec, asio::error::eof);
  }());
}

}  // namespace
}  // namespace strait::agent
