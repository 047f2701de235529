#include "agent/connector/forward.h"

#include <gtest/gtest.h>

#include "agent/channel/tcp.h"
#include "support/asio_test.h"

namespace strait::agent {
namespace {

TEST(ForwardConnector, ReturnsTheDialedStreamUnchanged) {
  asio::io_context io;
  auto connector = make_forward_connector({});
  ASSERT_TRUE(connector.ok());
  testing::run_for(io, [&]() -> asio::awaitable<void> {
    auto [a, b] = co_await testing::tcp_pair();
    auto stream = std::make_unique<TcpStream>(std::move(a));
    Stream* raw = stream.get();
    auto connected = co_await (*connector)->connect(std::move(stream), Network::kTcp, "ignored:1");
    EXPECT_TRUE(connected);
    EXPECT_EQ(connected->get(), raw);
  }());
}

}  // namespace
}  // namespace strait::agent
