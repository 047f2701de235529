#include "agent/connector/socks4.h"

#include <gtest/gtest.h>

#include <boost/asio/experimental/awaitable_operators.hpp>

#include "agent/protocol/proxy_error.h"
#include "support/proxy_harness.h"

namespace strait::agent {
namespace {

using namespace asio::experimental::awaitable_operators;
using testing::bytes;
using testing::kUseTuple;
using testing::run_for;

struct Outcome {
  std::string request;
  error_code error;
};

Outcome connect_through(const config::v1::NodeConfig& node, const std::string& target, const std::string& reply) {
  asio::io_context io;
  Outcome outcome;
  auto connector = make_socks4_connector(node);
  EXPECT_TRUE(connector.ok()) << connector.status();
  run_for(io, [&]() -> asio::awaitable<void> {
    auto [client, server] = co_await testing::tcp_pair();
    auto server_side = [&]() -> asio::awaitable<void> {
      char buffer[512];
      auto [error, n] = co_await server.async_read_some(asio::buffer(buffer), kUseTuple);
      outcome.request.assign(buffer, n);
      co_await asio::async_write(server, asio::buffer(reply), kUseTuple);
    };
    auto client_side = [&]() -> asio::awaitable<void> {
      auto stream = co_await (*connector)->connect(std::make_unique<TcpStream>(std::move(client)), Network::kTcp, target);
      if (!stream) outcome.error = stream.error();
    };
    co_await (client_side() && server_side());
  }());
  return outcome;
}

const std::string kGranted = bytes(0, 90, 0, 0, 0, 0, 0, 0);

TEST(Socks4Connector, SendsAddressesAndNamesWithTheUserId) {
  config::v1::NodeConfig node;
  node.mutable_connector()->mutable_auth()->set_username("bob");
  auto by_address = connect_through(node, "10.0.0.1:80", kGranted);
  EXPECT_FALSE(by_address.error);
  EXPECT_EQ(by_address.request, bytes(4, 1, 0, 80, 10, 0, 0, 1, 'b', 'o', 'b', 0));
  auto by_name = connect_through(node, "example.com:443", kGranted);
  EXPECT_EQ(by_name.request, bytes(4, 1, 1, 187, 0, 0, 0, 1, 'b', 'o', 'b', 0) + "example.com" + bytes(0));
}

TEST(Socks4Connector, Disable4aResolvesHere) {
  config::v1::NodeConfig node;
  (*node.mutable_connector()->mutable_metadata()->mutable_fields())["disable4a"].set_bool_value(true);
  auto outcome = connect_through(node, "localhost:80", kGranted);
  EXPECT_EQ(outcome.request, bytes(4, 1, 0, 80, 127, 0, 0, 1, 0));
}

TEST(Socks4Connector, MapsRefusals) {
  config::v1::NodeConfig node;
  EXPECT_EQ(connect_through(node, "10.0.0.1:80", bytes(0, 91, 0, 0, 0, 0, 0, 0)).error,
            make_error_code(ProxyError::kRejected));
  EXPECT_EQ(connect_through(node, "10.0.0.1:80", bytes(0, 93, 0, 0, 0, 0, 0, 0)).error,
            make_error_code(ProxyError::kAuthRequired));
  EXPECT_EQ(connect_through(node, "10.0.0.1:80", "HTTP/1.1 400 Bad\r\n").error, make_error_code(ProxyError::kBadResponse));
}

TEST(Socks4Connector, RefusesWhatSocks4CannotCarry) {
  config::v1::NodeConfig node;
  asio::io_context io;
  auto connector = make_socks4_connector(node);
  std::vector<error_code> errors;
  run_for(io, [&]() -> asio::awaitable<void> {
    for (auto [network, target] : {std::pair{Network::kUdp, "10.0.0.1:53"}, std::pair{Network::kTcp, "[::1]:80"}}) {
      auto [client, server] = co_await testing::tcp_pair();
      auto stream = co_await (*connector)->connect(std::make_unique<TcpStream>(std::move(client)), network, target);
      errors.push_back(stream ? error_code{} : stream.error());
    }
  }());
  EXPECT_EQ(errors, (std::vector<error_code>{make_error_code(ProxyError::kUnsupportedNetwork),
                                             asio::error::address_family_not_supported}));
}

}  // namespace
}  // namespace strait::agent
