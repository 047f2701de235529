#include "agent/channel/kcp_socket.h"

#include <gtest/gtest.h>

#include <boost/asio/steady_timer.hpp>

#include "support/asio_test.h"

namespace strait::agent {
namespace {

using asio::ip::udp;
using testing::kUseTuple;
using testing::run_for;

udp::socket loopback_socket(asio::io_context& io) { return udp::socket(io, {asio::ip::make_address("127.0.0.1"), 0}); }

TEST(KcpSocket, BatchesArriveWholeAndInOrder) {
  asio::io_context io;
  auto sender = std::make_shared<KcpSocket>(loopback_socket(io), 1024);
  auto receiver = std::make_shared<KcpSocket>(loopback_socket(io), 1024);
  const auto to = receiver->socket().local_endpoint();
  const auto from = sender->socket().local_endpoint();
  constexpr int kDatagrams = 100;
  std::vector<std::string> received;
  asio::steady_timer done(io, asio::steady_timer::time_point::max());
  receiver->start([&](std::span<uint8_t> datagram, const udp::endpoint& peer) {
    EXPECT_EQ(peer, from);
    received.emplace_back(datagram.begin(), datagram.end());
    if (received.size() == kDatagrams) done.cancel();
  });
  for (int i = 0; i < kDatagrams; ++i) {
    auto bytes = testing::payload(static_cast<size_t>(1 + i * 14), static_cast<unsigned>(i));
    sender->send(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), &to);
  }
  EXPECT_EQ(sender->queued(), static_cast<size_t>(kDatagrams));  // nothing leaves before the loop turns
  run_for(io, [&]() -> asio::awaitable<void> { co_await done.async_wait(kUseTuple); }());
  ASSERT_EQ(received.size(), static_cast<size_t>(kDatagrams));
  for (int i = 0; i < kDatagrams; ++i) {
    EXPECT_EQ(received[i], testing::payload(static_cast<size_t>(1 + i * 14), static_cast<unsigned>(i)));
  }
  EXPECT_EQ(sender->counters().sent, static_cast<uint64_t>(kDatagrams));
  sender->close();
  receiver->close();
}

TEST(KcpSocket, FullQueueAndOversizedDatagramsAreDropped) {
  asio::io_context io;
  auto sender = std::make_shared<KcpSocket>(loopback_socket(io), 4);
  auto receiver = std::make_shared<KcpSocket>(loopback_socket(io), 4);
  const auto to = receiver->socket().local_endpoint();
  std::vector<uint8_t> packet(100, 1);
  for (int i = 0; i < 10; ++i) sender->send(packet, &to);
  EXPECT_EQ(sender->queued(), 4u);
  EXPECT_EQ(sender->counters().send_dropped, 6u);
  std::vector<uint8_t> large(kKcpMaxDatagram + 1, 2);
  sender->send(large, &to);
  EXPECT_EQ(sender->counters().send_dropped, 7u);

  // A datagram longer than kcp-go's 1500 bytes is dropped on receipt.
  size_t delivered = 0;
  asio::steady_timer done(io, asio::steady_timer::time_point::max());
  receiver->start([&](std::span<uint8_t> datagram, const udp::endpoint&) {
    ++delivered;
    if (datagram.size() == 1) done.cancel();
  });
  udp::socket raw(io, udp::v4());
  raw.send_to(asio::buffer(std::vector<uint8_t>(2000, 3)), to);
  raw.send_to(asio::buffer(std::vector<uint8_t>(1, 4)), to);
  run_for(io, [&]() -> asio::awaitable<void> { co_await done.async_wait(kUseTuple); }());
  EXPECT_EQ(receiver->counters().oversized, 1u);
  sender->close();
  receiver->close();
}

}  // namespace
}  // namespace strait::agent
