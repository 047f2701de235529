#include "agent/connector/socks5_udp.h"

#include <gtest/gtest.h>

#include "agent/protocol/socks5.h"
#include "agent/protocol/proxy_error.h"
#include "support/proxy_harness.h"

namespace strait::agent {
namespace {

using asio::ip::udp;
using testing::kUseTuple;
using testing::run_for;

std::span<const uint8_t> bytes_of(const std::string& text) {
  return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

TEST(UdpTunClientStream, FramesEachDatagram) {
  asio::io_context io;
  run_for(io, [&]() -> asio::awaitable<void> {
    auto [client, server] = co_await testing::tcp_pair();
    auto stream = make_udp_tun_client_stream(std::make_unique<TcpStream>(std::move(client)), {"10.0.0.53", 53});
    co_await stream->async_write_some(asio::buffer(std::string("query")), kUseTuple);
    std::string expected = *socks5::encode_udp_tun_frame({"10.0.0.53", 53}, bytes_of("query"));
    std::string sent(expected.size(), '\0');
    co_await asio::async_read(server, asio::buffer(sent), kUseTuple);
    EXPECT_EQ(sent, expected);
    // Two answers in one TCP segment, the second split: read back as two datagrams.
    std::string answers = *socks5::encode_udp_tun_frame({"10.0.0.53", 53}, bytes_of("answer-1")) +
                          *socks5::encode_udp_tun_frame({"10.0.0.53", 53}, bytes_of("answer-2"));
    co_await asio::async_write(server, asio::buffer(answers.substr(0, answers.size() - 3)), kUseTuple);
    char buffer[64];
    auto [error, n] = co_await stream->async_read_some(asio::buffer(buffer), kUseTuple);
    EXPECT_EQ(std::string(buffer, n), "answer-1");
    co_await asio::async_write(server, asio::buffer(answers.substr(answers.size() - 3)), kUseTuple);
    std::tie(error, n) = co_await stream->async_read_some(asio::buffer(buffer), kUseTuple);
    EXPECT_EQ(std::string(buffer, n), "answer-2");
    // A frame that breaks the framing ends the stream with an error.
    co_await asio::async_write(server, asio::buffer(std::string(3, '\0') + "xxxxxxx"), kUseTuple);
    std::tie(error, n) = co_await stream->async_read_some(asio::buffer(buffer), kUseTuple);
    EXPECT_EQ(error, make_error_code(ProxyError::kBadResponse));
  }());
}

TEST(UdpAssociateClientStream, SendsHeaderedDatagramsToTheRelay) {
  asio::io_context io;
  auto relay = testing::loopback_udp(io);
  run_for(io, [&]() -> asio::awaitable<void> {
    auto [control, server_control] = co_await testing::tcp_pair();
    // An unspecified relay address means the host the control connection reached.
    // Named, not braced temporaries: GCC 12 destroys braced temporaries of a co_await twice.
    common::HostPort relay_address{"0.0.0.0", relay.local_endpoint().port()};
    common::HostPort target{"target.example", 53};
    auto stream = co_await make_udp_associate_client_stream(std::make_unique<TcpStream>(std::move(control)),
                                                            relay_address, target, 4096);
    EXPECT_TRUE(stream);
    co_await (*stream)->async_write_some(asio::buffer(std::string("ping")), kUseTuple);
    char datagram[512];
    udp::endpoint from;
    auto [error, n] = co_await relay.async_receive_from(asio::buffer(datagram), from, kUseTuple);
    EXPECT_EQ(std::string(datagram, n), *socks5::encode_udp_header({"target.example", 53}) + "ping");
    // A malformed datagram is skipped; the next good one is returned without its header.
    co_await relay.async_send_to(asio::buffer(std::string("\x01\x02", 2)), from, kUseTuple);
    std::string answer = *socks5::encode_udp_header({"10.0.0.1", 53}) + "pong";
    co_await relay.async_send_to(asio::buffer(answer), from, kUseTuple);
    char buffer[64];
    std::tie(error, n) = co_await (*stream)->async_read_some(asio::buffer(buffer), kUseTuple);
    EXPECT_EQ(std::string(buffer, n), "pong");
  }());
}

}  // namespace
}  // namespace strait::agent
