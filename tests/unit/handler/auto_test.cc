#include "agent/handler/auto.h"

#include <gtest/gtest.h>

#include "agent/protocol/proxy_error.h"
#include "agent/connector/registry.h"
#include "support/proxy_harness.h"

namespace strait::agent {
namespace {

using testing::kUseTuple;
using testing::run_for;

struct Outcome {
  error_code error;  // empty when the connector got through
  std::string echoed;
  int target_connections = 0;
};

// Runs an http, a socks4 and a socks5 connector against one auto handler in front of an echo
// target; each that gets through sends its type name and reads it back.
std::vector<Outcome> connect_each(std::shared_ptr<HandlerContext> context) {
  asio::io_context io;
  auto target = testing::loopback_acceptor(io);
  auto handler = make_auto_handler(config::v1::ServiceConfig());
  EXPECT_TRUE(handler.ok()) << handler.status();
  testing::ServedHandler proxy(io, **handler, *context);
  int accepted = 0;
  std::vector<Outcome> outcomes;
  run_for(io, [&]() -> asio::awaitable<void> {
    asio::co_spawn(io, proxy.serve(), asio::detached);
    asio::co_spawn(io, testing::echo(target, accepted), asio::detached);
    for (std::string type : {"http", "socks4", "socks5"}) {
      config::v1::NodeConfig node;
      node.mutable_connector()->set_type(type);
      auto connector = make_connector(node);
      auto socket = co_await connect_tcp(io.get_executor(), proxy.address(), DialOptions{std::chrono::seconds(5)});
      auto stream = co_await (*connector)->connect(std::make_unique<TcpStream>(std::move(*socket)), Network::kTcp,
                                                   testing::address_of(target));
      Outcome outcome;
      if (!stream) {
        outcome.error = stream.error();
      } else {
        co_await asio::async_write(**stream, asio::buffer(type), kUseTuple);
        outcome.echoed.resize(type.size());
        co_await asio::async_read(**stream, asio::buffer(outcome.echoed), kUseTuple);
      }
      outcome.target_connections = accepted;
      outcomes.push_back(outcome);
    }
  }());
  return outcomes;
}

TEST(AutoHandler, ServesHttpSocks4AndSocks5OnOnePort) {
  auto outcomes = connect_each(testing::direct_context());
  ASSERT_EQ(outcomes.size(), 3u);
  EXPECT_EQ(outcomes[0].echoed, "http");
  EXPECT_EQ(outcomes[1].echoed, "socks4");
  EXPECT_EQ(outcomes[2].echoed, "socks5");
  EXPECT_EQ(outcomes[2].target_connections, 3);
}

TEST(AutoHandler, AppliesTheServiceAuthToEveryProtocol) {
  auto context = testing::direct_context();
  auto auther = std::make_shared<Auther>();
  auther->add("user", "pass");
  context->auther = auther;
  auto outcomes = connect_each(context);
  ASSERT_EQ(outcomes.size(), 3u);
  for (const auto& outcome : outcomes) {
    EXPECT_EQ(outcome.error, make_error_code(ProxyError::kAuthRequired));
    EXPECT_EQ(outcome.target_connections, 0);
  }
}

}  // namespace
}  // namespace strait::agent
