#include "agent/handler/http.h"

#include <gtest/gtest.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>

#include "agent/channel/tcp.h"
#include "support/asio_test.h"

namespace strait::agent {
namespace {

using namespace asio::experimental::awaitable_operators;
using testing::kUseTuple;
using testing::run_for;

class HttpHandlerTest : public ::testing::Test {
 protected:
  HttpHandlerTest() : origin_(testing::loopback_acceptor(io_)) {
    context_.service = "service-0";
    context_.router = std::make_shared<Router>(nullptr, 0, DialOptions{});
    config::v1::ServiceConfig service;
    handler_ = *make_http_handler(service);
  }

  void require_auth() {
    auto auther = std::make_shared<Auther>();
    auther->add("user", "pass");
    context_.auther = auther;
  }

  // Sends `request` through the handler; the origin answers each request head with a
  // fixed 200 response. Returns everything the client received until EOF.
  std::string exchange(std::string request, int origin_requests) {
    std::string received;
    run_for(io_, [&]() -> asio::awaitable<void> {
      auto [client_app, client_socket] = co_await testing::tcp_pair();
      auto origin_side = [&]() -> asio::awaitable<void> {
        if (origin_requests == 0) co_return;
        auto socket = co_await origin_.async_accept(asio::use_awaitable);
        std::string buffer;
        for (int i = 0; i < origin_requests; ++i) {
          auto [ec, n] = co_await asio::async_read_until(socket, asio::dynamic_buffer(buffer), "\r\n\r\n", kUseTuple);
          if (ec) co_return;
          origin_heads_.push_back(buffer.substr(0, n));
          buffer.erase(0, n);
          co_await asio::async_write(socket, asio::buffer(std::string("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")),
                                     kUseTuple);
        }
      };
      auto client_side = [&]() -> asio::awaitable<void> {
        co_await asio::async_write(client_app, asio::buffer(request), kUseTuple);
        char buffer[4096];
        for (;;) {
          auto [ec, n] = co_await client_app.async_read_some(asio::buffer(buffer), kUseTuple);
          received.append(buffer, n);
          bool all_answered = origin_requests > 0 && received.ends_with("ok") &&
                              static_cast<int>(origin_heads_.size()) == origin_requests;
          if (ec || all_answered) {
            break;
          }
        }
        client_app.close();
      };
      co_await (handler_->handle(std::make_unique<TcpStream>(std::move(client_socket)), context_) && client_side() &&
                origin_side());
    }());
    return received;
  }

  std::string origin() const { return testing::address_of(origin_); }

  asio::io_context io_;
  asio::ip::tcp::acceptor origin_;
  HandlerContext context_;
  std::unique_ptr<Handler> handler_;
  std::vector<std::string> origin_heads_;
};

TEST_F(HttpHandlerTest, ForwardsAbsoluteUriAsOriginFormWithoutHopByHopHeaders) {
  std::string reply = exchange("GET http://" + origin() + "/path?q=1 HTTP/1.1\r\nHost: " + origin() +
                                   "\r\nProxy-Connection: keep-alive\r\nConnection: X-Secret\r\nX-Secret: 1\r\n"
                                   "Proxy-Authorization: Basic eDp5\r\n\r\n",
                               1);
  EXPECT_EQ(reply.substr(0, 15), "HTTP/1.1 200 OK");
  ASSERT_EQ(origin_heads_.size(), 1u);
  const auto& head = origin_heads_[0];
  EXPECT_EQ(head.substr(0, 24), "GET /path?q=1 HTTP/1.1\r\n");
  EXPECT_EQ(head.find("Proxy-"), std::string::npos) << head;
  EXPECT_EQ(head.find("X-Secret"), std::string::npos) << head;
}

TEST_F(HttpHandlerTest, TheUriNamesTheHostNotTheClientsHostField) {
  std::string reply = exchange("GET http://" + origin() + "/ HTTP/1.1\r\nHost: elsewhere.example\r\n\r\n", 1);
  EXPECT_EQ(reply.substr(0, 15), "HTTP/1.1 200 OK");
  ASSERT_EQ(origin_heads_.size(), 1u);
  EXPECT_NE(origin_heads_[0].find("Host: " + origin() + "\r\n"), std::string::npos) << origin_heads_[0];
  EXPECT_EQ(origin_heads_[0].find("elsewhere"), std::string::npos) << origin_heads_[0];
}

TEST_F(HttpHandlerTest, KeepsTheClientConnectionForASecondRequest) {
  std::string one = "GET http://" + origin() + "/a HTTP/1.1\r\nHost: x\r\n\r\n";
  std::string reply = exchange(one + one, 2);
  EXPECT_EQ(origin_heads_.size(), 2u);
  EXPECT_NE(reply.find("ok"), reply.rfind("ok"));
}

TEST_F(HttpHandlerTest, AsksForCredentialsWith407) {
  require_auth();
  std::string reply = exchange("GET http://" + origin() + "/ HTTP/1.1\r\nHost: x\r\n\r\n", 0);
  EXPECT_EQ(reply.substr(0, 12), "HTTP/1.1 407");
  EXPECT_NE(reply.find("Proxy-Authenticate: Basic realm="), std::string::npos);
  EXPECT_TRUE(origin_heads_.empty());  // wrong credentials never reach the network behind
  reply = exchange("GET http://" + origin() + "/ HTTP/1.1\r\nProxy-Authorization: Basic dXNlcjp3cm9uZw==\r\n\r\n", 0);
  EXPECT_EQ(reply.substr(0, 12), "HTTP/1.1 407");
}

TEST_F(HttpHandlerTest, AcceptsRightCredentials) {
  require_auth();
  std::string reply = exchange(
      "GET http://" + origin() + "/ HTTP/1.1\r\nProxy-Authorization: Basic dXNlcjpwYXNz\r\n\r\n", 1);
  EXPECT_EQ(reply.substr(0, 12), "HTTP/1.1 200");
}

TEST_F(HttpHandlerTest, RefusesGarbageAndOversizedHeads) {
  EXPECT_EQ(exchange(std::string("\x00\x01garbage\r\n\r\n", 13), 0).substr(0, 12), "HTTP/1.1 400");
  EXPECT_EQ(exchange("GET / HTTP/1.1\r\n\r\n", 0).substr(0, 12), "HTTP/1.1 400");
  std::string huge = "GET http://a/ HTTP/1.1\r\nX: " + std::string(70 * 1024, 'x') + "\r\n\r\n";
  EXPECT_EQ(exchange(huge, 0).substr(0, 12), "HTTP/1.1 431");
}

TEST_F(HttpHandlerTest, ConnectTunnelsAfter200) {
  std::string reply = exchange("CONNECT " + origin() + " HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n", 1);
  EXPECT_EQ(reply.substr(0, 36), "HTTP/1.1 200 Connection established\r");
  EXPECT_NE(reply.find("HTTP/1.1 200 OK"), std::string::npos);
}

TEST_F(HttpHandlerTest, UnreachableTargetIs502) {
  std::string address = testing::closed_loopback_address(io_);
  EXPECT_EQ(exchange("CONNECT " + address + " HTTP/1.1\r\n\r\n", 0).substr(0, 12), "HTTP/1.1 502");
  EXPECT_EQ(exchange("GET http://" + address + "/ HTTP/1.1\r\n\r\n", 0).substr(0, 12), "HTTP/1.1 502");
}

}  // namespace
}  // namespace strait::agent
