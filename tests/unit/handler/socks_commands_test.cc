#include "agent/handler/socks_commands.h"

#include <gtest/gtest.h>

#include "agent/handler/socks5.h"
#include "agent/protocol/socks5.h"
#include "support/proxy_harness.h"

namespace strait::agent {
namespace {

using testing::bytes;
using testing::kUseTuple;
using testing::run_for;

socks5::Reply read_reply(const std::string& bytes) {
  auto parsed = socks5::parse_reply({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()});
  EXPECT_EQ(parsed.state, ParseState::kComplete);
  return parsed.value;
}

// SOCKS5 BIND end to end: the first reply names the listening port, a peer connects there,
// the second reply names the peer, then bytes flow both ways.
TEST(SocksBind, AcceptsOnePeerAndRelays) {
  asio::io_context io;
  auto context = testing::direct_context();
  config::v1::ServiceConfig service;
  (*service.mutable_handler()->mutable_metadata()->mutable_fields())["bind"].set_string_value("true");
  auto handler = make_socks5_handler(service);
  ASSERT_TRUE(handler.ok());
  testing::ServedHandler proxy(io, **handler, *context);
  run_for(io, [&]() -> asio::awaitable<void> {
    asio::co_spawn(io, proxy.serve(), asio::detached);
    asio::ip::tcp::socket control(io);
    co_await control.async_connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), proxy.port()), asio::use_awaitable);
    // "early" is sent before any peer exists; it must reach the peer first.
    co_await asio::async_write(control, asio::buffer(bytes(5, 1, 0, 5, 2, 0, 1, 127, 0, 0, 1, 0, 0) + "early"),
                               kUseTuple);
    std::string first(12, '\0');
    co_await asio::async_read(control, asio::buffer(first), kUseTuple);
    auto listening = read_reply(first.substr(2));
    EXPECT_EQ(listening.code, socks5::reply::kSucceeded);
    EXPECT_EQ(listening.address.host, "127.0.0.1");

    asio::ip::tcp::socket peer(io);
    co_await peer.async_connect({asio::ip::make_address("127.0.0.1"), listening.address.port}, asio::use_awaitable);
    std::string second(10, '\0');
    co_await asio::async_read(control, asio::buffer(second), kUseTuple);
    auto connected = read_reply(second);
    EXPECT_EQ(connected.code, socks5::reply::kSucceeded);
    EXPECT_EQ(connected.address.port, peer.local_endpoint().port());

    std::string early(5, '\0');
    co_await asio::async_read(peer, asio::buffer(early), kUseTuple);
    EXPECT_EQ(early, "early");
    co_await asio::async_write(peer, asio::buffer(std::string("from peer")), kUseTuple);
    std::string back(9, '\0');
    co_await asio::async_read(control, asio::buffer(back), kUseTuple);
    EXPECT_EQ(back, "from peer");
  }());
}

TEST(SocksBind, RefusesAPeerFromAnotherAddress) {
  asio::io_context io;
  auto context = testing::direct_context();
  config::v1::ServiceConfig service;
  (*service.mutable_handler()->mutable_metadata()->mutable_fields())["bind"].set_string_value("true");
  auto handler = make_socks5_handler(service);
  testing::ServedHandler proxy(io, **handler, *context);
  run_for(io, [&]() -> asio::awaitable<void> {
    asio::co_spawn(io, proxy.serve(), asio::detached);
    asio::ip::tcp::socket control(io);
    co_await control.async_connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), proxy.port()), asio::use_awaitable);
    // The client expects its peer at 127.0.0.2; a connection from 127.0.0.1 is turned away.
    co_await asio::async_write(control, asio::buffer(bytes(5, 1, 0, 5, 2, 0, 1, 127, 0, 0, 2, 0, 0)), kUseTuple);
    std::string first(12, '\0');
    co_await asio::async_read(control, asio::buffer(first), kUseTuple);
    auto listening = read_reply(first.substr(2));
    asio::ip::tcp::socket stranger(io);
    co_await stranger.async_connect({asio::ip::make_address("127.0.0.1"), listening.address.port},
                                    asio::use_awaitable);
    char byte;
    auto [error, n] = co_await stranger.async_read_some(asio::buffer(&byte, 1), kUseTuple);
    EXPECT_TRUE(error) << "the stranger's connection is closed";
    asio::ip::tcp::socket peer(io, {asio::ip::make_address("127.0.0.2"), 0});
    co_await peer.async_connect({asio::ip::make_address("127.0.0.1"), listening.address.port}, asio::use_awaitable);
    std::string second(10, '\0');
    co_await asio::async_read(control, asio::buffer(second), kUseTuple);
    EXPECT_EQ(read_reply(second).address.host, "127.0.0.2");
  }());
}

}  // namespace
}  // namespace strait::agent
