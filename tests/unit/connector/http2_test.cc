#include "agent/connector/http2.h"

#include <gtest/gtest.h>

#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "agent/protocol/proxy_error.h"
#include "support/http2_proxy_harness.h"

namespace strait::agent {
namespace {

using testing::kUseTuple;
using testing::run_for;

config::v1::NodeConfig http2_node(const std::string& username = "", const std::string& password = "") {
  config::v1::NodeConfig node;
  node.mutable_connector()->set_type("http2");
  if (!username.empty()) {
    node.mutable_connector()->mutable_auth()->set_username(username);
    node.mutable_connector()->mutable_auth()->set_password(password);
  }
  return node;
}

// Connects through `proxy` to `target` over a TCP connection of its own.
asio::awaitable<Result<StreamPtr>> connect_through(testing::Http2Proxy& proxy, const config::v1::NodeConfig& node,
                                                    const std::string& target) {
  auto connector = make_http2_connector(node);
  EXPECT_TRUE(connector.ok()) << connector.status();
  auto connection = co_await proxy.connect();
  co_return co_await (*connector)->connect(std::move(connection), Network::kTcp, target);
}

TEST(Http2Connector, TunnelsThroughAnHttp2ProxyWithCredentials) {
  asio::io_context io;
  auto context = testing::direct_context();
  context->auther = testing::one_user("user", "secret");
  testing::Http2Proxy proxy(io, *context);
  auto target = testing::loopback_acceptor(io);
  int accepted = 0;
  run_for(io, [&]() -> asio::awaitable<void> {
    asio::co_spawn(io, proxy.serve(), asio::detached);
    asio::co_spawn(io, testing::echo(target, accepted), asio::detached);
    auto tunnel = co_await connect_through(proxy, http2_node("user", "secret"), testing::address_of(target));
    EXPECT_TRUE(tunnel) << (tunnel ? "" : tunnel.error().message());
    if (!tunnel) co_return;
    const std::string data = testing::payload(256 * 1024, 9);
    co_await asio::async_write(**tunnel, asio::buffer(data), kUseTuple);
    std::string echoed(data.size(), '\0');
    co_await asio::async_read(**tunnel, asio::buffer(echoed), kUseTuple);
    EXPECT_TRUE(echoed == data);
  }());
  EXPECT_EQ(accepted, 1);
}

TEST(Http2Connector, WrongCredentialsAreAuthRequiredAndAFailedTargetRejected) {
  asio::io_context io;
  auto context = testing::direct_context();
  context->auther = testing::one_user("user", "secret");
  testing::Http2Proxy proxy(io, *context);
  auto target = testing::loopback_acceptor(io);
  std::string closed = testing::closed_loopback_address(io);
  run_for(io, [&]() -> asio::awaitable<void> {
    asio::co_spawn(io, proxy.serve(), asio::detached);
    auto wrong = co_await connect_through(proxy, http2_node("user", "guess"), testing::address_of(target));
    EXPECT_EQ(wrong.error(), ProxyError::kAuthRequired);
    auto anonymous = co_await connect_through(proxy, http2_node(), testing::address_of(target));
    EXPECT_EQ(anonymous.error(), ProxyError::kAuthRequired);
    auto refused = co_await connect_through(proxy, http2_node("user", "secret"), closed);
    EXPECT_EQ(refused.error(), ProxyError::kRejected);
  }());
}

}  // namespace
}  // namespace strait::agent
