#include "agent/channel/h2_listener.h"

#include "h2_test_support.h"

namespace strait::agent {
namespace {

using namespace h2_test;

TEST(H2Channel, TlsListenerAndDialerNegotiateH2) {
  asio::io_context io;
  auto listener = listen(io, make_h2_listener_factory(service("h2"), {}));
  auto dialer = make_h2_dialer(node("h2"));
  ASSERT_TRUE(dialer.ok()) << dialer.status();
  auto plain_tls = make_tls_dialer(node("tls"));
  ASSERT_TRUE(plain_tls.ok());
  std::string address = listener->bound_address().to_string();
  run_for(io, [&]() -> asio::awaitable<void> {
    auto [client, server] = co_await ((*dialer)->dial(io.get_executor(), address, Network::kTcp, {}) &&
                                      listener->accept());
    EXPECT_TRUE(client && server);
    if (!client || !server) co_return;
    auto [at_server, at_client] = co_await (send_and_receive(**server, "pong") && send_and_receive(**client, "ping"));
    EXPECT_EQ(at_server, "ping");
    EXPECT_EQ(at_client, "pong");
    // A TLS client that does not ask for h2 is dropped after its handshake.
    auto tls = co_await (*plain_tls)->dial(io.get_executor(), address, Network::kTcp, {});
    EXPECT_TRUE(tls);
    if (!tls) co_return;
    char byte;
    auto [error, n] = co_await (*tls)->async_read_some(asio::buffer(&byte, 1), kUseTuple);
    EXPECT_TRUE(error) << "a client without ALPN h2 was served";
  }());
}

TEST(H2Channel, FullAcceptBacklogRefusesStreams) {
  asio::io_context io;
  auto config = service("h2c");
  set_meta(*config.mutable_listener()->mutable_metadata(), "backlog", "1");
  auto listener = listen(io, make_h2c_listener_factory(config, {}));
  auto dialer = make_h2c_dialer(node("h2c"));
  std::string address = listener->bound_address().to_string();
  run_for(io, [&]() -> asio::awaitable<void> {
    auto [first, accepted] = co_await ((*dialer)->dial(io.get_executor(), address, Network::kTcp, {}) &&
                                       listener->accept());
    EXPECT_TRUE(first && accepted);
    auto waiting = co_await (*dialer)->dial(io.get_executor(), address, Network::kTcp, {});  // in the backlog
    EXPECT_TRUE(waiting);
    auto refused = co_await (*dialer)->dial(io.get_executor(), address, Network::kTcp, {});
    EXPECT_FALSE(refused);
    if (!refused) {
      EXPECT_EQ(refused.error(), asio::error::connection_refused);
    }
  }());
}

TEST(H2Channel, ListenerPathAndMethodRules) {
  asio::io_context io;
  auto open = listen(io, make_h2c_listener_factory(service("h2c"), {}));
  auto with_path = listen(io, make_h2c_listener_factory(service("h2c", "/tunnel"), {}));
  auto dialer = make_h2c_dialer(node("h2c", "/tunnel"));
  std::string open_address = open->bound_address().to_string();
  std::string path_address = with_path->bound_address().to_string();
  run_for(io, [&]() -> asio::awaitable<void> {
    asio::co_spawn(io, open->accept(), asio::detached);  // starts taking connections
    asio::co_spawn(io, with_path->accept(), asio::detached);
    h2::Head get = head("GET", "a", "/tunnel");
    EXPECT_EQ(co_await status_of(io, open_address, get), 405);
    h2::Head connect = head("CONNECT", "a:1");
    EXPECT_EQ(co_await status_of(io, path_address, connect), 400);
    h2::Head other = head("GET", "a", "/other");
    EXPECT_EQ(co_await status_of(io, path_address, other), 400);
    EXPECT_EQ(co_await status_of(io, path_address, get), 200);
    // The dialer with `path` sends GET <path> and gets its tunnel.
    auto tunnel = co_await (*dialer)->dial(io.get_executor(), path_address, Network::kTcp, {});
    EXPECT_TRUE(tunnel) << (tunnel ? "" : tunnel.error().message());
    // ... and a CONNECT dialer is refused by that listener.
    auto connect_dialer = make_h2c_dialer(node("h2c"));
    auto refused = co_await (*connect_dialer)->dial(io.get_executor(), path_address, Network::kTcp, {});
    EXPECT_FALSE(refused);
    if (!refused) {
      EXPECT_EQ(refused.error(), ProxyError::kRejected);
    }
  }());
}

}  // namespace
}  // namespace strait::agent
