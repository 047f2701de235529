#include "agent/channel/h2_session.h"

#include "h2_test_support.h"

namespace strait::agent {
namespace {

using namespace h2_test;

TEST(H2Session, RefusesStreamsBeyondTheCap) {
  asio::io_context io;
  run_for(io, [&]() -> asio::awaitable<void> {
    auto [a, b] = co_await testing::tcp_pair();
    ServerPeer server;
    H2SessionOptions server_options;
    server_options.limits.max_concurrent_streams = 2;
    server.session = H2Session::start_server(std::make_unique<TcpStream>(std::move(b)), server_options,
                                             [&](std::unique_ptr<H2Stream> stream) {
                                               stream->respond(200);
                                               server.streams.push_back(std::move(stream));
                                             });
    auto client = H2Session::start_client(std::make_unique<TcpStream>(std::move(a)), {});
    h2::Head request = head("CONNECT", "example.com:443");
    // All three go out with the client's preface, before it knows the server's limit.
    auto [first, second, third] = co_await (client->open(request, std::chrono::seconds(5)) &&
                                            client->open(request, std::chrono::seconds(5)) &&
                                            client->open(request, std::chrono::seconds(5)));
    EXPECT_TRUE(first);
    EXPECT_TRUE(second);
    EXPECT_FALSE(third);
    if (!third) {
      EXPECT_EQ(third.error(), asio::error::connection_refused);
    }
    EXPECT_EQ(server.streams.size(), 2u);
    // The session itself goes on.
    if (first) co_await asio::async_write(**first, asio::buffer("still here", 10), kUseTuple);
    char reply[10];
    auto [error, n] = co_await asio::async_read(*server.streams.front(), asio::buffer(reply), kUseTuple);
    EXPECT_FALSE(error);
    EXPECT_EQ(std::string(reply, n), "still here");
    client->close();
    server.session->close();
  }());
}

TEST(H2Channel, MalformedInputEndsOnlyThatSession) {
  asio::io_context io;
  auto listener = listen(io, make_h2c_listener_factory(service("h2c"), {}));
  auto dialer = make_h2c_dialer(node("h2c"));
  std::string address = listener->bound_address().to_string();
  auto port = listener->bound_address().port;
  run_for(io, [&]() -> asio::awaitable<void> {
    auto [client, server] = co_await ((*dialer)->dial(io.get_executor(), address, Network::kTcp, {}) &&
                                      listener->accept());
    EXPECT_TRUE(client && server);
    if (!client || !server) co_return;
    asio::ip::tcp::socket raw(io);
    co_await raw.async_connect({asio::ip::make_address("127.0.0.1"), port}, kUseTuple);
    std::string garbage = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nthis is not an HTTP/2 frame at all\r\n";
    co_await asio::async_write(raw, asio::buffer(garbage), kUseTuple);
    auto types = co_await frame_types_until_eof(raw);
    EXPECT_NE(std::find(types.begin(), types.end(), 0x7), types.end()) << "no GOAWAY before the close";
    // The other session still carries bytes both ways.
    auto [at_server, at_client] = co_await (send_and_receive(**server, "still") && send_and_receive(**client, "alive"));
    EXPECT_EQ(at_server, "alive");
    EXPECT_EQ(at_client, "still");
  }());
}

}  // namespace
}  // namespace strait::agent
