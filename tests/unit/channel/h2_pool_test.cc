#include "agent/channel/h2_pool.h"

#include "h2_test_support.h"

namespace strait::agent {
namespace {

using namespace h2_test;

TEST(H2Channel, ConcurrentDialsShareOneConnection) {
  asio::io_context io;
  auto listener = listen(io, make_h2c_listener_factory(service("h2c"), {}));
  auto dialer = make_h2c_dialer(node("h2c"));
  ASSERT_TRUE(dialer.ok());
  std::string address = listener->bound_address().to_string();
  constexpr int kStreams = 8;
  run_for(io, [&]() -> asio::awaitable<void> {
    std::set<std::string> client_ends;
    int echoed = 0;
    auto serve = [&]() -> asio::awaitable<void> {
      for (int i = 0; i < kStreams; ++i) {
        auto server = co_await listener->accept();
        EXPECT_TRUE(server);
        if (!server) co_return;
        client_ends.insert((*server)->remote_address());  // the dialer's TCP address
        asio::co_spawn(io, echo(std::move(*server)), asio::detached);
      }
    };
    auto client = [&](int i) -> asio::awaitable<void> {
      auto stream = co_await (*dialer)->dial(io.get_executor(), address, Network::kTcp, {});
      EXPECT_TRUE(stream);
      if (!stream) co_return;
      std::string message = testing::payload(10000 + i, i);
      if (co_await send_and_receive(**stream, message) == message) ++echoed;
    };
    co_await (serve() && client(0) && client(1) && client(2) && client(3) && client(4) && client(5) && client(6) &&
              client(7));
    EXPECT_EQ(echoed, kStreams);
    EXPECT_EQ(client_ends.size(), 1u) << "the dialer opened more than one TCP connection";
  }());
}

}  // namespace
}  // namespace strait::agent
