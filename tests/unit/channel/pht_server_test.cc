#include "agent/channel/pht_server.h"

#include "pht_test_support.h"

namespace strait::agent {
namespace {

using namespace pht_test;

TEST_F(PhtChannel, SpeaksGostWireFormat) {
  listen();
  std::vector<StreamPtr> accepted;
  accept_in_background(accepted);
  run_for(io_, [&]() -> asio::awaitable<void> {
    auto client = co_await RawClient::connect(*listener_);
    auto token = co_await client.authorize();
    EXPECT_TRUE(pht::is_xid_token(token)) << token;
    EXPECT_EQ(co_await client.push(token, "aGVsbG8=\n"), 200u);
    EXPECT_EQ(accepted.size(), 1u);
    if (accepted.empty()) co_return;
    EXPECT_EQ(co_await receive(*accepted[0], 5), "hello");
    co_await send(*accepted[0], "world");
    accepted[0]->close();
    co_await asio::async_write(client.socket(),
                               asio::buffer("GET /pull?token=" + token + " HTTP/1.1\r\nHost: test\r\n\r\n"), kUseTuple);
    std::string answer;
    auto [error, n] =
        co_await asio::async_read_until(client.socket(), asio::dynamic_buffer(answer), "\r\n0\r\n\r\n", kUseTuple);
    EXPECT_FALSE(error) << error.message();
    EXPECT_EQ(answer,
              "HTTP/1.1 200 OK\r\nX-Accel-Buffering: no\r\nTransfer-Encoding: chunked\r\n\r\n"
              "9\r\nd29ybGQ=\n\r\n0\r\n\r\n");
    // The tunnel ended once its end was pulled: its token is refused from now on.
    EXPECT_EQ(co_await client.push(token, "aGVsbG8=\n"), 403u);
  }());
}

TEST_F(PhtChannel, UnknownOrMalformedTokensAreRefused) {
  listen();
  std::vector<StreamPtr> accepted;
  accept_in_background(accepted);
  run_for(io_, [&]() -> asio::awaitable<void> {
    auto client = co_await RawClient::connect(*listener_);
    EXPECT_EQ(co_await client.push("not-a-token", "aGVsbG8=\n"), 403u);
    auto pull = co_await client.exchange("GET /pull?token=bogus HTTP/1.1\r\nHost: test\r\n\r\n");
    EXPECT_EQ(pull.result_int(), 403u);
    auto semicolon = co_await client.exchange("GET /pull?token=a;b HTTP/1.1\r\nHost: test\r\n\r\n");
    EXPECT_EQ(semicolon.result_int(), 400u);
    auto wrong_method = co_await client.exchange("GET /push?token=x HTTP/1.1\r\nHost: test\r\n\r\n");
    EXPECT_EQ(wrong_method.result_int(), 400u);
    auto other = co_await client.exchange("GET /elsewhere HTTP/1.1\r\nHost: test\r\n\r\n");
    EXPECT_EQ(other.result_int(), 404u);
    EXPECT_TRUE(accepted.empty()) << "a refused request opened a tunnel";
    // A GOST >= 3.2 client makes its own xid token: its first push opens the tunnel.
    EXPECT_EQ(co_await client.push("9m4e2mr0ui3e8a215n4g", "aGk=\n"), 200u);
    EXPECT_EQ(accepted.size(), 1u);
    if (accepted.empty()) co_return;
    EXPECT_EQ(co_await receive(*accepted[0], 2), "hi");
    EXPECT_EQ(co_await client.push("9m4e2mr0ui3e8a215n4g", "****\n"), 400u);  // bad base64 ends it
    EXPECT_EQ(co_await client.push("9m4e2mr0ui3e8a215n4g", "aGk=\n"), 403u);
    EXPECT_EQ(co_await read_error(*accepted[0]), boost::system::errc::bad_message);
  }());
}

TEST_F(PhtChannel, TunnelCapAnswers429) {
  listen("pht", {{"pht.maxSessions", "2"}});
  std::vector<StreamPtr> accepted;
  accept_in_background(accepted);
  run_for(io_, [&]() -> asio::awaitable<void> {
    auto client = co_await RawClient::connect(*listener_);
    auto first = co_await client.authorize();
    co_await client.authorize();
    auto refused = co_await client.exchange("GET /authorize HTTP/1.1\r\nHost: test\r\n\r\n");
    EXPECT_EQ(refused.result_int(), 429u);
    EXPECT_EQ(accepted.size(), 2u);
    // GOST's close (an empty push) makes room for one more.
    EXPECT_EQ(co_await client.push(first, ""), 200u);
    EXPECT_FALSE((co_await client.authorize()).empty());
  }());
}

TEST_F(PhtChannel, BuffersAndBodiesAreBounded) {
  listen("pht", {{"pht.bufferSize", "4096"}});
  std::vector<StreamPtr> accepted;
  accept_in_background(accepted);
  run_for(io_, [&]() -> asio::awaitable<void> {
    auto client = co_await RawClient::connect(*listener_);
    auto token = co_await client.authorize();
    EXPECT_EQ(accepted.size(), 1u);
    if (accepted.empty()) co_return;
    // Nobody pulls: the tunnel holds pht.bufferSize bytes of what its stream writes.
    const std::string big(10000, 'x');
    auto [error, n] = co_await accepted[0]->async_write_some(asio::buffer(big), kUseTuple);
    EXPECT_FALSE(error);
    EXPECT_EQ(n, 4096u) << "the tunnel took more than pht.bufferSize";
    auto too_big = co_await client.exchange("POST /push?token=" + token +
                                            " HTTP/1.1\r\nHost: test\r\nContent-Length: 2000000\r\n\r\n");
    EXPECT_EQ(too_big.result_int(), 413u);
  }());
}

TEST_F(PhtChannel, IdleTunnelEnds) {
  listen("pht", {{"pht.idleTimeout", "200ms"}});
  run_for(io_, [&]() -> asio::awaitable<void> {
    auto client = co_await RawClient::connect(*listener_);
    auto authorize = [&]() -> asio::awaitable<std::string> { co_return co_await client.authorize(); };
    auto accept = [&]() -> asio::awaitable<StreamPtr> {
      auto stream = co_await listener_->accept();
      co_return stream ? std::move(*stream) : nullptr;
    };
    auto [token, server] = co_await (authorize() && accept());
    EXPECT_TRUE(server);
    if (!server) co_return;
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(co_await read_error(*server), asio::error::timed_out);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
    EXPECT_EQ(co_await client.push(token, "aGk=\n"), 403u);
  }());
}

TEST_F(PhtChannel, MalformedRequestEndsOnlyItsConnection) {
  listen();
  run_for(io_, [&]() -> asio::awaitable<void> {
    auto pair = co_await connect_pair(*listener_, *dialer_);
    auto raw = co_await RawClient::connect(*listener_);
    co_await asio::async_write(raw.socket(), asio::buffer(std::string("NOT HTTP AT ALL\r\n\r\n")), kUseTuple);
    std::string answer;
    auto [error, n] = co_await asio::async_read(raw.socket(), asio::dynamic_buffer(answer), kUseTuple);
    EXPECT_EQ(error, asio::error::eof) << "the connection stayed open";
    EXPECT_TRUE(answer.starts_with("HTTP/1.1 400 ")) << answer;
    auto big = co_await RawClient::connect(*listener_);
    auto refused = co_await big.exchange("GET /pull HTTP/1.1\r\nX-Big: " + std::string(16 << 10, 'a') + "\r\n\r\n");
    EXPECT_EQ(refused.result_int(), 431u);
    co_await send(*pair.client, "still");
    EXPECT_EQ(co_await receive(*pair.server, 5), "still");
    co_await send(*pair.server, "here");
    EXPECT_EQ(co_await receive(*pair.client, 4), "here");
  }());
}

}  // namespace
}  // namespace strait::agent
