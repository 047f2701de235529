#pragma once

// Shared by the pht channel tests: configs, a listener and dialer over loopback, and a raw
// HTTP client for requests a dialer would never send.

#include <gtest/gtest.h>

#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

#include "agent/channel/pht.h"
#include "agent/protocol/pht.h"
#include "support/asio_test.h"

namespace strait::agent::pht_test {

using namespace asio::experimental::awaitable_operators;
using testing::kUseTuple;
using testing::run_for;
namespace http = boost::beast::http;

using Fields = std::vector<std::pair<std::string, std::string>>;

inline config::v1::ServiceConfig pht_service(const std::string& type, const Fields& metadata = {}) {
  config::v1::ServiceConfig service;
  service.set_name("pht");
  service.mutable_listener()->set_type(type);
  for (const auto& [key, value] : metadata) {
    (*service.mutable_listener()->mutable_metadata()->mutable_fields())[key].set_string_value(value);
  }
  return service;
}

inline config::v1::NodeConfig pht_node(const std::string& type) {
  config::v1::NodeConfig node;
  node.set_name("node");
  node.mutable_dialer()->set_type(type);
  return node;
}

struct Pair {
  StreamPtr client;
  StreamPtr server;
};

inline asio::awaitable<Pair> connect_pair(Listener& listener, Dialer& dialer) {
  auto executor = co_await asio::this_coro::executor;
  auto accept = [&]() -> asio::awaitable<StreamPtr> {
    auto accepted = co_await listener.accept();
    EXPECT_TRUE(accepted);
    co_return accepted ? std::move(*accepted) : nullptr;
  };
  auto dial = [&]() -> asio::awaitable<StreamPtr> {
    auto client = co_await dialer.dial(executor, listener.bound_address().to_string(), Network::kTcp, {});
    EXPECT_TRUE(client) << (client ? "" : client.error().message());
    co_return client ? std::move(*client) : nullptr;
  };
  auto [client, server] = co_await (dial() && accept());
  co_return Pair{std::move(client), std::move(server)};
}

inline asio::awaitable<bool> send(Stream& stream, const std::string& data) {
  auto [error, n] = co_await asio::async_write(stream, asio::buffer(data), kUseTuple);
  EXPECT_FALSE(error) << error.message();
  co_return !error;
}

inline asio::awaitable<std::string> receive(Stream& stream, size_t size) {
  std::string data(size, '\0');
  auto [error, n] = co_await asio::async_read(stream, asio::buffer(data), kUseTuple);
  EXPECT_FALSE(error) << error.message();
  data.resize(n);
  co_return data;
}

inline asio::awaitable<error_code> read_error(Stream& stream) {
  char byte;
  auto [error, n] = co_await stream.async_read_some(asio::buffer(&byte, 1), kUseTuple);
  EXPECT_EQ(n, 0u);
  co_return error;
}

// A plain HTTP client on its own connection, for requests a dialer would never send.
class RawClient {
 public:
  static asio::awaitable<RawClient> connect(const Listener& listener) {
    auto executor = co_await asio::this_coro::executor;
    asio::ip::tcp::socket socket(executor);
    auto [error] =
        co_await socket.async_connect({asio::ip::make_address("127.0.0.1"), listener.bound_address().port}, kUseTuple);
    EXPECT_FALSE(error) << error.message();
    co_return RawClient(std::move(socket));
  }

  // Sends `text` and reads one whole answer.
  asio::awaitable<http::response<http::string_body>> exchange(const std::string& text) {
    co_await asio::async_write(socket_, asio::buffer(text), kUseTuple);
    http::response<http::string_body> response;
    auto [error, n] = co_await http::async_read(socket_, buffer_, response, kUseTuple);
    EXPECT_FALSE(error) << error.message();
    co_return response;
  }

  asio::awaitable<std::string> authorize() {
    auto response = co_await exchange("GET /authorize HTTP/1.1\r\nHost: test\r\n\r\n");
    EXPECT_EQ(response.result_int(), 200u);
    auto token = pht::token_of_authorize_body(response.body());
    EXPECT_TRUE(token) << response.body();
    co_return token.value_or("");
  }

  asio::awaitable<unsigned> push(const std::string& token, const std::string& body) {
    auto response = co_await exchange("POST /push?token=" + token + " HTTP/1.1\r\nHost: test\r\nContent-Length: " +
                                      std::to_string(body.size()) + "\r\n\r\n" + body);
    co_return response.result_int();
  }

  asio::ip::tcp::socket& socket() { return socket_; }

 private:
  explicit RawClient(asio::ip::tcp::socket socket) : socket_(std::move(socket)) {}
  asio::ip::tcp::socket socket_;
  boost::beast::flat_buffer buffer_;
};

class PhtChannel : public ::testing::Test {
 protected:
  void listen(const std::string& type = "pht", const Fields& metadata = {}) {
    auto factory = type == "pht" ? make_pht_listener_factory(pht_service(type, metadata), config::v1::Config{})
                                 : make_phts_listener_factory(pht_service(type, metadata), config::v1::Config{});
    ASSERT_TRUE(factory.ok()) << factory.status();
    auto listener = (*factory)->listen(io_.get_executor(), {.address = common::HostPort{"127.0.0.1", 0}});
    ASSERT_TRUE(listener);
    listener_ = std::move(*listener);
    auto dialer = type == "pht" ? make_pht_dialer(pht_node(type)) : make_phts_dialer(pht_node(type));
    ASSERT_TRUE(dialer.ok()) << dialer.status();
    dialer_ = *std::move(dialer);
  }

  // Keeps the listener's connection loop going while a test speaks raw HTTP to it.
  void accept_in_background(std::vector<StreamPtr>& accepted) {
    asio::co_spawn(
        io_,
        [](Listener& listener, std::vector<StreamPtr>& out) -> asio::awaitable<void> {
          for (;;) {
            auto stream = co_await listener.accept();
            if (!stream) co_return;
            out.push_back(std::move(*stream));
          }
        }(*listener_, accepted),
        asio::detached);
  }

  asio::io_context io_;
  std::unique_ptr<Listener> listener_;
  std::unique_ptr<Dialer> dialer_;
};

}  // namespace strait::agent::pht_test
