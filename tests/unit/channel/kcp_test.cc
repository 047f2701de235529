#include "agent/channel/kcp.h"

#include <gtest/gtest.h>

#include <boost/asio/ip/udp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>

#include "support/asio_test.h"
#include "unit/channel/kcp_test_support.h"

namespace strait::agent {
namespace {

using namespace asio::experimental::awaitable_operators;
using asio::ip::udp;
using testing::kUseTuple;
using testing::run_for;
using kcp_test::config_of;
using kcp_test::metadata;
using kcp_test::Pairs;

struct Channel {
  std::unique_ptr<Listener> listener;
  std::unique_ptr<Dialer> dialer;
  std::string address;
};

Channel kcp_channel(asio::io_context& io, const Pairs& values) {
  config::v1::ServiceConfig service;
  service.mutable_listener()->set_type("kcp");
  *service.mutable_listener()->mutable_metadata() = metadata(values);
  auto factory = make_kcp_listener_factory(service, config::v1::Config{});
  if (!factory.ok()) throw std::runtime_error(std::string(factory.status().message()));
  auto listener = (*factory)->listen(io.get_executor(), {.address = common::HostPort{"127.0.0.1", 0}});
  if (!listener) throw std::runtime_error(listener.error().message());
  config::v1::NodeConfig node;
  node.mutable_dialer()->set_type("kcp");
  *node.mutable_dialer()->mutable_metadata() = metadata(values);
  auto dialer = make_kcp_dialer(node);
  if (!dialer.ok()) throw std::runtime_error(std::string(dialer.status().message()));
  std::string address = (*listener)->bound_address().to_string();
  return {std::move(*listener), std::move(*dialer), address};
}

// Closes the channel and runs what that posts: streams and sessions end by completing
// operations that wait in user space (not in the reactor, which would free them anyway).
void shut(asio::io_context& io, Channel& channel) {
  channel.dialer.reset();
  channel.listener.reset();
  io.restart();
  io.poll();
}

// The server reads `size` bytes and answers with as many of its own.
asio::awaitable<bool> serve_one(Listener& listener, size_t size, unsigned seed) {
  auto accepted = co_await listener.accept();
  if (!accepted) co_return false;
  auto stream = co_await listener.handshake(std::move(*accepted));
  if (!stream) co_return false;
  std::string received(size, '\0');
  auto [read_error, n] = co_await asio::async_read(**stream, asio::buffer(received), kUseTuple);
  if (read_error || received != testing::payload(size, seed)) co_return false;
  const std::string answer = testing::payload(size, seed + 100);
  auto [write_error, m] = co_await asio::async_write(**stream, asio::buffer(answer), kUseTuple);
  if (write_error) co_return false;
  // The client closes once it has everything; then our read ends.
  char byte = 0;
  co_await (*stream)->async_read_some(asio::buffer(&byte, 1), kUseTuple);
  co_return true;
}

asio::awaitable<bool> dial_one(Channel& channel, size_t size, unsigned seed) {
  auto executor = co_await asio::this_coro::executor;
  auto stream = co_await channel.dialer->dial(executor, channel.address, Network::kTcp, DialOptions{});
  if (!stream) co_return false;
  const std::string data = testing::payload(size, seed);
  auto [write_error, n] = co_await asio::async_write(**stream, asio::buffer(data), kUseTuple);
  if (write_error) co_return false;
  std::string answer(size, '\0');
  auto [read_error, m] = co_await asio::async_read(**stream, asio::buffer(answer), kUseTuple);
  (*stream)->close();
  co_return !read_error && answer == testing::payload(size, seed + 100);
}

asio::awaitable<bool> serve_three(Listener& listener, size_t size) {
  auto [a, b, c] = co_await (serve_one(listener, size, 1) && serve_one(listener, size, 1) &&
                             serve_one(listener, size, 1));
  co_return a && b && c;
}

asio::awaitable<bool> dial_three(Channel& channel, size_t size) {
  auto [a, b, c] = co_await (dial_one(channel, size, 1) && dial_one(channel, size, 1) && dial_one(channel, size, 1));
  co_return a && b && c;
}

// Three smux streams on one KCP conversation, each `size` bytes each way, concurrently.
asio::awaitable<bool> three_streams(Channel& channel, size_t size) {
  auto [served, dialed] = co_await (serve_three(*channel.listener, size) && dial_three(channel, size));
  co_return served && dialed;
}

TEST(KcpChannel, SeveralStreamsMoveOneMebibyteEachWay) {
  asio::io_context io;
  auto channel = kcp_channel(io, {});
  EXPECT_TRUE(run_for(io, three_streams(channel, 1 << 20), std::chrono::seconds(60)));
  shut(io, channel);
}

class KcpCombination : public ::testing::TestWithParam<std::tuple<const char*, bool, bool>> {};

TEST_P(KcpCombination, CarriesStreams) {
  auto [crypt, compression, fec] = GetParam();
  Pairs values = {{"kcp.key", "combination"}, {"kcp.crypt", crypt}, {"kcp.nocomp", compression ? "false" : "true"}};
  if (!fec) values.push_back({"kcp.datashard", "0"});
  asio::io_context io;
  auto channel = kcp_channel(io, values);
  EXPECT_TRUE(run_for(io, three_streams(channel, 128 * 1024), std::chrono::seconds(30)));
  shut(io, channel);
}

INSTANTIATE_TEST_SUITE_P(KcpCryptCompressionFec, KcpCombination,
                         ::testing::Combine(::testing::Values("none", "aes", "salsa20", "null"), ::testing::Bool(),
                                            ::testing::Bool()),
                         [](const auto& combination) {
                           return std::string(std::get<0>(combination.param)) +
                                  (std::get<1>(combination.param) ? "_snappy" : "_plain") +
                                  (std::get<2>(combination.param) ? "_fec" : "_nofec");
                         });

// Conversations without smux, to count what the listener did.
struct Conversations {
  Conversations(asio::io_context& io, const KcpConfig& config) {
    auto listened = make_kcp_conversation_listener_factory(config)->listen(
        io.get_executor(), {.address = common::HostPort{"127.0.0.1", 0}});
    if (!listened) throw std::runtime_error(listened.error().message());
    listener = std::move(*listened);
    address = listener->bound_address().to_string();
  }
  const KcpListenerCounters& counters() const { return *kcp_listener_counters(*listener); }
  std::unique_ptr<Listener> listener;
  std::string address;
};

asio::awaitable<StreamPtr> dial_and_say(const KcpConfig& config, const std::string& address, const std::string& text) {
  auto executor = co_await asio::this_coro::executor;
  auto stream = co_await make_kcp_conversation_dialer(config)->dial(executor, address, Network::kTcp, DialOptions{});
  if (!stream) co_return nullptr;
  co_await asio::async_write(**stream, asio::buffer(text), kUseTuple);
  co_return std::move(*stream);
}

// Accepts a conversation and reads `size` bytes from it; the stream stays open in `kept`.
asio::awaitable<std::string> accept_and_read(Listener& listener, size_t size, std::vector<StreamPtr>& kept) {
  auto accepted = co_await listener.accept();
  if (!accepted) co_return "";
  std::string text(size, '\0');
  auto [error, n] = co_await asio::async_read(**accepted, asio::buffer(text), kUseTuple);
  kept.push_back(std::move(*accepted));
  co_return error ? "" : text;
}

TEST(KcpListener, GarbageAndWrongKeysOpenNoConversation) {
  asio::io_context io;
  auto config = config_of({{"kcp.key", "right"}, {"kcp.nocomp", "true"}});
  Conversations server(io, config);
  ASSERT_NE(kcp_listener_counters(*server.listener), nullptr);
  run_for(io, [&]() -> asio::awaitable<void> {
    udp::socket noise(io, udp::v4());
    auto target = udp::endpoint(asio::ip::make_address("127.0.0.1"), server.listener->bound_address().port);
    for (size_t size : {1u, 24u, 100u, 1400u, 1600u}) noise.send_to(asio::buffer(testing::payload(size, 5)), target);
    const KcpConfig wrong_key = config_of({{"kcp.key", "wrong"}, {"kcp.nocomp", "true"}});
    const KcpConfig no_crypt = config_of({{"kcp.crypt", "null"}, {"kcp.nocomp", "true"}});
    const std::string x = "x", y = "y", hello = "hello";
    auto wrong = co_await dial_and_say(wrong_key, server.address, x);
    auto plain = co_await dial_and_say(no_crypt, server.address, y);
    // Datagrams reach the one server socket in order: once this conversation is served,
    // everything above has been looked at.
    auto right = co_await dial_and_say(config, server.address, hello);
    std::vector<StreamPtr> kept;
    std::string said = co_await accept_and_read(*server.listener, 5, kept);
    EXPECT_EQ(said, "hello");
    EXPECT_EQ(server.counters().sessions_opened, 1u);
    EXPECT_EQ(server.counters().sessions_open, 1u);
  }());
  EXPECT_GE(server.counters().garbage, 6u);  // four noise datagrams (one was too long) and the two dialers'
}

TEST(KcpListener, SessionCapHolds) {
  asio::io_context io;
  auto config = config_of({{"kcp.maxSessions", "2"}, {"kcp.nocomp", "true"}});
  Conversations server(io, config);
  run_for(io, [&]() -> asio::awaitable<void> {
    std::vector<StreamPtr> kept;
    const std::string one = "1", two = "2", three = "3";
    auto first = co_await dial_and_say(config, server.address, one);
    std::string said_first = co_await accept_and_read(*server.listener, 1, kept);
    EXPECT_EQ(said_first, "1");
    auto second = co_await dial_and_say(config, server.address, two);
    std::string said_second = co_await accept_and_read(*server.listener, 1, kept);
    EXPECT_EQ(said_second, "2");
    auto third = co_await dial_and_say(config, server.address, three);
    // The first conversation's next datagram reaches the server socket after the third's.
    const std::string mark_text = "!";
    co_await asio::async_write(*first, asio::buffer(mark_text), kUseTuple);
    char mark = 0;
    co_await asio::async_read(*kept.front(), asio::buffer(&mark, 1), kUseTuple);
    EXPECT_EQ(mark, '!');
    EXPECT_EQ(server.counters().sessions_opened, 2u);
    EXPECT_EQ(server.counters().sessions_open, 2u);
    EXPECT_GE(server.counters().over_capacity, 1u);
  }());
}

}  // namespace
}  // namespace strait::agent
