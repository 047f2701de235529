#include "agent/handler/ssu.h"

#include <gtest/gtest.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>

#include "agent/channel/udp.h"
#include "agent/connector/ssu.h"
#include "agent/protocol/shadowsocks.h"
#include "agent/protocol/socks5.h"
#include "support/proxy_harness.h"

namespace strait::agent {
namespace {

using asio::ip::udp;
using namespace asio::experimental::awaitable_operators;
using testing::kUseTuple;
using testing::run_for;

constexpr char kMethod[] = "chacha20-ietf-poly1305";

config::v1::AuthConfig auth(const std::string& password) {
  config::v1::AuthConfig config;
  config.set_username(kMethod);
  config.set_password(password);
  return config;
}

std::span<const uint8_t> bytes_of(const std::string& text) {
  return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

// An ssu service on a udp listener: every client session is served by the handler.
class SsuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config::v1::ServiceConfig service;
    *service.mutable_handler()->mutable_auth() = auth("secret");
    auto made = make_ssu_handler(service);
    ASSERT_TRUE(made.ok()) << made.status();
    handler = std::move(*made);
    auto opened = make_udp_listener_factory()->listen(io.get_executor(), {.address = common::HostPort{"127.0.0.1", 0}});
    ASSERT_TRUE(opened);
    listener = std::move(*opened);
    server = udp::endpoint(asio::ip::make_address("127.0.0.1"), listener->bound_address().port);
    asio::co_spawn(io, serve(), asio::detached);
    asio::co_spawn(io, testing::udp_echo(echo), asio::detached);
  }
  void TearDown() override {
    listener->close();
    echo.close();
    io.restart();
    io.run_for(std::chrono::milliseconds(200));
  }

  asio::awaitable<void> serve() {
    for (;;) {
      auto session = co_await listener->accept();
      if (!session) co_return;
      asio::co_spawn(io, handler->handle(std::move(*session), *context), asio::detached);
    }
  }

  std::string packet(const std::string& password, const std::string& payload) {
    auto method = *ss_wire::find_method(kMethod);
    std::string plain = *socks5::encode_address(*common::parse_host_port(testing::address_of(echo))) + payload;
    return ss_wire::seal_packet(method, ss_wire::password_to_key(password, 32), bytes_of(plain));
  }

  asio::io_context io;
  std::shared_ptr<HandlerContext> context = testing::direct_context();
  std::unique_ptr<Handler> handler;
  std::unique_ptr<Listener> listener;
  udp::endpoint server;
  udp::socket echo = testing::loopback_udp(io);
};

// The next datagram on `socket` within `wait`, if any.
asio::awaitable<std::optional<std::string>> receive(udp::socket& socket, std::chrono::milliseconds wait) {
  asio::steady_timer timer(socket.get_executor());
  timer.expires_after(wait);
  char buffer[2048];
  udp::endpoint from;
  auto outcome = co_await (socket.async_receive_from(asio::buffer(buffer), from, kUseTuple) || timer.async_wait(kUseTuple));
  if (outcome.index() != 0) co_return std::nullopt;
  auto [error, n] = std::get<0>(outcome);
  if (error) co_return std::nullopt;
  co_return std::string(buffer, n);
}

TEST_F(SsuTest, RelaysAPacketAndAnswersWithTheSourceAddress) {
  udp::socket client = testing::loopback_udp(io);
  std::string request = packet("secret", "ping");
  run_for(io, [&]() -> asio::awaitable<void> {
    co_await client.async_send_to(asio::buffer(request), server, kUseTuple);
    auto answer = co_await receive(client, std::chrono::seconds(3));
    EXPECT_TRUE(answer);
    if (!answer) co_return;
    auto method = *ss_wire::find_method(kMethod);
    auto plain = ss_wire::open_packet(method, ss_wire::password_to_key("secret", 32), bytes_of(*answer));
    EXPECT_TRUE(plain);
    if (!plain) co_return;
    auto source = socks5::parse_address(bytes_of(*plain));
    EXPECT_EQ(source.state, ParseState::kComplete);
    EXPECT_EQ(source.value.to_string(), testing::address_of(echo));
    EXPECT_EQ(plain->substr(source.size), "ping");
  }());
}

TEST_F(SsuTest, WrongPasswordAndJunkGetNoAnswer) {
  udp::socket client = testing::loopback_udp(io);
  std::string wrong = packet("wrong", "ping");
  std::string junk(80, '\x11');
  std::string good = packet("secret", "after");
  run_for(io, [&]() -> asio::awaitable<void> {
    co_await client.async_send_to(asio::buffer(wrong), server, kUseTuple);
    co_await client.async_send_to(asio::buffer(junk), server, kUseTuple);
    auto answer = co_await receive(client, std::chrono::milliseconds(300));
    EXPECT_FALSE(answer);
    // The same session still serves good packets.
    co_await client.async_send_to(asio::buffer(good), server, kUseTuple);
    answer = co_await receive(client, std::chrono::seconds(3));
    EXPECT_TRUE(answer);
  }());
}

TEST_F(SsuTest, ConnectorOverUdpDialerReachesTheTarget) {
  config::v1::NodeConfig node;
  *node.mutable_connector()->mutable_auth() = auth("secret");
  auto connector = make_ssu_connector(node);
  ASSERT_TRUE(connector.ok()) << connector.status();
  auto dialer = make_udp_dialer();
  const std::string server_address = "127.0.0.1:" + std::to_string(server.port());
  const std::string target = testing::address_of(echo);
  const DialOptions options;
  const std::string datagrams[] = {"one", "two-longer"};
  run_for(io, [&]() -> asio::awaitable<void> {
    auto tunnel = co_await dialer->dial(io.get_executor(), server_address, Network::kUdp, options);
    EXPECT_TRUE(tunnel);
    if (!tunnel) co_return;
    auto stream = co_await (*connector)->connect(std::move(*tunnel), Network::kUdp, target);
    EXPECT_TRUE(stream);
    if (!stream) co_return;
    for (const std::string& datagram : datagrams) {
      co_await (*stream)->async_write_some(asio::buffer(datagram), kUseTuple);
      char buffer[256];
      auto [error, n] = co_await (*stream)->async_read_some(asio::buffer(buffer), kUseTuple);
      EXPECT_FALSE(error) << error.message();
      EXPECT_EQ(std::string(buffer, n), datagram);
    }
    (*stream)->close();
  }());
}

TEST(SsuConnector, RefusesTcp) {
  config::v1::NodeConfig node;
  *node.mutable_connector()->mutable_auth() = auth("secret");
  auto connector = make_ssu_connector(node);
  ASSERT_TRUE(connector.ok());
  asio::io_context io;
  auto socket = testing::loopback_udp(io);
  auto dialer = make_udp_dialer();
  const std::string address = testing::address_of(socket);
  const DialOptions options;
  run_for(io, [&]() -> asio::awaitable<void> {
    auto tunnel = co_await dialer->dial(io.get_executor(), address, Network::kUdp, options);
    EXPECT_TRUE(tunnel);
    if (!tunnel) co_return;
    auto stream = co_await (*connector)->connect(std::move(*tunnel), Network::kTcp, address);
    EXPECT_FALSE(stream);
  }());
}

}  // namespace
}  // namespace strait::agent
