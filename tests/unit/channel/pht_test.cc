#include "agent/channel/pht.h"

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

#include "agent/protocol/pht.h"
#include "support/asio_test.h"

namespace strait::agent {
namespace {

using namespace asio::experimental::awaitable_operators;
using testing::kUseTuple;
using testing::run_for;
namespace http = boost::beast::http;

// ---- the wire codec ----

TEST(PhtCodec, LinesRoundTripEverySize) {
  for (size_t size = 0; size < 70; ++size) {
    std::string data = testing::payload(size, static_cast<unsigned>(size) + 7);
    std::string line;
    pht::append_line(line, data);
    ASSERT_EQ(line.size(), pht::base64_size(size) + 1);
    ASSERT_EQ(line.back(), '\n');
    std::string decoded;
    ASSERT_TRUE(pht::decode_base64(line, decoded)) << line;
    EXPECT_EQ(decoded, data);
  }
  std::string line;
  pht::append_line(line, "hello");
  EXPECT_EQ(line, "aGVsbG8=\n");
}

TEST(PhtCodec, DecodesAsGoStdEncoding) {
  auto decode = [](std::string_view text) -> std::optional<std::string> {
    std::string out;
    if (!pht::decode_base64(text, out)) return std::nullopt;
    return out;
  };
  EXPECT_EQ(decode("Zm9v"), "foo");
  EXPECT_EQ(decode("Zm8="), "fo");
  EXPECT_EQ(decode("Zg=="), "f");
  EXPECT_EQ(decode("Zm9v\r\nYmFy"), "foobar");  // Go skips CR and LF anywhere
  EXPECT_EQ(decode("Zh=="), "f");               // non-zero trailing bits pass (not Strict)
  EXPECT_EQ(decode(""), "");
  EXPECT_EQ(decode("Zg"), std::nullopt);  // padding is required
  EXPECT_EQ(decode("Zg="), std::nullopt);
  EXPECT_EQ(decode("Z==="), std::nullopt);
  EXPECT_EQ(decode("Zg==Zg=="), std::nullopt);  // nothing after padding
  EXPECT_EQ(decode("Zm9-"), std::nullopt);      // URL alphabet is not standard
  EXPECT_EQ(decode("Zm 9v"), std::nullopt);
}

TEST(PhtCodec, PushBodyIsReadAsGostServerReadsIt) {
  EXPECT_EQ(pht::parse_push_body("").kind, pht::PushKind::kClose);      // GOST's close
  EXPECT_EQ(pht::parse_push_body("\n").kind, pht::PushKind::kClose);    // an empty line closes
  EXPECT_EQ(pht::parse_push_body("Zm9v").kind, pht::PushKind::kClose);  // no line at all
  auto data = pht::parse_push_body("Zm9v\nignored");
  EXPECT_EQ(data.kind, pht::PushKind::kData);
  EXPECT_EQ(data.data, "foo");
  EXPECT_EQ(pht::parse_push_body("!!!!\n").kind, pht::PushKind::kInvalid);
}

TEST(PhtCodec, PullDecoderSplitsLinesAcrossReads) {
  pht::PullDecoder decoder;
  std::string out;
  std::string body = "\nZm9v\n\r\nYmFy\r\n\nYg==";
  for (char c : body) ASSERT_TRUE(decoder.feed(std::string_view(&c, 1), out));
  EXPECT_EQ(out, "foobar");
  EXPECT_EQ(decoder.lines(), 5u);
  EXPECT_FALSE(decoder.ended_on_data()) << "a keepalive line counted as data";
  ASSERT_TRUE(decoder.finish(out));  // a last line without its newline counts
  EXPECT_EQ(out, "foobarb");
  EXPECT_EQ(decoder.lines(), 6u);
  EXPECT_TRUE(decoder.ended_on_data());
  pht::PullDecoder strict(8);
  EXPECT_FALSE(strict.feed("Zm9vZm9vZm9v\n", out)) << "a line over the limit passed";
  pht::PullDecoder bad;
  EXPECT_FALSE(bad.feed("@@@@\n", out));
  EXPECT_FALSE(bad.feed("Zm9v\n", out)) << "a decoder went on after a bad line";
}

TEST(PhtCodec, TokenAndPathOfTargetFollowGoForms) {
  EXPECT_EQ(pht::token_of_target("/push?token=abc"), "abc");
  EXPECT_EQ(pht::token_of_target("/push"), "");
  EXPECT_EQ(pht::token_of_target("/push?a=1&token=x%2By&token=second"), "x+y");
  EXPECT_EQ(pht::token_of_target("/pull?token=a+b"), "a b");
  EXPECT_EQ(pht::token_of_target("/pull?token=a;b=c"), std::nullopt);  // Go ≥ 1.17 refuses ';'
  EXPECT_EQ(pht::token_of_target("/pull?token=%zz"), std::nullopt);
  EXPECT_EQ(pht::token_of_target("/pull?token=%4"), std::nullopt);
  EXPECT_EQ(pht::path_of_target("/push?token=abc"), "/push");
  EXPECT_EQ(pht::path_of_target("HTTP://example.com/pull?x"), "/pull");
  EXPECT_EQ(pht::path_of_target("http://example.com"), "/");
}

TEST(PhtCodec, TokensLookLikeXids) {
  std::array<uint8_t, pht::kTokenSize> random{};
  for (size_t i = 0; i < random.size(); ++i) random[i] = static_cast<uint8_t>(i * 37 + 255);
  std::string token = pht::token_from_random(random);
  EXPECT_TRUE(pht::is_xid_token(token)) << token;
  EXPECT_TRUE(pht::is_xid_token("9m4e2mr0ui3e8a215n4g"));  // an xid from rs/xid's tests
  EXPECT_FALSE(pht::is_xid_token("9m4e2mr0ui3e8a215n4w"));
  EXPECT_FALSE(pht::is_xid_token("short"));
  EXPECT_EQ(pht::token_of_authorize_body("token=" + token), token);
  EXPECT_EQ(pht::token_of_authorize_body("token="), std::nullopt);
  EXPECT_EQ(pht::token_of_authorize_body("token=a b"), std::nullopt);
  EXPECT_EQ(pht::token_of_authorize_body("nope"), std::nullopt);
}

TEST(PhtCodec, ByteQueueReadsAcrossPieces) {
  pht::ByteQueue queue;
  queue.append("abc");
  queue.append("");
  queue.append("defg");
  EXPECT_EQ(queue.size(), 7u);
  char two[2];
  EXPECT_EQ(queue.read(two), 2u);
  EXPECT_EQ(std::string(two, 2), "ab");
  EXPECT_EQ(queue.take(4), "cdef");
  EXPECT_EQ(queue.take(10), "g");
  EXPECT_TRUE(queue.empty());
}

// ---- listener and dialer over loopback ----

using Fields = std::vector<std::pair<std::string, std::string>>;

config::v1::ServiceConfig pht_service(const std::string& type, const Fields& metadata = {}) {
  config::v1::ServiceConfig service;
  service.set_name("pht");
  service.mutable_listener()->set_type(type);
  for (const auto& [key, value] : metadata) {
    (*service.mutable_listener()->mutable_metadata()->mutable_fields())[key].set_string_value(value);
  }
  return service;
}

config::v1::NodeConfig pht_node(const std::string& type) {
  config::v1::NodeConfig node;
  node.set_name("node");
  node.mutable_dialer()->set_type(type);
  return node;
}

struct Pair {
  StreamPtr client;
  StreamPtr server;
};

asio::awaitable<Pair> connect_pair(Listener& listener, Dialer& dialer) {
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

asio::awaitable<bool> send(Stream& stream, const std::string& data) {
  auto [error, n] = co_await asio::async_write(stream, asio::buffer(data), kUseTuple);
  EXPECT_FALSE(error) << error.message();
  co_return !error;
}

asio::awaitable<std::string> receive(Stream& stream, size_t size) {
  std::string data(size, '\0');
  auto [error, n] = co_await asio::async_read(stream, asio::buffer(data), kUseTuple);
  EXPECT_FALSE(error) << error.message();
  data.resize(n);
  co_return data;
}

asio::awaitable<error_code> read_error(Stream& stream) {
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

TEST_F(PhtChannel, CarriesOneMebibyteEachWay) {
  listen();
  run_for(io_, [&]() -> asio::awaitable<void> {
    auto pair = co_await connect_pair(*listener_, *dialer_);
    const std::string up = testing::payload(1 << 20, 1);
    const std::string down = testing::payload(1 << 20, 2);
    auto [sent_up, got_up, sent_down, got_down] =
        co_await (send(*pair.client, up) && receive(*pair.server, up.size()) && send(*pair.server, down) &&
                  receive(*pair.client, down.size()));
    EXPECT_TRUE(sent_up && sent_down);
    EXPECT_TRUE(got_up == up) << "client to server bytes differ";
    EXPECT_TRUE(got_down == down) << "server to client bytes differ";
  }());
}

TEST_F(PhtChannel, PhtsCarriesBytesOverTls) {
  listen("phts");
  run_for(io_, [&]() -> asio::awaitable<void> {
    auto pair = co_await connect_pair(*listener_, *dialer_);
    const std::string up = testing::payload(200 << 10, 3);
    auto [sent, got] = co_await (send(*pair.client, up) && receive(*pair.server, up.size()));
    EXPECT_TRUE(got == up);
    co_await send(*pair.server, "pong");
    EXPECT_EQ(co_await receive(*pair.client, 4), "pong");
  }());
}

TEST_F(PhtChannel, SeveralTunnelsAtOnceKeepTheirBytesApart) {
  listen();
  constexpr int kTunnels = 6;
  run_for(io_, [&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    std::vector<Pair> pairs;
    for (int i = 0; i < kTunnels; ++i) pairs.push_back(co_await connect_pair(*listener_, *dialer_));
    int finished = 0;
    asio::steady_timer all_done(executor, asio::steady_timer::time_point::max());
    for (int i = 0; i < kTunnels; ++i) {
      // Each server end echoes what its client sends; the clients run at once.
      auto echo_and_check = [](Pair& pair, std::string data) -> asio::awaitable<void> {
        auto [sent, echoed, back] = co_await (send(*pair.client, data) && [&]() -> asio::awaitable<bool> {
          auto got = co_await receive(*pair.server, data.size());
          co_return co_await send(*pair.server, got);
        }() && receive(*pair.client, data.size()));
        EXPECT_TRUE(back == data) << "a tunnel's echo differs";
      };
      asio::co_spawn(executor, echo_and_check(pairs[i], testing::payload(96 << 10, 10 + i)), [&](std::exception_ptr) {
        if (++finished == kTunnels) all_done.cancel();
      });
    }
    co_await all_done.async_wait(kUseTuple);
    EXPECT_EQ(finished, kTunnels);
  }());
}

TEST_F(PhtChannel, CloseOfEitherEndIsTheOtherEndsEof) {
  listen();
  run_for(io_, [&]() -> asio::awaitable<void> {
    auto first = co_await connect_pair(*listener_, *dialer_);
    co_await send(*first.server, "last words");
    first.server->close();
    EXPECT_EQ(co_await receive(*first.client, 10), "last words");
    EXPECT_EQ(co_await read_error(*first.client), asio::error::eof);
    auto second = co_await connect_pair(*listener_, *dialer_);
    co_await send(*second.client, "bye");
    EXPECT_EQ(co_await receive(*second.server, 3), "bye");
    second.client->close();
    EXPECT_EQ(co_await read_error(*second.server), asio::error::eof);
  }());
}

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

// A client's requests may reach any worker (SO_REUSEPORT): here the tunnel opens on one
// worker's listener, and its push and pull come through another worker's, on its own thread.
TEST(PhtWorkers, TunnelSpansWorkers) {
  auto factory = make_pht_listener_factory(pht_service("pht"), config::v1::Config{});
  ASSERT_TRUE(factory.ok()) << factory.status();
  asio::io_context home_io;
  asio::io_context other_io;
  auto home = (*factory)->listen(home_io.get_executor(), {.address = common::HostPort{"127.0.0.1", 0}});
  auto other = (*factory)->listen(other_io.get_executor(), {.address = common::HostPort{"127.0.0.1", 0}});
  ASSERT_TRUE(home && other);
  auto guard = asio::make_work_guard(other_io);
  asio::co_spawn(
      other_io, [](Listener& listener) -> asio::awaitable<void> { co_await listener.accept(); }(**other),
      asio::detached);
  std::thread other_thread([&] { other_io.run(); });
  run_for(home_io, [&]() -> asio::awaitable<void> {
    auto opener = co_await RawClient::connect(**home);
    auto authorize = [&]() -> asio::awaitable<std::string> { co_return co_await opener.authorize(); };
    auto accept = [&]() -> asio::awaitable<StreamPtr> {
      auto stream = co_await (*home)->accept();
      co_return stream ? std::move(*stream) : nullptr;
    };
    auto [token, server] = co_await (authorize() && accept());
    EXPECT_TRUE(server);
    if (!server) co_return;
    auto far = co_await RawClient::connect(**other);
    const std::string up = testing::payload(100 << 10, 5);
    std::string body;
    pht::append_line(body, up);
    auto [status, got] = co_await (far.push(token, body) && receive(*server, up.size()));
    EXPECT_EQ(status, 200u);
    EXPECT_TRUE(got == up) << "pushed bytes differ";
    co_await send(*server, "from home");
    server->close();
    co_await asio::async_write(far.socket(),
                               asio::buffer("GET /pull?token=" + token + " HTTP/1.1\r\nHost: test\r\n\r\n"), kUseTuple);
    std::string answer;
    auto [error, n] =
        co_await asio::async_read_until(far.socket(), asio::dynamic_buffer(answer), "\r\n0\r\n\r\n", kUseTuple);
    EXPECT_FALSE(error) << error.message();
    EXPECT_NE(answer.find("\r\nZnJvbSBob21l\n\r\n"), std::string::npos) << answer;
  }());
  guard.reset();
  other_io.stop();
  other_thread.join();
}

TEST(PhtOptions, BadValuesAreConfigErrorsNamingTheKey) {
  auto service = pht_service("pht", {{"pushPath", "push"}});
  auto factory = make_pht_listener_factory(service, config::v1::Config{});
  ASSERT_FALSE(factory.ok());
  EXPECT_NE(factory.status().message().find("pushPath"), std::string::npos) << factory.status();
  auto sessions = make_pht_listener_factory(pht_service("pht", {{"pht.maxSessions", "0"}}), config::v1::Config{});
  ASSERT_FALSE(sessions.ok());
  EXPECT_NE(sessions.status().message().find("pht.maxSessions"), std::string::npos) << sessions.status();
  auto node = pht_node("pht");
  (*node.mutable_dialer()->mutable_metadata()->mutable_fields())["pullPath"].set_string_value("/pull me");
  auto dialer = make_pht_dialer(node);
  ASSERT_FALSE(dialer.ok());
  EXPECT_NE(dialer.status().message().find("pullPath"), std::string::npos) << dialer.status();
}

}  // namespace
}  // namespace strait::agent
