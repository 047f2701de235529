#include "agent/handler/socks5.h"

#include <gtest/gtest.h>

#include "agent/connector/socks5.h"
#include "agent/protocol/socks5.h"
#include "agent/protocol/proxy_error.h"
#include "support/proxy_harness.h"

namespace strait::agent {
namespace {

using testing::bytes;
using testing::kUseTuple;
using testing::run_for;

class Socks5HandlerTest : public ::testing::Test {
 protected:
  Socks5HandlerTest()
      : target_(testing::loopback_acceptor(io_)), context_(testing::direct_context()) {}

  void start(std::initializer_list<std::pair<const char*, const char*>> metadata = {}) {
    config::v1::ServiceConfig service;
    for (const auto& [key, value] : metadata) {
      (*service.mutable_handler()->mutable_metadata()->mutable_fields())[key].set_string_value(value);
    }
    auto handler = make_socks5_handler(service);
    ASSERT_TRUE(handler.ok()) << handler.status();
    handler_ = *std::move(handler);
    proxy_ = std::make_unique<testing::ServedHandler>(io_, *handler_, *context_);
  }

  void require_auth() {
    auto auther = std::make_shared<Auther>();
    auther->add("user", "pass");
    context_->auther = auther;
  }

  // Runs `client` against the served handler and the echo target.
  template <typename Client>
  void run(Client client) {
    run_for(io_, [&]() -> asio::awaitable<void> {
      asio::co_spawn(io_, proxy_->serve(), asio::detached);
      asio::co_spawn(io_, testing::echo(target_, accepted_), asio::detached);
      co_await client();
    }());
  }

  uint16_t proxy_port() const { return proxy_->port(); }
  std::string target_address() const { return testing::address_of(target_); }

  // Our socks5 connector over a fresh connection to the handler.
  asio::awaitable<Result<StreamPtr>> connect(const std::string& target, std::string user = "", std::string pass = "") {
    config::v1::NodeConfig node;
    node.mutable_connector()->set_type("socks5");
    node.mutable_connector()->mutable_auth()->set_username(user);
    node.mutable_connector()->mutable_auth()->set_password(pass);
    auto connector = make_socks5_connector(node);
    auto socket = co_await connect_tcp(io_.get_executor(), "127.0.0.1:" + std::to_string(proxy_port()),
                                       DialOptions{std::chrono::seconds(5)});
    if (!socket) co_return socket.error();
    co_return co_await (*connector)->connect(std::make_unique<TcpStream>(std::move(*socket)), Network::kTcp, target);
  }

