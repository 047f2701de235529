#include "agent/connector/http.h"

#include <gtest/gtest.h>

#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>

#include <boost/asio/experimental/awaitable_operators.hpp>

#include "agent/protocol/proxy_error.h"
#include "agent/channel/tcp.h"
#include "support/asio_test.h"

namespace strait::agent {
namespace {

using namespace asio::experimental::awaitable_operators;
using testing::kUseTuple;
using testing::run_for;

struct ConnectOutcome {
  std::string request;
  error_code error;         // empty when the connector returned a stream
  std::string first_bytes;  // what that stream read first
};

// Runs the connector against a scripted proxy that answers `reply` to the CONNECT head.
ConnectOutcome connect_through(const config::v1::NodeConfig& node, std::string reply, size_t read_after = 0) {
  asio::io_context io;
  ConnectOutcome outcome;
  auto connector = make_http_connector(node);
  EXPECT_TRUE(connector.ok());
  run_for(io, [&]() -> asio::awaitable<void> {
    auto [client, proxy] = co_await testing::tcp_pair();
    auto proxy_side = [&]() -> asio::awaitable<void> {
      std::string head;
      co_await asio::async_read_until(proxy, asio::dynamic_buffer(head), "\r\n\r\n", kUseTuple);
      outcome.request = head;
      co_await asio::async_write(proxy, asio::buffer(reply), kUseTuple);
    };
    auto connect = [&]() -> asio::awaitable<void> {
      // The stream must end inside this io_context's run, so it stays in this frame.
      auto stream = co_await (*connector)->connect(std::make_unique<TcpStream>(std::move(client)), Network::kTcp,
                                                   "example.com:443");
      if (!stream) {
        outcome.error = stream.error();
      } else if (read_after > 0) {
        outcome.first_bytes.resize(read_after);
        co_await asio::async_read(**stream, asio::buffer(outcome.first_bytes), kUseTuple);
      }
    };
    co_await (connect() && proxy_side());
  }());
  return outcome;
}

TEST(HttpConnector, SendsConnectWithBasicAuthAndKeepsEarlyBytes) {
  config::v1::NodeConfig node;
  node.mutable_connector()->set_type("http");
  node.mutable_connector()->mutable_auth()->set_username("user");
  node.mutable_connector()->mutable_auth()->set_password("pass");
  auto outcome = connect_through(node, "HTTP/1.1 200 Connection established\r\n\r\nSSH-2.0-server\r\n", 16);
  EXPECT_EQ(outcome.request.substr(0, 42), "CONNECT example.com:443 HTTP/1.1\r\nHost: ex");
  EXPECT_NE(outcome.request.find("Proxy-Authorization: Basic dXNlcjpwYXNz\r\n"), std::string::npos);
  EXPECT_FALSE(outcome.error);
  // Bytes the target sent right after the 200 are not lost.
  EXPECT_EQ(outcome.first_bytes, "SSH-2.0-server\r\n");
}

TEST(HttpConnector, MapsRefusals) {
  config::v1::NodeConfig node;
  EXPECT_EQ(connect_through(node, "HTTP/1.1 407 Proxy Authentication Required\r\n\r\n").error,
            make_error_code(ProxyError::kAuthRequired));
  EXPECT_EQ(connect_through(node, "HTTP/1.1 403 Forbidden\r\n\r\n").error,
            make_error_code(ProxyError::kRejected));
  EXPECT_EQ(connect_through(node, "garbage without status\r\n\r\n").error,
            make_error_code(ProxyError::kBadResponse));
  EXPECT_TRUE(connect_through(node, "HTTP/1.1 200 OK\r\n\r\n").request.find("Proxy-Authorization") == std::string::npos);
}

}  // namespace
}  // namespace strait::agent
