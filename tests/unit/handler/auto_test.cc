#include "agent/handler/auto.h"

#include <gtest/gtest.h>

#include "agent/connector/http.h"
#include "agent/connector/socks4.h"
#include "agent/connector/socks5.h"
#include "agent/chain/errors.h"
#include "support/proxy_harness.h"

namespace strait::agent {
namespace {

using testing::kUseTuple;
using testing::run_for;

TEST(AutoHandler, ServesHttpSocks4AndSocks5OnOnePort) {
  asio::io_context io;
  auto target = testing::loopback_acceptor(io);
  auto context = testing::direct_context();
  auto handler = make_auto_handler(config::v1::ServiceConfig());
  ASSERT_TRUE(handler.ok()) << handler.status();
  testing::ServedHandler proxy(io, **handler, *context);
  int accepted = 0;
  std::vector<std::string> answers;
  run_for(io, [&]() -> asio::awaitable<void> {
    asio::co_spawn(io, proxy.serve(), asio::detached);
    asio::co_spawn(io, testing::echo(target, accepted), asio::detached);
    for (std::string type : {"http", "socks4", "socks5"}) {
      config::v1::NodeConfig node;
      node.mutable_connector()->set_type(type);
      auto connector = type == "http" ? make_http_connector(node)
                       : type == "socks4" ? make_socks4_connector(node)
                                          : make_socks5_connector(node);
      auto socket = co_await connect_tcp(io.get_executor(), proxy.address(), std::chrono::seconds(5));
      auto stream = co_await (*connector)->connect(std::make_unique<TcpStream>(std::move(*socket)), Network::kTcp,
                                                   testing::address_of(target));
      EXPECT_TRUE(stream) << type << ": " << stream.error().message();
      if (!stream) continue;
      co_await asio::async_write(**stream, asio::buffer(type), kUseTuple);
      std::string back(type.size(), '\0');
      co_await asio::async_read(**stream, asio::buffer(back), kUseTuple);
      answers.push_back(back);
    }
  }());
  EXPECT_EQ(answers, (std::vector<std::string>{"http", "socks4", "socks5"}));
  EXPECT_EQ(accepted, 3);
}

TEST(AutoHandler, AppliesTheServiceAuthToEveryProtocol) {
  asio::io_context io;
  auto target = testing::loopback_acceptor(io);
  auto context = testing::direct_context();
  auto auther = std::make_shared<Auther>();
  auther->add("user", "pass");
  context->auther = auther;
  auto handler = make_auto_handler(config::v1::ServiceConfig());
  testing::ServedHandler proxy(io, **handler, *context);
  int accepted = 0;
  std::vector<error_code> errors;
  run_for(io, [&]() -> asio::awaitable<void> {
    asio::co_spawn(io, proxy.serve(), asio::detached);
    asio::co_spawn(io, testing::echo(target, accepted), asio::detached);
    for (std::string type : {"http", "socks4", "socks5"}) {
      config::v1::NodeConfig node;
      auto connector = type == "http" ? make_http_connector(node)
                       : type == "socks4" ? make_socks4_connector(node)
                                          : make_socks5_connector(node);
      auto socket = co_await connect_tcp(io.get_executor(), proxy.address(), std::chrono::seconds(5));
      auto stream = co_await (*connector)->connect(std::make_unique<TcpStream>(std::move(*socket)), Network::kTcp,
                                                   testing::address_of(target));
      errors.push_back(stream ? error_code{} : stream.error());
    }
  }());
  EXPECT_EQ(errors, std::vector<error_code>(3, make_error_code(ProxyError::kAuthRequired)));
  EXPECT_EQ(accepted, 0);
}

}  // namespace
}  // namespace strait::agent