  asio::io_context io_;
  asio::ip::tcp::acceptor target_;
  std::shared_ptr<HandlerContext> context_;
  std::unique_ptr<Handler> handler_;
  int accepted_ = 0;
  std::unique_ptr<testing::ServedHandler> proxy_;  // last: ends its connections first
};

asio::awaitable<std::string> echo_through(Stream& stream, std::string payload) {
  co_await asio::async_write(stream, asio::buffer(payload), kUseTuple);
  std::string back(payload.size(), '\0');
  co_await asio::async_read(stream, asio::buffer(back), kUseTuple);
  co_return back;
}

TEST_F(Socks5HandlerTest, ConnectRelaysToTheTarget) {
  start();
  std::string blob = testing::payload(256 * 1024);
  run([&]() -> asio::awaitable<void> {
    auto stream = co_await connect(target_address());
    EXPECT_TRUE(stream) << stream.error().message();
    if (stream) {
      EXPECT_EQ(co_await echo_through(**stream, blob), blob);
    }
  });
  EXPECT_EQ(accepted_, 1);
}

TEST_F(Socks5HandlerTest, AuthenticatesUsers) {
  start();
  require_auth();
  run([&]() -> asio::awaitable<void> {
    auto stream = co_await connect(target_address(), std::string("user"), std::string("pass"));
    EXPECT_TRUE(stream);
    if (stream) {
      EXPECT_EQ(co_await echo_through(**stream, std::string("hi")), "hi");
    }
    auto refused = co_await connect(target_address(), std::string("user"), std::string("wrong"));
    EXPECT_EQ(refused.error(), make_error_code(ProxyError::kAuthRequired));
    // A client that offers only "no authentication" gets "no acceptable methods".
    EXPECT_EQ(co_await testing::exchange_raw(proxy_port(), bytes(5, 1, 0), 2), bytes(5, 0xFF));
  });
  EXPECT_EQ(accepted_, 1) << "wrong credentials reached the target";
}

TEST_F(Socks5HandlerTest, WrongPasswordGetsStatusFailureAndNothingElse) {
  start();
  require_auth();
  run([&]() -> asio::awaitable<void> {
    std::string request = bytes(5, 1, 2, 1, 4) + "user" + bytes(5) + "wrong";
    auto reply = co_await testing::exchange_raw(proxy_port(), request + bytes(5, 1, 0, 1, 127, 0, 0, 1, 0, 80), 6);
    EXPECT_EQ(reply, bytes(5, 2, 1, 1)) << "method 2, then status 1 and the connection closed";
  });
}

TEST_F(Socks5HandlerTest, RefusesBadRequestsWithTheirReplyCodes) {
  start();
  run([&]() -> asio::awaitable<void> {
    auto unknown_command = co_await testing::exchange_raw(proxy_port(), bytes(5, 1, 0, 5, 9, 0, 1, 1, 2, 3, 4, 0, 80), 12);
    EXPECT_EQ(unknown_command.substr(2, 2), bytes(5, socks5::reply::kCommandNotSupported));
    auto unknown_type = co_await testing::exchange_raw(proxy_port(), bytes(5, 1, 0, 5, 1, 0, 9, 1, 2, 3, 4, 0, 80), 12);
    EXPECT_EQ(unknown_type.substr(2, 2), bytes(5, socks5::reply::kAddressTypeNotSupported));
    auto udp_disabled = co_await testing::exchange_raw(proxy_port(), bytes(5, 1, 0, 5, 3, 0, 1, 0, 0, 0, 0, 0, 0), 12);
    EXPECT_EQ(udp_disabled.substr(2, 2), bytes(5, socks5::reply::kNotAllowed));
    auto bind_disabled = co_await testing::exchange_raw(proxy_port(), bytes(5, 1, 0, 5, 2, 0, 1, 0, 0, 0, 0, 0, 0), 12);
    EXPECT_EQ(bind_disabled.substr(2, 2), bytes(5, socks5::reply::kNotAllowed));
    auto wrong_version = co_await testing::exchange_raw(proxy_port(), bytes(4, 1, 0, 80, 1, 2, 3, 4, 0), 8);
    EXPECT_EQ(wrong_version, bytes(5, 0xFF));
  });
}

TEST_F(Socks5HandlerTest, RepliesConnectionRefusedForAClosedPort) {
  start();
  std::string closed = testing::closed_loopback_address(io_);
  run([&]() -> asio::awaitable<void> {
    auto stream = co_await connect(closed);
    EXPECT_EQ(stream.error(), asio::error::connection_refused) << "reply 5 maps back to ECONNREFUSED";
  });
}

TEST_F(Socks5HandlerTest, EndsASilentClientAfterTheReadTimeout) {
  start({{"readTimeout", "200ms"}});
  run([&]() -> asio::awaitable<void> {
    auto started = std::chrono::steady_clock::now();
    auto reply = co_await testing::exchange_raw(proxy_port(), bytes(5, 1), 2);  // half a greeting
    EXPECT_EQ(reply, "");
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
  });
}

TEST(Socks5HandlerOptions, RefuseMalformedValues) {
  config::v1::ServiceConfig service;
  (*service.mutable_handler()->mutable_metadata()->mutable_fields())["udp"].set_string_value("maybe");
  auto handler = make_socks5_handler(service);
  ASSERT_FALSE(handler.ok());
  EXPECT_NE(handler.status().message().find("udp"), std::string::npos);
}

}  // namespace
}  // namespace strait::agent
