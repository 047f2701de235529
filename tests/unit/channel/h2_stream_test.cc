#include "agent/channel/h2_stream.h"

#include "h2_test_support.h"

namespace strait::agent {
namespace {

using namespace h2_test;

TEST(H2Channel, H2cDialerAndListenerMoveOneMebibyteEachWay) {
  asio::io_context io;
  auto listener = listen(io, make_h2c_listener_factory(service("h2c"), {}));
  auto dialer = make_h2c_dialer(node("h2c"));
  ASSERT_TRUE(dialer.ok());
  std::string address = listener->bound_address().to_string();
  const std::string up = testing::payload(1 << 20, 1);
  const std::string down = testing::payload(1 << 20, 2);
  run_for(io, [&]() -> asio::awaitable<void> {
    auto [client, server] = co_await ((*dialer)->dial(io.get_executor(), address, Network::kTcp, {}) &&
                                      listener->accept());
    EXPECT_TRUE(client && server);
    if (!client || !server) co_return;
    auto [at_server, at_client] = co_await (send_and_receive(**server, down) && send_and_receive(**client, up));
    EXPECT_TRUE(at_server == up) << "server got " << at_server.size() << " bytes";
    EXPECT_TRUE(at_client == down) << "client got " << at_client.size() << " bytes";
    auto* h2 = dynamic_cast<H2Stream*>(server->get());
    EXPECT_NE(h2, nullptr);
    if (h2 == nullptr) co_return;
    EXPECT_EQ(h2->head().method, "CONNECT");
    EXPECT_EQ(h2->head().authority, address);
  }());
}

TEST(H2Session, SlowReaderHoldsBackTheWriter) {
  asio::io_context io;
  run_for(io, [&]() -> asio::awaitable<void> {
    auto [a, b] = co_await testing::tcp_pair();
    std::unique_ptr<H2Stream> server_stream;
    H2SessionOptions server_options;
    server_options.limits.stream_window = 64 * 1024;
    server_options.limits.connection_window = 128 * 1024;
    auto server = H2Session::start_server(std::make_unique<TcpStream>(std::move(b)), server_options,
                                          [&](std::unique_ptr<H2Stream> stream) {
                                            stream->respond(200);
                                            server_stream = std::move(stream);
                                          });
    auto client = H2Session::start_client(std::make_unique<TcpStream>(std::move(a)), {});
    auto stream = co_await client->open(head("CONNECT", "x:1"), std::chrono::seconds(5));
    EXPECT_TRUE(stream);
    if (!stream) co_return;
    // Nobody reads on the server: writes stop once its window and our queue are full.
    const std::string chunk = testing::payload(16 * 1024);
    size_t written = 0;
    asio::steady_timer timer(io);
    while (written < (8u << 20)) {
      timer.expires_after(std::chrono::milliseconds(300));
      auto outcome =
          co_await (asio::async_write(**stream, asio::buffer(chunk), kUseTuple) || timer.async_wait(kUseTuple));
      if (outcome.index() == 1) break;
      written += std::get<1>(std::get<0>(outcome));
    }
    EXPECT_LE(written, 64u * 1024 + h2::Limits{}.send_buffer + chunk.size());
    EXPECT_GE(written, 64u * 1024);
    // Reading frees the window: the rest arrives.
    (*stream)->shutdown_send();
    std::string received;
    char buffer[16384];
    for (;;) {
      auto [error, n] = co_await server_stream->async_read_some(asio::buffer(buffer), kUseTuple);
      received.append(buffer, n);
      if (error) break;
    }
    EXPECT_GE(received.size(), 64u * 1024);
    client->close();
    server->close();
  }());
}

}  // namespace
}  // namespace strait::agent
