#include "agent/channel/pht_session.h"

#include "pht_test_support.h"

namespace strait::agent {
namespace {

using namespace pht_test;

TEST_F(PhtChannel, SeveralTunnelsAtOnceKeepTheirBytesApart) {
  listen();
  constexpr int kTunnels = 6;
  run_for(io_, [&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    std::vector<Pair> pairs;
    for (int i = 0; i < kTunnels; ++i) pairs.push_back(co_await connect_pair(*listener_, *dialer_));
    int finished = 0;
    asio::steady_timer all_done(executor, asio::steady_timer::time_point::max());
    for (int i = 0; i < kTunnels; ++i) {
      // Each server end echoes what its client sends; the clients run at once.
      auto echo_and_check = [](Pair& pair, std::string data) -> asio::awaitable<void> {
        auto [sent, echoed, back] = co_await (send(*pair.client, data) && [&]() -> asio::awaitable<bool> {
          auto got = co_await receive(*pair.server, data.size());
          co_return co_await send(*pair.server, got);
        }() && receive(*pair.client, data.size()));
        EXPECT_TRUE(back == data) << "a tunnel's echo differs";
      };
      asio::co_spawn(executor, echo_and_check(pairs[i], testing::payload(96 << 10, 10 + i)), [&](std::exception_ptr) {
        if (++finished == kTunnels) all_done.cancel();
      });
    }
    co_await all_done.async_wait(kUseTuple);
    EXPECT_EQ(finished, kTunnels);
  }());
}

TEST_F(PhtChannel, CloseOfEitherEndIsTheOtherEndsEof) {
  listen();
  run_for(io_, [&]() -> asio::awaitable<void> {
    auto first = co_await connect_pair(*listener_, *dialer_);
    co_await send(*first.server, "last words");
    first.server->close();
    EXPECT_EQ(co_await receive(*first.client, 10), "last words");
    EXPECT_EQ(co_await read_error(*first.client), asio::error::eof);
    auto second = co_await connect_pair(*listener_, *dialer_);
    co_await send(*second.client, "bye");
    EXPECT_EQ(co_await receive(*second.server, 3), "bye");
    second.client->close();
    EXPECT_EQ(co_await read_error(*second.server), asio::error::eof);
  }());
}

// A client's requests may reach any worker (SO_REUSEPORT): here the tunnel opens on one
// worker's listener, and its push and pull come through another worker's, on its own thread.
TEST(PhtWorkers, TunnelSpansWorkers) {
  auto factory = make_pht_listener_factory(pht_service("pht"), config::v1::Config{});
  ASSERT_TRUE(factory.ok()) << factory.status();
  asio::io_context home_io;
  asio::io_context other_io;
  auto home = (*factory)->listen(home_io.get_executor(), {.address = common::HostPort{"127.0.0.1", 0}});
  auto other = (*factory)->listen(other_io.get_executor(), {.address = common::HostPort{"127.0.0.1", 0}});
  ASSERT_TRUE(home && other);
  auto guard = asio::make_work_guard(other_io);
  asio::co_spawn(
      other_io, [](Listener& listener) -> asio::awaitable<void> { co_await listener.accept(); }(**other),
      asio::detached);
  std::thread other_thread([&] { other_io.run(); });
  run_for(home_io, [&]() -> asio::awaitable<void> {
    auto opener = co_await RawClient::connect(**home);
    auto authorize = [&]() -> asio::awaitable<std::string> { co_return co_await opener.authorize(); };
    auto accept = [&]() -> asio::awaitable<StreamPtr> {
      auto stream = co_await (*home)->accept();
      co_return stream ? std::move(*stream) : nullptr;
    };
    auto [token, server] = co_await (authorize() && accept());
    EXPECT_TRUE(server);
    if (!server) co_return;
    auto far = co_await RawClient::connect(**other);
    const std::string up = testing::payload(100 << 10, 5);
    std::string body;
    pht::append_line(body, up);
    auto [status, got] = co_await (far.push(token, body) && receive(*server, up.size()));
    EXPECT_EQ(status, 200u);
    EXPECT_TRUE(got == up) << "pushed bytes differ";
    co_await send(*server, "from home");
    server->close();
    co_await asio::async_write(far.socket(),
                               asio::buffer("GET /pull?token=" + token + " HTTP/1.1\r\nHost: test\r\n\r\n"), kUseTuple);
    std::string answer;
    auto [error, n] =
        co_await asio::async_read_until(far.socket(), asio::dynamic_buffer(answer), "\r\n0\r\n\r\n", kUseTuple);
    EXPECT_FALSE(error) << error.message();
    EXPECT_NE(answer.find("\r\nZnJvbSBob21l\n\r\n"), std::string::npos) << answer;
  }());
  guard.reset();
  other_io.stop();
  other_thread.join();
}

}  // namespace
}  // namespace strait::agent
