#include "agent/channel/udp.h"

#include <gtest/gtest.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "support/asio_test.h"

namespace strait::agent {
namespace {

using asio::ip::udp;
using namespace asio::experimental::awaitable_operators;
using testing::kUseTuple;
using testing::run_for;

TEST(UdpChannel, EachClientAddressIsOneSessionKeepingDatagramBoundaries) {
  asio::io_context io;
  auto listener = make_udp_listener_factory()->listen(io.get_executor(), {.address = common::HostPort{"127.0.0.1", 0}});
  ASSERT_TRUE(listener);
  udp::endpoint server(asio::ip::make_address("127.0.0.1"), (*listener)->bound_address().port);
  udp::socket alice(io, udp::endpoint(udp::v4(), 0));
  udp::socket bob(io, udp::endpoint(udp::v4(), 0));
  run_for(io, [&]() -> asio::awaitable<void> {
    co_await alice.async_send_to(asio::buffer("a1", 2), server, kUseTuple);
    co_await alice.async_send_to(asio::buffer("a2-longer", 9), server, kUseTuple);
    co_await bob.async_send_to(asio::buffer("b1", 2), server, kUseTuple);
    auto first = co_await (*listener)->accept();
    auto second = co_await (*listener)->accept();
    EXPECT_TRUE(first && second);
    EXPECT_TRUE((*first)->is_datagram());
    char buffer[64];
    auto [e1, n1] = co_await (*first)->async_read_some(asio::buffer(buffer), kUseTuple);
    EXPECT_EQ(std::string(buffer, n1), "a1");
    auto [e2, n2] = co_await (*first)->async_read_some(asio::buffer(buffer), kUseTuple);
    EXPECT_EQ(std::string(buffer, n2), "a2-longer");
    auto [e3, n3] = co_await (*second)->async_read_some(asio::buffer(buffer), kUseTuple);
    EXPECT_EQ(std::string(buffer, n3), "b1");
    // Replies go back to the session's own client.
    co_await (*second)->async_write_some(asio::buffer("to-bob", 6), kUseTuple);
    udp::endpoint from;
    auto [e4, n4] = co_await bob.async_receive_from(asio::buffer(buffer), from, kUseTuple);
    EXPECT_EQ(std::string(buffer, n4), "to-bob");
    EXPECT_EQ(from, server);
    // A closed session's read ends with an error instead of hanging.
    (*first)->close();
    auto [closed_error, zero] = co_await (*first)->async_read_some(asio::buffer(buffer), kUseTuple);
    EXPECT_TRUE(closed_error);
  }());
}

TEST(UdpChannel, ANewClientTakesThePlaceOfTheOneSilentForLongest) {
  asio::io_context io;
  auto listener = make_udp_listener_factory()->listen(
      io.get_executor(), {.address = common::HostPort{"127.0.0.1", 0}, .max_udp_sessions = 2});
  ASSERT_TRUE(listener);
  udp::endpoint server(asio::ip::make_address("127.0.0.1"), (*listener)->bound_address().port);
  udp::socket alice(io, udp::endpoint(udp::v4(), 0));
  udp::socket bob(io, udp::endpoint(udp::v4(), 0));
  udp::socket carol(io, udp::endpoint(udp::v4(), 0));
  run_for(io, [&]() -> asio::awaitable<void> {
    co_await alice.async_send_to(asio::buffer("a1", 2), server, kUseTuple);
    auto alice_session = co_await (*listener)->accept();
    co_await bob.async_send_to(asio::buffer("b1", 2), server, kUseTuple);
    auto bob_session = co_await (*listener)->accept();
    char buffer[64];
    co_await (*alice_session)->async_read_some(asio::buffer(buffer), kUseTuple);
    co_await (*bob_session)->async_read_some(asio::buffer(buffer), kUseTuple);
    // Alice speaks again: Bob is now the one silent for longest.
    co_await alice.async_send_to(asio::buffer("a2", 2), server, kUseTuple);
    auto [alice_error, alice_bytes] = co_await (*alice_session)->async_read_some(asio::buffer(buffer), kUseTuple);
    EXPECT_EQ(std::string(buffer, alice_bytes), "a2");
    co_await carol.async_send_to(asio::buffer("c1", 2), server, kUseTuple);
    auto carol_session = co_await (*listener)->accept();
    EXPECT_TRUE(carol_session);
    auto [bob_error] = co_await (*bob_session)->async_wait_readable(kUseTuple);
    EXPECT_EQ(bob_error, asio::error::operation_aborted) << "Bob's session ended to make room";
    // Alice's session goes on.
    co_await alice.async_send_to(asio::buffer("a3", 2), server, kUseTuple);
    auto [e3, n3] = co_await (*alice_session)->async_read_some(asio::buffer(buffer), kUseTuple);
    EXPECT_EQ(std::string(buffer, n3), "a3");
    (*listener)->close();
  }());
}

TEST(UdpChannel, WaitReadableCompletesOnceADatagramIsQueued) {
  asio::io_context io;
  auto listener = make_udp_listener_factory()->listen(io.get_executor(), {.address = common::HostPort{"127.0.0.1", 0}});
  ASSERT_TRUE(listener);
  udp::endpoint server(asio::ip::make_address("127.0.0.1"), (*listener)->bound_address().port);
  udp::socket alice(io, udp::endpoint(udp::v4(), 0));
  run_for(io, [&]() -> asio::awaitable<void> {
    co_await alice.async_send_to(asio::buffer("first", 5), server, kUseTuple);
    auto session = co_await (*listener)->accept();
    char buffer[64];
    co_await (*session)->async_read_some(asio::buffer(buffer), kUseTuple);
    auto later = [&]() -> asio::awaitable<void> {
      co_await alice.async_send_to(asio::buffer("second", 6), server, kUseTuple);
    };
    co_await later();
    auto [wait_error] = co_await (*session)->async_wait_readable(kUseTuple);
    EXPECT_FALSE(wait_error);
    auto [read_error, n] = co_await (*session)->async_read_some(asio::buffer(buffer), kUseTuple);
    EXPECT_EQ(std::string(buffer, n), "second");
    (*listener)->close();
  }());
}

TEST(UdpChannel, AReadRacedByATimerIsCancelledAndTheSessionGoesOn) {
  asio::io_context io;
  auto listener = make_udp_listener_factory()->listen(io.get_executor(), {.address = common::HostPort{"127.0.0.1", 0}});
  ASSERT_TRUE(listener);
  udp::endpoint server(asio::ip::make_address("127.0.0.1"), (*listener)->bound_address().port);
  udp::socket alice(io, udp::endpoint(udp::v4(), 0));
  run_for(io, [&]() -> asio::awaitable<void> {
    co_await alice.async_send_to(asio::buffer("first", 5), server, kUseTuple);
    auto session = co_await (*listener)->accept();
    char buffer[64];
    co_await (*session)->async_read_some(asio::buffer(buffer), kUseTuple);
    asio::steady_timer timer(io, std::chrono::milliseconds(20));
    auto raced = co_await ((*session)->async_read_some(asio::buffer(buffer), kUseTuple) ||
                           timer.async_wait(kUseTuple));
    EXPECT_EQ(raced.index(), 1u) << "the read should have lost to the timer";
    co_await alice.async_send_to(asio::buffer("second", 6), server, kUseTuple);
    auto [read_error, n] = co_await (*session)->async_read_some(asio::buffer(buffer), kUseTuple);
    EXPECT_FALSE(read_error);
    EXPECT_EQ(std::string(buffer, n), "second");
    (*listener)->close();
  }());
}

TEST(UdpChannel, DialerSendsAndReceivesDatagrams) {
  asio::io_context io;
  udp::socket echo(io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  auto dialer = make_udp_dialer();
  std::string address = "127.0.0.1:" + std::to_string(echo.local_endpoint().port());
  run_for(io, [&]() -> asio::awaitable<void> {
    auto stream = co_await dialer->dial(io.get_executor(), address, Network::kUdp, {});
    EXPECT_TRUE(stream);
    co_await (*stream)->async_write_some(asio::buffer("ping", 4), kUseTuple);
    char buffer[16];
    udp::endpoint from;
    auto [e1, n1] = co_await echo.async_receive_from(asio::buffer(buffer), from, kUseTuple);
    co_await echo.async_send_to(asio::buffer(buffer, n1), from, kUseTuple);
    auto [e2, n2] = co_await (*stream)->async_read_some(asio::buffer(buffer), kUseTuple);
    EXPECT_EQ(std::string(buffer, n2), "ping");
  }());
}

}  // namespace
}  // namespace strait::agent
