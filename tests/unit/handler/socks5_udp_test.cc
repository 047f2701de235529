#include "agent/handler/socks5_udp.h"

#include <gtest/gtest.h>

#include "agent/connector/socks5.h"
#include "agent/handler/socks5.h"
#include "support/proxy_harness.h"

namespace strait::agent {
namespace {

using asio::ip::udp;
using testing::bytes;
using testing::kUseTuple;
using testing::run_for;

class Socks5UdpTest : public ::testing::Test {
 protected:
  Socks5UdpTest()
      : echo_(testing::loopback_udp(io_)), context_(testing::direct_context()) {
    config::v1::ServiceConfig service;
    (*service.mutable_handler()->mutable_metadata()->mutable_fields())["udp"].set_string_value("true");
    handler_ = *make_socks5_handler(service);
    proxy_ = std::make_unique<testing::ServedHandler>(io_, *handler_, *context_);
  }

  template <typename Client>
  void run(Client client) {
    run_for(io_, [&]() -> asio::awaitable<void> {
      asio::co_spawn(io_, proxy_->serve(), asio::detached);
      asio::co_spawn(io_, testing::udp_echo(echo_), asio::detached);
      co_await client();
    }());
  }

  uint16_t proxy_port() const { return proxy_->port(); }

  asio::io_context io_;
  udp::socket echo_;
  std::shared_ptr<HandlerContext> context_;
  std::unique_ptr<Handler> handler_;
  std::unique_ptr<testing::ServedHandler> proxy_;  // last: ends its connections first
};

std::string datagram_to(const udp::endpoint& target, const std::string& payload, uint8_t fragment = 0) {
  std::string header = *socks5::encode_udp_header({target.address().to_string(), target.port()});
  header[2] = static_cast<char>(fragment);
  return header + payload;
}

TEST_F(Socks5UdpTest, AssociateRelaysDatagramsAndDropsFragments) {
  run([&]() -> asio::awaitable<void> {
    asio::ip::tcp::socket control(io_);
    co_await control.async_connect({asio::ip::make_address("127.0.0.1"), proxy_port()}, asio::use_awaitable);
    co_await asio::async_write(control, asio::buffer(bytes(5, 1, 0, 5, 3, 0, 1, 0, 0, 0, 0, 0, 0)), kUseTuple);
    std::string reply(12, '\0');
    co_await asio::async_read(control, asio::buffer(reply), kUseTuple);
    EXPECT_EQ(reply.substr(0, 4), bytes(5, 0, 5, 0));
    auto relay = socks5::parse_reply({reinterpret_cast<const uint8_t*>(reply.data()) + 2, 10});
    EXPECT_EQ(relay.value.address.host, "127.0.0.1");
    udp::endpoint relay_endpoint(asio::ip::make_address("127.0.0.1"), relay.value.address.port);

    udp::socket client(io_, udp::endpoint(udp::v4(), 0));
    auto target = echo_.local_endpoint();
    // The fragment is dropped: the first answer is the whole datagram sent after it.
    co_await client.async_send_to(asio::buffer(datagram_to(target, "fragment", 1)), relay_endpoint, kUseTuple);
    co_await client.async_send_to(asio::buffer(datagram_to(target, "whole")), relay_endpoint, kUseTuple);
    char answer[512];
    udp::endpoint from;
    auto [error, n] = co_await client.async_receive_from(asio::buffer(answer), from, kUseTuple);
    EXPECT_FALSE(error);
    EXPECT_EQ(std::string(answer, n), datagram_to(target, "whole")) << "answers carry the source in their header";
    EXPECT_EQ(from, relay_endpoint);
    control.close();
  });
}

TEST_F(Socks5UdpTest, UdpOverTcpThroughTheConnector) {
  run([&]() -> asio::awaitable<void> {
    config::v1::NodeConfig node;
    auto connector = make_socks5_connector(node);
    auto socket = co_await connect_tcp(io_.get_executor(), "127.0.0.1:" + std::to_string(proxy_port()),
                                       DialOptions{std::chrono::seconds(5)});
    EXPECT_TRUE(socket);
    auto stream = co_await (*connector)->connect(std::make_unique<TcpStream>(std::move(*socket)), Network::kUdp,
                                                 testing::address_of(echo_));
    EXPECT_TRUE(stream) << stream.error().message();
    if (!stream) co_return;
    EXPECT_TRUE((*stream)->is_datagram());
    for (std::string payload : {std::string("one"), testing::payload(60000), std::string("three")}) {
      co_await (*stream)->async_write_some(asio::buffer(payload), kUseTuple);
      std::string back(65536, '\0');
      auto [error, n] = co_await (*stream)->async_read_some(asio::buffer(back), kUseTuple);
      EXPECT_FALSE(error);
      back.resize(n);
      EXPECT_EQ(back, payload) << "one datagram in, the same datagram out";
    }
  });
}

TEST_F(Socks5UdpTest, UdpTunnelBindModeIsRefused) {
  run([&]() -> asio::awaitable<void> {
    auto reply = co_await testing::exchange_raw(proxy_port(), bytes(5, 1, 0, 5, 0xF3, 0, 1, 0, 0, 0, 0, 0x13, 0x88), 12);
    EXPECT_EQ(reply.substr(2, 2), bytes(5, socks5::reply::kCommandNotSupported));
  });
}

}  // namespace
}  // namespace strait::agent
