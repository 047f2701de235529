#include "agent/handler/relay_bind.h"

#include <gtest/gtest.h>

#include "agent/channel/smux_session.h"
#include "agent/handler/relay.h"
#include "agent/protocol/relay.h"
#include "agent/protocol/socks5.h"
#include "agent/wire/message_io.h"
#include "support/proxy_harness.h"
#include "support/stream_io.h"

namespace strait::agent {
namespace {

// ASSERT_* returns, which a coroutine cannot: this ends the coroutine instead.
#define CO_REQUIRE(condition)                           \
  if (!(condition)) {                                    \
    ADD_FAILURE() << "required: " << #condition;         \
    co_return;                                           \
  }

using testing::kUseTuple;
using testing::read_exactly;
using testing::run_for;
using asio::ip::tcp;
using asio::ip::udp;

std::unique_ptr<Handler> relay_handler(bool bind) {
  config::v1::ServiceConfig service;
  auto& fields = *service.mutable_handler()->mutable_metadata()->mutable_fields();
  if (bind) fields["bind"].set_string_value("true");
  fields["mux.keepaliveDisabled"].set_string_value("true");
  auto handler = make_relay_handler(service);
  EXPECT_TRUE(handler.ok()) << handler.status();
  return std::move(*handler);
}

std::string bind_request(uint8_t cmd, std::string host, uint16_t port) {
  common::HostPort address{std::move(host), port};
  return *relay_wire::encode_request(relay_wire::Request{.cmd = cmd, .address = address});
}

// A connection to the relay handler, as GOST's relay connector holds it during a BIND.
struct Control {
  StreamPtr stream;
  std::string buffered;
};

asio::awaitable<Control> connect(uint16_t port) {
  auto executor = co_await asio::this_coro::executor;
  tcp::socket socket(executor);
  co_await socket.async_connect({asio::ip::make_address("127.0.0.1"), port}, asio::use_awaitable);
  co_return Control{std::make_unique<TcpStream>(std::move(socket)), {}};
}

asio::awaitable<relay_wire::Response> read_response(Stream& stream, std::string& buffered) {
  auto response = co_await read_message(stream, buffered, relay_wire::parse_response);
  EXPECT_TRUE(response.has_value());
  if (!response) co_return relay_wire::Response{.status = 0xFF};
  EXPECT_EQ(response->state, ParseState::kComplete) << response->reason;
  co_return response->value;
}

asio::awaitable<std::string> read_exactly(tcp::socket& socket, size_t size) {
  std::string bytes(size, '\0');
  auto [error, n] = co_await asio::async_read(socket, asio::buffer(bytes), kUseTuple);
  bytes.resize(n);
  co_return bytes;
}

struct TunDatagram {
  common::HostPort address;
  std::string payload;
};

// One UDP tun frame, with its payload (read_message would drop the payload with the frame).
asio::awaitable<TunDatagram> read_tun_frame(Stream& stream, std::string& buffered) {
  for (;;) {
    auto frame = socks5::parse_udp_tun_frame(std::span(reinterpret_cast<const uint8_t*>(buffered.data()), buffered.size()));
    EXPECT_NE(frame.state, ParseState::kInvalid) << frame.reason;
    if (frame.state == ParseState::kInvalid) co_return TunDatagram{};
    if (frame.state == ParseState::kComplete) {
      TunDatagram datagram{frame.value.address, buffered.substr(frame.value.payload_offset, frame.value.payload_size)};
      buffered.erase(0, frame.size);
      co_return datagram;
    }
    char chunk[4096];
    auto [error, n] = co_await stream.async_read_some(asio::buffer(chunk), kUseTuple);
    EXPECT_FALSE(error) << error.message();
    if (error) co_return TunDatagram{};
    buffered.append(chunk, n);
  }
}

// What GOST's `rtcp` service does through a relay hop: BIND, then serve the smux session the
// relay node opens streams on, one per connection to the bound port, each led by a relay
// response that names the connecting peer.
TEST(RelayBind, TcpCarriesEachInboundConnectionOnItsOwnStream) {
  asio::io_context io;
  auto context = testing::direct_context();
  auto handler = relay_handler(true);
  testing::ServedHandler relay_node(io, *handler, *context);
  run_for(io, [&]() -> asio::awaitable<void> {
    asio::co_spawn(io, relay_node.serve(), asio::detached);
    auto control = co_await connect(relay_node.port());
    co_await write_message(*control.stream, bind_request(relay_wire::command::kBind, "127.0.0.1", 0));
    auto bound = co_await read_response(*control.stream, control.buffered);
    CO_REQUIRE(bound.status == relay_wire::status::kOk);
    CO_REQUIRE(bound.address);
    EXPECT_EQ(bound.address->host, "127.0.0.1");
    CO_REQUIRE(bound.address->port != 0);
    CO_REQUIRE(control.buffered.empty());
    smux::Config mux;
    mux.keepalive_disabled = true;
    auto session = SmuxSession::start(std::move(control.stream), /*client=*/false, mux);

    tcp::endpoint bound_endpoint(asio::ip::make_address("127.0.0.1"), bound.address->port);
    for (int round = 0; round < 2; ++round) {
      tcp::socket peer(io);
      co_await peer.async_connect(bound_endpoint, asio::use_awaitable);
      auto stream = co_await session->accept_stream();
      CO_REQUIRE(stream);
      std::string buffered;
      auto named = co_await read_response(**stream, buffered);
      EXPECT_EQ(named.status, relay_wire::status::kOk);
      CO_REQUIRE(named.address);
      EXPECT_EQ(named.address->host, "127.0.0.1");
      EXPECT_EQ(named.address->port, peer.local_endpoint().port());

      std::string hello = "hello from peer " + std::to_string(round);
      co_await asio::async_write(peer, asio::buffer(hello), kUseTuple);
      EXPECT_EQ(buffered + co_await read_exactly(**stream, hello.size() - buffered.size()), hello);
      std::string answer = "answer " + std::to_string(round);
      co_await write_message(**stream, answer);
      EXPECT_EQ(co_await read_exactly(peer, answer.size()), answer);
      // The peer's FIN ends the stream's read side.
      peer.shutdown(tcp::socket::shutdown_send);
      char byte;
      auto [eof, n] = co_await (*stream)->async_read_some(asio::buffer(&byte, 1), kUseTuple);
      EXPECT_EQ(eof, asio::error::eof);
    }

    // When the client's session ends, the relay node stops listening.
    session->close();
    for (;;) {
      tcp::socket late(io);
      auto [error] = co_await late.async_connect(bound_endpoint, kUseTuple);
      if (error) break;
      asio::steady_timer pause(io, std::chrono::milliseconds(10));
      co_await pause.async_wait(kUseTuple);
    }
  }());
}

// The relay node's whole answer to a BIND request that it refuses.
std::string refusal_of_bind(bool bind_enabled, const std::string& host, uint16_t port) {
  asio::io_context io;
  auto context = testing::direct_context();
  auto handler = relay_handler(bind_enabled);
  testing::ServedHandler relay_node(io, *handler, *context);
  return run_for(io, [&]() -> asio::awaitable<std::string> {
    asio::co_spawn(io, relay_node.serve(), asio::detached);
    // More than a header is asked for: a refusal is the header alone, then the close.
    co_return co_await testing::exchange_raw(relay_node.port(), bind_request(relay_wire::command::kBind, host, port),
                                             relay_wire::kHeaderSize + 1);
  }());
}

TEST(RelayBind, RefusalsCarryGostsStatusAndClose) {
  EXPECT_EQ(refusal_of_bind(false, "127.0.0.1", 0), testing::bytes(1, relay_wire::status::kForbidden, 0, 0))
      << "BIND taken without the bind option";
  EXPECT_EQ(refusal_of_bind(true, "localhost", 0), testing::bytes(1, relay_wire::status::kBadRequest, 0, 0))
      << "a name taken instead of an address";
  asio::io_context io;
  auto taken = testing::loopback_acceptor(io);
  EXPECT_EQ(refusal_of_bind(true, "127.0.0.1", taken.local_endpoint().port()),
            testing::bytes(1, relay_wire::status::kServiceUnavailable, 0, 0))
      << "a port in use";
}

// What GOST's `rudp` service does through a relay hop: datagrams to and from the bound UDP
// port travel on the connection in UDP tun frames.
TEST(RelayBind, UdpCarriesDatagramsInTunFrames) {
  asio::io_context io;
  auto context = testing::direct_context();
  auto handler = relay_handler(true);
  testing::ServedHandler relay_node(io, *handler, *context);
  auto echo = testing::loopback_udp(io);
  run_for(io, [&]() -> asio::awaitable<void> {
    asio::co_spawn(io, relay_node.serve(), asio::detached);
    asio::co_spawn(io, testing::udp_echo(echo), asio::detached);
    auto control = co_await connect(relay_node.port());
    co_await write_message(*control.stream, bind_request(relay_wire::command::kBind | relay_wire::command::kUdpFlag,
                                                         "127.0.0.1", 0));
    auto bound = co_await read_response(*control.stream, control.buffered);
    CO_REQUIRE(bound.status == relay_wire::status::kOk);
    CO_REQUIRE(bound.address);
    CO_REQUIRE(bound.address->port != 0);

    // Out through the bound socket to the echo, and the echo's answer back in a frame.
    common::HostPort echo_address{"127.0.0.1", echo.local_endpoint().port()};
    std::string ping = "ping over the tunnel";
    auto frame = socks5::encode_udp_tun_frame(
        echo_address, std::span(reinterpret_cast<const uint8_t*>(ping.data()), ping.size()));
    CO_REQUIRE(frame.ok());
    co_await write_message(*control.stream, *frame);
    auto answer = co_await read_tun_frame(*control.stream, control.buffered);
    EXPECT_EQ(answer.address, echo_address);
    EXPECT_EQ(answer.payload, ping);

    // A datagram from anyone to the bound port comes in a frame naming its source.
    auto stranger = testing::loopback_udp(io);
    std::string knock = "knock";
    co_await stranger.async_send_to(asio::buffer(knock),
                                    udp::endpoint(asio::ip::make_address("127.0.0.1"), bound.address->port),
                                    kUseTuple);
    auto incoming = co_await read_tun_frame(*control.stream, control.buffered);
    EXPECT_EQ(incoming.address, (common::HostPort{"127.0.0.1", stranger.local_endpoint().port()}));
    EXPECT_EQ(incoming.payload, knock);
  }());
}

}  // namespace
}  // namespace strait::agent
