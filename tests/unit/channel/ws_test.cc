#include "agent/channel/ws.h"

#include <gtest/gtest.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>

#include "support/asio_test.h"
#include "support/stream_io.h"

namespace strait::agent {
namespace {

using namespace asio::experimental::awaitable_operators;
using testing::kUseTuple;
using testing::read_exactly;
using testing::run_for;

void set_meta(google::protobuf::Struct& metadata, const std::string& key, const std::string& value) {
  (*metadata.mutable_fields())[key].set_string_value(value);
}

config::v1::ServiceConfig ws_service(const std::string& type = "ws") {
  config::v1::ServiceConfig service;
  service.set_name("svc");
  service.mutable_listener()->set_type(type);
  return service;
}

config::v1::NodeConfig ws_node(const std::string& type = "ws") {
  config::v1::NodeConfig node;
  node.set_name("node");
  node.mutable_dialer()->set_type(type);
  return node;
}

std::unique_ptr<Listener> listen(asio::io_context& io, const config::v1::ServiceConfig& service) {
  auto factory = service.listener().type() == "wss" ? make_wss_listener_factory(service, config::v1::Config{})
                                                     : make_ws_listener_factory(service, config::v1::Config{});
  EXPECT_TRUE(factory.ok()) << factory.status();
  auto listener = (*factory)->listen(io.get_executor(), {.address = common::HostPort{"127.0.0.1", 0}});
  EXPECT_TRUE(listener);
  return std::move(*listener);
}

struct Pair {
  StreamPtr client;
  StreamPtr server;
};

asio::awaitable<Pair> connect_pair(Listener& listener, Dialer& dialer) {
  auto executor = co_await asio::this_coro::executor;
  const std::string address = listener.bound_address().to_string();
  const DialOptions options;
  auto serve = [&]() -> asio::awaitable<StreamPtr> {
    auto accepted = co_await listener.accept();
    if (!accepted) co_return nullptr;
    auto server = co_await listener.handshake(std::move(*accepted));
    EXPECT_TRUE(server) << (server ? "" : server.error().message());
    co_return server ? std::move(*server) : nullptr;
  };
  auto dial = [&]() -> asio::awaitable<StreamPtr> {
    auto client = co_await dialer.dial(executor, address, Network::kTcp, options);
    EXPECT_TRUE(client) << (client ? "" : client.error().message());
    co_return client ? std::move(*client) : nullptr;
  };
  auto [client, server] = co_await (dial() && serve());
  co_return Pair{std::move(client), std::move(server)};
}

// Each write is a message and reads concatenate them, so a mebibyte written in one call
// arrives whole whatever the reads' sizes; closing sends a close frame, the peer's EOF.
void moves_a_mebibyte_each_way(const std::string& type) {
  asio::io_context io;
  auto service = ws_service(type);
  set_meta(*service.mutable_listener()->mutable_metadata(), "path", "/tunnel");
  auto node = ws_node(type);
  set_meta(*node.mutable_dialer()->mutable_metadata(), "path", "/tunnel");
  auto listener = listen(io, service);
  auto dialer = type == "wss" ? make_wss_dialer(node) : make_ws_dialer(node);
  ASSERT_TRUE(dialer.ok()) << dialer.status();
  run_for(io, [&]() -> asio::awaitable<void> {
    auto pair = co_await connect_pair(*listener, **dialer);
    if (!pair.client || !pair.server) co_return;
    const std::string up = testing::payload(1 << 20, 5);
    const std::string down = testing::payload(1 << 20, 6);
    auto [write_error, written, received] =
        co_await (asio::async_write(*pair.client, asio::buffer(up), kUseTuple) && read_exactly(*pair.server, up.size()));
    EXPECT_FALSE(write_error) << write_error.message();
    EXPECT_EQ(written, up.size());
    EXPECT_TRUE(received == up);
    auto [write_back_error, written_back, received_back] = co_await (asio::async_write(*pair.server, asio::buffer(down), kUseTuple) &&
                                                   read_exactly(*pair.client, down.size()));
    EXPECT_FALSE(write_back_error) << write_back_error.message();
    EXPECT_EQ(written_back, down.size());
    EXPECT_TRUE(received_back == down);
    pair.client->shutdown_send();
    char byte;
    auto [eof, n] = co_await pair.server->async_read_some(asio::buffer(&byte, 1), kUseTuple);
    EXPECT_EQ(eof, asio::error::eof) << eof.message();
  }());
}

TEST(WsChannel, WsMovesAMebibyteEachWayAndClosesWithACloseFrame) { moves_a_mebibyte_each_way("ws"); }
TEST(WsChannel, WssMovesAMebibyteEachWayAndClosesWithACloseFrame) { moves_a_mebibyte_each_way("wss"); }

// What a plain HTTP client gets from the listener for `request`: the status line.
std::string status_line_for(const std::string& request) {
  asio::io_context io;
  auto listener = listen(io, ws_service());
  return run_for(io, [&]() -> asio::awaitable<std::string> {
    auto serve = [&]() -> asio::awaitable<void> {
      auto accepted = co_await listener->accept();
      if (!accepted) co_return;
      auto handshake = co_await listener->handshake(std::move(*accepted));
      EXPECT_FALSE(handshake) << "the listener took a request that is no WebSocket upgrade to its path";
    };
    auto ask = [&]() -> asio::awaitable<std::string> {
      asio::ip::tcp::socket socket(co_await asio::this_coro::executor);
      auto endpoint = asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), listener->bound_address().port);
      co_await socket.async_connect(endpoint, asio::use_awaitable);
      co_await asio::async_write(socket, asio::buffer(request), kUseTuple);
      std::string answer;
      co_await asio::async_read_until(socket, asio::dynamic_buffer(answer), "\r\n", kUseTuple);
      co_return answer.substr(0, answer.find("\r\n"));
    };
    co_return co_await (serve() && ask());
  }());
}

TEST(WsChannel, NonUpgradeRequestGets400AndAnotherPath404) {
  EXPECT_EQ(status_line_for("GET /ws HTTP/1.1\r\nHost: test\r\n\r\n").substr(0, 12), "HTTP/1.1 400");
  EXPECT_EQ(status_line_for("GET /elsewhere HTTP/1.1\r\nHost: test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                            "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
                .substr(0, 12),
            "HTTP/1.1 404");
}

TEST(WsOptions, BadValuesAreConfigErrorsNamingTheKey) {
  auto service = ws_service();
  set_meta(*service.mutable_listener()->mutable_metadata(), "path", "no-slash");
  auto listener = make_ws_listener_factory(service, config::v1::Config{});
  ASSERT_FALSE(listener.ok());
  EXPECT_NE(listener.status().message().find("path"), std::string::npos) << listener.status();
  auto node = ws_node();
  set_meta(*node.mutable_dialer()->mutable_metadata(), "ws.keepalive", "sometimes");
  auto dialer = make_ws_dialer(node);
  ASSERT_FALSE(dialer.ok());
  EXPECT_NE(dialer.status().message().find("ws.keepalive"), std::string::npos) << dialer.status();
  auto headers = ws_node();
  set_meta(*headers.mutable_dialer()->mutable_metadata(), "header", "not a map");
  auto with_headers = make_ws_dialer(headers);
  ASSERT_FALSE(with_headers.ok());
  EXPECT_NE(with_headers.status().message().find("header"), std::string::npos) << with_headers.status();
}

}  // namespace
}  // namespace strait::agent
