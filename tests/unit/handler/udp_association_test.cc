#include "agent/handler/udp_association.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace strait::agent
