#include "agent/channel/tls.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "agent/channel/tcp.h"
#include "support/asio_test.h"

namespace strait::agent {
namespace {

using namespace asio::experimental::awaitable_operators;
using testing::kUseTuple;
using testing::run_for;

config::v1::ServiceConfig tls_service() {
  config::v1::ServiceConfig service;
  service.set_name("tls");
  service.mutable_listener()->set_type("tls");
  return service;
}

config::v1::NodeConfig tls_node() {
  config::v1::NodeConfig node;
  node.set_name("node");
  node.mutable_dialer()->set_type("tls");
  return node;
}

struct Pair {
  StreamPtr client;
  StreamPtr server;
};

// A TLS listener and dialer joined over loopback; the handshake done on both sides.
asio::awaitable<Pair> connect_pair(Listener& listener, Dialer& dialer) {
  auto executor = co_await asio::this_coro::executor;
  std::string address = listener.bound_address().to_string();
  auto serve = [&]() -> asio::awaitable<StreamPtr> {
    auto accepted = co_await listener.accept();
    EXPECT_TRUE(accepted);
    auto server = co_await listener.handshake(std::move(*accepted));
    EXPECT_TRUE(server);
    co_return server ? std::move(*server) : nullptr;
  };
  auto dial = [&]() -> asio::awaitable<StreamPtr> {
    auto client = co_await dialer.dial(executor, address, Network::kTcp, {});
    EXPECT_TRUE(client) << (client ? "" : client.error().message());
    co_return client ? std::move(*client) : nullptr;
  };
  auto [client, server] = co_await (dial() && serve());
  co_return Pair{std::move(client), std::move(server)};
}

class TlsChannel : public ::testing::Test {
 protected:
  void SetUp() override {
    auto factory = make_tls_listener_factory(tls_service(), config::v1::Config{});
    ASSERT_TRUE(factory.ok()) << factory.status();
    auto listener = (*factory)->listen(io_.get_executor(), {.address = common::HostPort{"127.0.0.1", 0}});
    ASSERT_TRUE(listener);
    listener_ = std::move(*listener);
    auto dialer = make_tls_dialer(tls_node());
    ASSERT_TRUE(dialer.ok()) << dialer.status();
    dialer_ = *std::move(dialer);
  }

