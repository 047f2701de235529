#include "agent/connector/socks5.h"

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

struct Script {
  std::string greeting_reply;
  std::string auth_reply;  // empty: the server expects no auth step
  std::string request_reply;
};

struct Outcome {
  std::string received;  // everything the connector sent
  error_code error;
  std::string first_bytes;
};

// Runs the connector against a scripted SOCKS5 server that answers each client message.
Outcome connect_through(const config::v1::NodeConfig& node, const Script& script, Network network = Network::kTcp) {
  asio::io_context io;
  Outcome outcome;
  auto connector = make_socks5_connector(node);
  EXPECT_TRUE(connector.ok()) << connector.status();
  run_for(io, [&]() -> asio::awaitable<void> {
    auto [client, server] = co_await testing::tcp_pair();
    auto server_side = [&]() -> asio::awaitable<void> {
      char buffer[1024];
      for (const std::string* answer : {&script.greeting_reply, &script.auth_reply, &script.request_reply}) {
        if (answer->empty()) continue;
        auto [error, n] = co_await server.async_read_some(asio::buffer(buffer), kUseTuple);
        if (error) co_return;
        outcome.received.append(buffer, n);
        co_await asio::async_write(server, asio::buffer(*answer), kUseTuple);
      }
    };
    auto client_side = [&]() -> asio::awaitable<void> {
      auto stream = co_await (*connector)->connect(std::make_unique<TcpStream>(std::move(client)), network,
                                                   "example.com:443");
      if (!stream) {
        outcome.error = stream.error();
      } else if (network == Network::kTcp) {
        outcome.first_bytes.resize(5);
        co_await asio::async_read(**stream, asio::buffer(outcome.first_bytes), kUseTuple);
      }
    };
    co_await (client_side() && server_side());
  }());
  return outcome;
}

const std::string kConnectExample = bytes(5, 1, 0, 3, 11) + "example.com" + bytes(1, 187);
const std::string kOkReply = bytes(5, 0, 0, 1, 0, 0, 0, 0, 0, 0);

TEST(Socks5Connector, ConnectsWithoutAuthAndKeepsEarlyBytes) {
  config::v1::NodeConfig node;
  auto outcome = connect_through(node, {bytes(5, 0), "", kOkReply + "hello"});
  EXPECT_FALSE(outcome.error) << outcome.error.message();
  EXPECT_EQ(outcome.received, bytes(5, 1, 0) + kConnectExample) << "offers only no-auth, names the host";
  EXPECT_EQ(outcome.first_bytes, "hello");
}

TEST(Socks5Connector, AuthenticatesWhenTheServerAsks) {
  config::v1::NodeConfig node;
  node.mutable_connector()->mutable_auth()->set_username("u");
  node.mutable_connector()->mutable_auth()->set_password("pw");
  auto outcome = connect_through(node, {bytes(5, 2), bytes(1, 0), kOkReply + "hello"});
  EXPECT_FALSE(outcome.error);
  EXPECT_EQ(outcome.received, bytes(5, 2, 0, 2, 1, 1, 'u', 2, 'p', 'w') + kConnectExample);
  auto refused = connect_through(node, {bytes(5, 2), bytes(1, 1), ""});
  EXPECT_EQ(refused.error, make_error_code(ProxyError::kAuthRequired));
}

TEST(Socks5Connector, NeedsCredentialsTheServerAccepts) {
  config::v1::NodeConfig node;
  EXPECT_EQ(connect_through(node, {bytes(5, 0xFF), "", ""}).error, make_error_code(ProxyError::kAuthRequired));
  EXPECT_EQ(connect_through(node, {bytes(5, 2), "", ""}).error, make_error_code(ProxyError::kAuthRequired));
  EXPECT_EQ(connect_through(node, {"HTTP/1.1 400 Bad Request\r\n\r\n", "", ""}).error,
            make_error_code(ProxyError::kBadResponse));
}

TEST(Socks5Connector, MapsReplyCodesToErrors) {
  config::v1::NodeConfig node;
  auto with_code = [&](int code) {
    return connect_through(node, {bytes(5, 0), "", bytes(5, code, 0, 1, 0, 0, 0, 0, 0, 0)}).error;
  };
  EXPECT_EQ(with_code(5), asio::error::connection_refused);
  EXPECT_EQ(with_code(4), asio::error::host_unreachable);
  EXPECT_EQ(with_code(3), asio::error::network_unreachable);
  EXPECT_EQ(with_code(2), make_error_code(ProxyError::kForbidden));
  EXPECT_EQ(with_code(1), make_error_code(ProxyError::kRejected));
}

TEST(Socks5Connector, UdpUsesGostUdpTunnelByDefault) {
  config::v1::NodeConfig node;
  auto outcome = connect_through(node, {bytes(5, 0), "", kOkReply}, Network::kUdp);
  EXPECT_EQ(outcome.received.substr(3), bytes(5, 0xF3, 0, 1, 0, 0, 0, 0, 0, 0));
  auto refused = connect_through(node, {bytes(5, 0), "", bytes(5, 7, 0, 1, 0, 0, 0, 0, 0, 0)}, Network::kUdp);
  EXPECT_EQ(refused.error, make_error_code(ProxyError::kUnsupportedNetwork));
}

TEST(Socks5Connector, RefusesBadOptions) {
  config::v1::NodeConfig node;
  (*node.mutable_connector()->mutable_metadata()->mutable_fields())["relay"].set_string_value("tcp");
  EXPECT_FALSE(make_socks5_connector(node).ok());
  config::v1::NodeConfig long_user;
  long_user.mutable_connector()->mutable_auth()->set_username(std::string(256, 'u'));
  EXPECT_FALSE(make_socks5_connector(long_user).ok());
}

TEST(Socks5Connector, GivesUpOnASilentServer) {
  config::v1::NodeConfig node;
  (*node.mutable_connector()->mutable_metadata()->mutable_fields())["timeout"].set_string_value("100ms");
  asio::io_context io;
  auto connector = make_socks5_connector(node);
  error_code error;
  run_for(io, [&]() -> asio::awaitable<void> {
    auto [client, server] = co_await testing::tcp_pair();
    auto stream = co_await (*connector)->connect(std::make_unique<TcpStream>(std::move(client)), Network::kTcp,
                                                 "example.com:443");
    error = stream ? error_code{} : stream.error();
  }());
  EXPECT_EQ(error, asio::error::timed_out);
}

}  // namespace
}  // namespace strait::agent
