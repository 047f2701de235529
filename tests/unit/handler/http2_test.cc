#include "agent/handler/http2.h"

#include <gtest/gtest.h>


#include "agent/channel/h2_session.h"
#include "agent/channel/h2_stream.h"
#include "support/http2_proxy_harness.h"

namespace strait::agent {
namespace {

using testing::kUseTuple;
using testing::run_for;

// Opens one HTTP/2 stream with `request` to the proxy; returns the stream.
asio::awaitable<Result<std::unique_ptr<H2Stream>>> ask(testing::Http2Proxy& proxy, const h2::Head& request,
                                                       std::shared_ptr<H2Session>& session) {
  // Not in one expression with the co_await: GCC 12 may destroy a braced temporary there twice.
  auto connection = co_await proxy.connect();
  session = H2Session::start_client(std::move(connection), H2SessionOptions{});
  co_return co_await session->open(request, std::chrono::seconds(5));
}

// Absolute-URI requests (GET with END_STREAM on its headers) are sent by nghttp in
// tests/integration/test_http2.py; here CONNECT, whose failures are answered in the head.
TEST(Http2Handler, UnreachableTargetIsAnswered502) {
  asio::io_context io;
  auto context = testing::direct_context();
  testing::Http2Proxy proxy(io, *context);
  std::string closed = testing::closed_loopback_address(io);
  run_for(io, [&]() -> asio::awaitable<void> {
    asio::co_spawn(io, proxy.serve(), asio::detached);
    h2::Head request;
    request.method = "CONNECT";
    request.authority = closed;
    std::shared_ptr<H2Session> session;
    auto stream = co_await ask(proxy, request, session);
    EXPECT_TRUE(stream && (*stream)->head().status == 502)
        << (stream ? std::to_string((*stream)->head().status) : stream.error().message());
    session->close();
  }());
}

TEST(Http2Handler, MissingCredentialsGet407WithTheChallenge) {
  asio::io_context io;
  auto context = testing::direct_context();
  context->auther = testing::one_user("user", "secret");
  testing::Http2Proxy proxy(io, *context);
  run_for(io, [&]() -> asio::awaitable<void> {
    asio::co_spawn(io, proxy.serve(), asio::detached);
    h2::Head request;
    request.method = "CONNECT";
    request.authority = "127.0.0.1:9";
    std::shared_ptr<H2Session> session;
    auto stream = co_await ask(proxy, request, session);
    EXPECT_TRUE(stream);
    if (!stream) co_return;
    EXPECT_EQ((*stream)->head().status, 407);
    bool challenged = false;
    for (const auto& [name, value] : (*stream)->head().fields) {
      if (name == "proxy-authenticate") challenged = value.find("Basic realm=") == 0;
    }
    EXPECT_TRUE(challenged);
    session->close();
  }());
}

// A plain connection is not an HTTP/2 stream: the handler refuses it and closes it.
TEST(Http2Handler, RefusesAStreamOfAnotherListener) {
  asio::io_context io;
  auto context = testing::direct_context();
  config::v1::ServiceConfig service;
  auto handler = make_http2_handler(service);
  ASSERT_TRUE(handler.ok());
  run_for(io, [&]() -> asio::awaitable<void> {
    auto [client, server] = co_await testing::tcp_pair();
    co_await (*handler)->handle(std::make_unique<TcpStream>(std::move(server)), *context);
    char byte;
    auto [error, n] = co_await client.async_read_some(asio::buffer(&byte, 1), kUseTuple);
    EXPECT_TRUE(error);
  }());
}

}  // namespace
}  // namespace strait::agent
