#include "agent/handler/udp_association.h"

#include <gtest/gtest.h>

#include <set>

#include <boost/asio/steady_timer.hpp>

#include "support/proxy_harness.h"

namespace strait::agent {
namespace {

using testing::run_for;

std::span<const uint8_t> bytes_of(const std::string& text) {
  return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

common::HostPort host_port(const asio::ip::udp::socket& socket) {
  return {"127.0.0.1", socket.local_endpoint().port()};
}

TEST(UdpAssociation, RelaysToSeveralTargetsAndNamesTheSource) {
  asio::io_context io;
  auto first = testing::loopback_udp(io);
  auto second = testing::loopback_udp(io);
  auto router = std::make_shared<Router>(nullptr, 0, DialOptions{});
  std::vector<UdpAssociation::Datagram> answers;
  auto association = std::make_shared<UdpAssociation>(io.get_executor(), router, "test", UdpAssociation::Limits{});
  run_for(io, [&]() -> asio::awaitable<void> {
    asio::co_spawn(io, testing::udp_echo(first), asio::detached);
    asio::co_spawn(io, testing::udp_echo(second), asio::detached);
    co_await association->send(host_port(first), bytes_of("to first"));
    co_await association->send(host_port(second), bytes_of("to second"));
    for (int i = 0; i < 2; ++i) {
      auto answer = co_await association->receive();
      EXPECT_TRUE(answer);
      if (answer) answers.push_back(*answer);
    }
    association->close();
    EXPECT_FALSE(co_await association->receive()) << "a closed association ends its reader";
  }());
  ASSERT_EQ(answers.size(), 2u);
  std::sort(answers.begin(), answers.end(), [](auto& a, auto& b) { return a.payload < b.payload; });
  EXPECT_EQ(answers[0].payload, "to first");
  EXPECT_EQ(answers[0].source, host_port(first));
  EXPECT_EQ(answers[1].source, host_port(second));
  EXPECT_EQ(association->bytes_from_client(), 17u);
  EXPECT_EQ(association->bytes_to_client(), 17u);
}

TEST(UdpAssociation, ATargetBeyondTheLimitReplacesTheLeastRecentlyUsed) {
  asio::io_context io;
  std::vector<asio::ip::udp::socket> targets;
  for (int i = 0; i < 3; ++i) targets.push_back(testing::loopback_udp(io));
  auto router = std::make_shared<Router>(nullptr, 0, DialOptions{});
  UdpAssociation::Limits limits;
  limits.max_targets = 2;
  auto association = std::make_shared<UdpAssociation>(io.get_executor(), router, "test", limits);
  std::vector<std::string> answers;
  run_for(io, [&]() -> asio::awaitable<void> {
    for (auto& target : targets) asio::co_spawn(io, testing::udp_echo(target), asio::detached);
    // Every target answers, although the third one needed a channel beyond the limit.
    for (size_t i = 0; i < targets.size(); ++i) {
      co_await association->send(host_port(targets[i]), bytes_of("n" + std::to_string(i)));
      auto answer = co_await association->receive();
      EXPECT_TRUE(answer);
      if (answer) answers.push_back(answer->payload);
    }
    association->close();
  }());
  EXPECT_EQ(answers, (std::vector<std::string>{"n0", "n1", "n2"}));
}

TEST(UdpAssociation, EndsByItselfOnceNothingPassedForItsIdleTime) {
  asio::io_context io;
  auto target = testing::loopback_udp(io);
  auto router = std::make_shared<Router>(nullptr, 0, DialOptions{});
  UdpAssociation::Limits limits;
  limits.flow_ttl = std::chrono::milliseconds(100);
  limits.idle_timeout = std::chrono::milliseconds(300);
  auto association = std::make_shared<UdpAssociation>(io.get_executor(), router, "test", limits);
  run_for(io, [&]() -> asio::awaitable<void> {
    asio::co_spawn(io, testing::udp_echo(target), asio::detached);
    auto started = std::chrono::steady_clock::now();
    co_await association->send(host_port(target), bytes_of("once"));
    EXPECT_TRUE(co_await association->receive());
    // Silence from here: the flow expires, then the whole association ends its reader.
    EXPECT_FALSE(co_await association->receive());
    auto waited = std::chrono::steady_clock::now() - started;
    EXPECT_GE(waited, std::chrono::milliseconds(300));
    EXPECT_LT(waited, std::chrono::seconds(3));
    target.close();
  }());
}

TEST(UdpAssociation, AnIdleFlowIsClosedAndReopenedOnTheNextDatagram) {
  asio::io_context io;
  auto target = testing::loopback_udp(io);
  auto router = std::make_shared<Router>(nullptr, 0, DialOptions{});
  UdpAssociation::Limits limits;
  limits.flow_ttl = std::chrono::milliseconds(100);
  auto association = std::make_shared<UdpAssociation>(io.get_executor(), router, "test", limits);
  std::set<uint16_t> source_ports;
  run_for(io, [&]() -> asio::awaitable<void> {
    // The target reports the port each datagram came from: a new flow is a new socket.
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
      char buffer[64];
      for (;;) {
        asio::ip::udp::endpoint from;
        auto [error, n] = co_await target.async_receive_from(asio::buffer(buffer), from, testing::kUseTuple);
        if (error) co_return;
        source_ports.insert(from.port());
        co_await target.async_send_to(asio::buffer(buffer, n), from, testing::kUseTuple);
      }
    }, asio::detached);
    co_await association->send(host_port(target), bytes_of("first"));
    EXPECT_TRUE(co_await association->receive());
    asio::steady_timer pause(io, std::chrono::milliseconds(400));
    co_await pause.async_wait(testing::kUseTuple);
    co_await association->send(host_port(target), bytes_of("second"));
    auto answer = co_await association->receive();
    EXPECT_TRUE(answer);
    if (answer) {
      EXPECT_EQ(answer->payload, "second");
    }
    association->close();
    target.close();
  }());
  EXPECT_EQ(source_ports.size(), 2u) << "the first flow expired while silent";
}

}  // namespace
}  // namespace strait::agent
