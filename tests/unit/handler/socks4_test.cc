#include "agent/handler/socks4.h"

#include <gtest/gtest.h>

#include "agent/connector/socks4.h"
#include "agent/protocol/socks4.h"
#include "agent/protocol/proxy_error.h"
#include "support/proxy_harness.h"

namespace strait::agent {
namespace {

using testing::bytes;
using testing::kUseTuple;
using testing::run_for;

class Socks4HandlerTest : public ::testing::Test {
 protected:
  Socks4HandlerTest()
      : target_(testing::loopback_acceptor(io_)), context_(testing::direct_context()),
        handler_(*make_socks4_handler(config::v1::ServiceConfig())), proxy_(io_, *handler_, *context_) {}

  template <typename Client>
  void run(Client client) {
    run_for(io_, [&]() -> asio::awaitable<void> {
      asio::co_spawn(io_, proxy_.serve(), asio::detached);
      asio::co_spawn(io_, testing::echo(target_, accepted_), asio::detached);
      co_await client();
    }());
  }

  asio::awaitable<Result<StreamPtr>> connect(const std::string& target, const std::string& user_id = "") {
    config::v1::NodeConfig node;
    node.mutable_connector()->set_type("socks4a");
    node.mutable_connector()->mutable_auth()->set_username(user_id);
    auto connector = make_socks4_connector(node);
    auto socket = co_await connect_tcp(io_.get_executor(), proxy_.address(), DialOptions{std::chrono::seconds(5)});
    if (!socket) co_return socket.error();
    co_return co_await (*connector)->connect(std::make_unique<TcpStream>(std::move(*socket)), Network::kTcp, target);
  }

  uint16_t proxy_port() const { return proxy_.port(); }

  asio::io_context io_;
  asio::ip::tcp::acceptor target_;
  std::shared_ptr<HandlerContext> context_;
  std::unique_ptr<Handler> handler_;
  testing::ServedHandler proxy_;  // after what it serves: ends its connections first
  int accepted_ = 0;
};

TEST_F(Socks4HandlerTest, ConnectsByAddressAndBy4aName) {
  uint16_t target_port = target_.local_endpoint().port();
  run([&]() -> asio::awaitable<void> {
    for (std::string target : {testing::address_of(target_), "localhost:" + std::to_string(target_port)}) {
      auto stream = co_await connect(target);
      EXPECT_TRUE(stream) << target << ": " << stream.error().message();
      if (!stream) continue;
      co_await asio::async_write(**stream, asio::buffer(std::string("ping")), kUseTuple);
      std::string back(4, '\0');
      co_await asio::async_read(**stream, asio::buffer(back), kUseTuple);
      EXPECT_EQ(back, "ping");
    }
  });
  EXPECT_EQ(accepted_, 2);
}

TEST_F(Socks4HandlerTest, UserIdMustBeAKnownUserWithoutPassword) {
  auto auther = std::make_shared<Auther>();
  auther->add("alice", "");
  auther->add("bob", "secret");
  context_->auther = auther;
  run([&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await connect(testing::address_of(target_), std::string("alice")));
    EXPECT_EQ((co_await connect(testing::address_of(target_), std::string("bob"))).error(), make_error_code(ProxyError::kAuthRequired));
    EXPECT_EQ((co_await connect(testing::address_of(target_), std::string("mallory"))).error(),
              make_error_code(ProxyError::kAuthRequired));
  });
  EXPECT_EQ(accepted_, 1);
}

TEST_F(Socks4HandlerTest, RefusesBadRequestsAndFailedTargets) {
  std::string closed = testing::closed_loopback_address(io_);
  run([&]() -> asio::awaitable<void> {
    auto bad_command = co_await testing::exchange_raw(proxy_port(), bytes(4, 7, 0, 80, 127, 0, 0, 1, 0), 8);
    EXPECT_EQ(bad_command.substr(0, 2), bytes(0, socks4::reply::kRejected));
    auto bind_disabled = co_await testing::exchange_raw(proxy_port(), bytes(4, 2, 0, 80, 127, 0, 0, 1, 0), 8);
    EXPECT_EQ(bind_disabled.substr(0, 2), bytes(0, socks4::reply::kRejected));
    EXPECT_EQ((co_await connect(closed)).error(), make_error_code(ProxyError::kRejected));
  });
}

}  // namespace
}  // namespace strait::agent
