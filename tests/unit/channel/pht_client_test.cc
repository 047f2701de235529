#include "agent/channel/pht_client.h"

#include "pht_test_support.h"

namespace strait::agent {
namespace {

using namespace pht_test;

TEST_F(PhtChannel, CarriesOneMebibyteEachWay) {
  listen();
  run_for(io_, [&]() -> asio::awaitable<void> {
    auto pair = co_await connect_pair(*listener_, *dialer_);
    const std::string up = testing::payload(1 << 20, 1);
    const std::string down = testing::payload(1 << 20, 2);
    auto [sent_up, got_up, sent_down, got_down] =
        co_await (send(*pair.client, up) && receive(*pair.server, up.size()) && send(*pair.server, down) &&
                  receive(*pair.client, down.size()));
    EXPECT_TRUE(sent_up && sent_down);
    EXPECT_TRUE(got_up == up) << "client to server bytes differ";
    EXPECT_TRUE(got_down == down) << "server to client bytes differ";
  }());
}

TEST_F(PhtChannel, PhtsCarriesBytesOverTls) {
  listen("phts");
  run_for(io_, [&]() -> asio::awaitable<void> {
    auto pair = co_await connect_pair(*listener_, *dialer_);
    const std::string up = testing::payload(200 << 10, 3);
    auto [sent, got] = co_await (send(*pair.client, up) && receive(*pair.server, up.size()));
    EXPECT_TRUE(got == up);
    co_await send(*pair.server, "pong");
    EXPECT_EQ(co_await receive(*pair.client, 4), "pong");
  }());
}

}  // namespace
}  // namespace strait::agent
