#include "agent/channel/h2.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "agent/channel/tcp.h"
#include "agent/channel/tls.h"
#include "agent/protocol/proxy_error.h"
#include "support/asio_test.h"

namespace strait::agent {
namespace {

using namespace asio::experimental::awaitable_operators;
using testing::kUseTuple;
using testing::run_for;

void set_meta(google::protobuf::Struct& metadata, const std::string& key, const std::string& value) {
  (*metadata.mutable_fields())[key].set_string_value(value);
}

config::v1::ServiceConfig service(const std::string& type, const std::string& path = "") {
  config::v1::ServiceConfig config;
  config.set_name("svc");
  config.mutable_listener()->set_type(type);
  if (!path.empty()) set_meta(*config.mutable_listener()->mutable_metadata(), "path", path);
  return config;
}

config::v1::NodeConfig node(const std::string& type, const std::string& path = "") {
  config::v1::NodeConfig config;
  config.set_name("node");
  config.mutable_dialer()->set_type(type);
  if (!path.empty()) set_meta(*config.mutable_dialer()->mutable_metadata(), "path", path);
  return config;
}

h2::Head head(std::string method, std::string authority, std::string path = "") {
  h2::Head request;
  request.method = std::move(method);
  request.scheme = "http";
  request.authority = std::move(authority);
  request.path = std::move(path);
  return request;
}

std::unique_ptr<Listener> listen(asio::io_context& io,
                                 const absl::StatusOr<std::unique_ptr<ListenerFactory>>& factory) {
  EXPECT_TRUE(factory.ok()) << factory.status();
  auto listener = (*factory)->listen(io.get_executor(), {.address = common::HostPort{"127.0.0.1", 0}});
  EXPECT_TRUE(listener);
  return std::move(*listener);
}

// Writes `data` and half-closes, while reading everything the peer sends until its EOF.
asio::awaitable<std::string> send_and_receive(Stream& stream, const std::string& data) {
  auto send = [&]() -> asio::awaitable<void> {
    auto [error, n] = co_await asio::async_write(stream, asio::buffer(data), kUseTuple);
    EXPECT_FALSE(error) << error.message();
    EXPECT_EQ(n, data.size());
    stream.shutdown_send();
  };
  auto receive = [&]() -> asio::awaitable<std::string> {
    std::string received;
    char chunk[16384];
    for (;;) {
      auto [error, n] = co_await stream.async_read_some(asio::buffer(chunk), kUseTuple);
      received.append(chunk, n);
      if (error) {
        EXPECT_EQ(error, asio::error::eof) << error.message();
        co_return received;
      }
    }
  };
  co_return co_await (send() && receive());
}

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

// Sends back what it reads until EOF, then ends its side.
asio::awaitable<void> echo(StreamPtr stream) {
  char chunk[4096];
  for (;;) {
    auto [error, n] = co_await stream->async_read_some(asio::buffer(chunk), kUseTuple);
    if (n > 0) co_await asio::async_write(*stream, asio::buffer(chunk, n), kUseTuple);
    if (error) break;
  }
  stream->shutdown_send();
  // Held until the peer has read everything and closed.
  co_await stream->async_wait_readable(kUseTuple);
}

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

// A server session over one end of a TCP pair whose requests are answered 200 and kept.
struct ServerPeer {
  std::vector<std::unique_ptr<H2Stream>> streams;
  std::shared_ptr<H2Session> session;
};

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

// Reads HTTP/2 frames until EOF and returns their types (RFC 9113 §4.1 frame header).
asio::awaitable<std::vector<int>> frame_types_until_eof(asio::ip::tcp::socket& socket) {
  std::string bytes;
  char chunk[4096];
  for (;;) {
    auto [error, n] = co_await socket.async_read_some(asio::buffer(chunk), kUseTuple);
    bytes.append(chunk, n);
    if (error) break;
  }
  std::vector<int> types;
  for (size_t at = 0; at + 9 <= bytes.size();) {
    size_t length = (uint8_t(bytes[at]) << 16) | (uint8_t(bytes[at + 1]) << 8) | uint8_t(bytes[at + 2]);
    types.push_back(uint8_t(bytes[at + 3]));
    at += 9 + length;
  }
  co_return types;
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

// Opens a stream with `request` on a new client connection to `address`; returns its status.
asio::awaitable<int> status_of(asio::io_context& io, const std::string& address, h2::Head request) {
  auto socket = co_await connect_tcp(io.get_executor(), address, {});
  EXPECT_TRUE(socket);
  if (!socket) co_return 0;
  auto client = H2Session::start_client(std::make_unique<TcpStream>(std::move(*socket)), {});
  auto stream = co_await client->open(request, std::chrono::seconds(5));
  client->close();
  EXPECT_TRUE(stream) << (stream ? "" : stream.error().message());
  co_return stream ? (*stream)->head().status : -1;
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