  asio::io_context io_;
  std::unique_ptr<Listener> listener_;
  std::unique_ptr<Dialer> dialer_;
};

TEST_F(TlsChannel, CarriesBytesBothWaysAndHalfCloses) {
  run_for(io_, [&]() -> asio::awaitable<void> {
    auto pair = co_await connect_pair(*listener_, *dialer_);
    std::string message = testing::payload(1 << 20);
    auto [write_error, written] = co_await asio::async_write(*pair.client, asio::buffer(message), kUseTuple);
    EXPECT_FALSE(write_error);
    pair.client->shutdown_send();
    std::string received(message.size(), '\0');
    auto [read_error, n] = co_await asio::async_read(*pair.server, asio::buffer(received), kUseTuple);
    EXPECT_FALSE(read_error);
    EXPECT_EQ(received, message);
    char extra;
    auto [eof, zero] = co_await pair.server->async_read_some(asio::buffer(&extra, 1), kUseTuple);
    EXPECT_EQ(eof, asio::error::eof) << eof.message();
    // TLS 1.3: after the client's close_notify the server may still answer.
    co_await asio::async_write(*pair.server, asio::buffer("pong", 4), kUseTuple);
    char reply[4];
    auto [reply_error, reply_size] = co_await asio::async_read(*pair.client, asio::buffer(reply), kUseTuple);
    EXPECT_FALSE(reply_error);
    EXPECT_EQ(std::string(reply, 4), "pong");
  }());
}

TEST_F(TlsChannel, WaitReadableCompletesOnlyWhenDataArrives) {
  run_for(io_, [&]() -> asio::awaitable<void> {
    auto pair = co_await connect_pair(*listener_, *dialer_);
    asio::steady_timer pause(co_await asio::this_coro::executor, std::chrono::milliseconds(50));
    auto outcome = co_await (pair.server->async_wait_readable(asio::use_awaitable) ||
                             pause.async_wait(asio::use_awaitable));
    EXPECT_EQ(outcome.index(), 1u) << "an idle TLS stream reported data";
    co_await asio::async_write(*pair.client, asio::buffer("x", 1), kUseTuple);
    auto [wait_error] = co_await pair.server->async_wait_readable(kUseTuple);
    EXPECT_FALSE(wait_error) << wait_error.message();
    char byte;
    auto [error, n] = co_await pair.server->async_read_some(asio::buffer(&byte, 1), kUseTuple);
    EXPECT_FALSE(error);
    EXPECT_EQ(byte, 'x');
  }());
}

TEST_F(TlsChannel, PlainTextClientFailsTheHandshake) {
  run_for(io_, [&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    auto plain = co_await make_tcp_dialer()->dial(executor, listener_->bound_address().to_string(), Network::kTcp, {});
    EXPECT_TRUE(plain);
    co_await asio::async_write(**plain, asio::buffer(std::string("GET / HTTP/1.1\r\n\r\n")), kUseTuple);
    auto accepted = co_await listener_->accept();
    auto server = co_await listener_->handshake(std::move(*accepted));
    EXPECT_FALSE(server);
  }());
}

TEST_F(TlsChannel, SilentClientTimesOut) {
  auto service = tls_service();
  (*service.mutable_listener()->mutable_metadata()->mutable_fields())["handshakeTimeout"].set_string_value("200ms");
  auto factory = make_tls_listener_factory(service, config::v1::Config{});
  ASSERT_TRUE(factory.ok());
  auto listener = (*factory)->listen(io_.get_executor(), {.address = common::HostPort{"127.0.0.1", 0}});
  ASSERT_TRUE(listener);
  run_for(io_, [&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    auto silent = co_await make_tcp_dialer()->dial(executor, (*listener)->bound_address().to_string(), Network::kTcp, {});
    EXPECT_TRUE(silent);
    auto accepted = co_await (*listener)->accept();
    auto start = std::chrono::steady_clock::now();
    auto server = co_await (*listener)->handshake(std::move(*accepted));
    EXPECT_EQ(server.error(), asio::error::timed_out);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  }());
}

TEST_F(TlsChannel, VerifyingDialerRefusesTheSelfSignedDefault) {
  auto node = tls_node();
  node.mutable_dialer()->mutable_tls()->set_secure(true);
  node.mutable_dialer()->mutable_tls()->set_server_name("localhost");
  auto dialer = make_tls_dialer(node);
  ASSERT_TRUE(dialer.ok());
  run_for(io_, [&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    // The address and options outlive the lazily started dial, which takes them by reference.
    const std::string address = listener_->bound_address().to_string();
    const DialOptions options;
    auto dial = (*dialer)->dial(executor, address, Network::kTcp, options);
    auto accept = [&]() -> asio::awaitable<void> {
      auto accepted = co_await listener_->accept();
      if (accepted) co_await listener_->handshake(std::move(*accepted));
    };
    asio::co_spawn(executor, accept(), asio::detached);
    auto client = co_await std::move(dial);
    EXPECT_FALSE(client) << "a self-signed certificate passed verification";
  }());
}

TEST(TlsOptions, BadValuesAreConfigErrorsNamingTheKey) {
  auto service = tls_service();
  service.mutable_listener()->mutable_tls()->set_cert_file("/nonexistent/cert.pem");
  service.mutable_listener()->mutable_tls()->set_key_file("/nonexistent/key.pem");
  auto factory = make_tls_listener_factory(service, config::v1::Config{});
  ASSERT_FALSE(factory.ok());
  EXPECT_NE(factory.status().message().find("tls.certFile \"/nonexistent/cert.pem\""), std::string::npos)
      << factory.status();
  auto node = tls_node();
  node.mutable_dialer()->mutable_tls()->mutable_options()->set_min_version("VersionSSL30");
  auto dialer = make_tls_dialer(node);
  ASSERT_FALSE(dialer.ok());
  EXPECT_NE(dialer.status().message().find("minVersion"), std::string::npos) << dialer.status();
}

}  // namespace
}  // namespace strait::agent
