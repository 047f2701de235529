#include "agent/handler/ss.h"

#include <gtest/gtest.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>

#include "agent/connector/ss.h"
#include "agent/handler/ss_salt_filter.h"
#include "agent/protocol/shadowsocks.h"
#include "agent/protocol/socks5.h"
#include "support/proxy_harness.h"
#include "support/stream_io.h"

namespace strait::agent {
namespace {

using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;
using testing::kUseTuple;
using testing::run_for;

std::unique_ptr<Handler> ss_handler(const std::string& method, const std::string& password,
                                    const std::string& read_timeout = "") {
  config::v1::ServiceConfig service;
  service.mutable_handler()->mutable_auth()->set_username(method);
  service.mutable_handler()->mutable_auth()->set_password(password);
  if (!read_timeout.empty()) {
    (*service.mutable_handler()->mutable_metadata()->mutable_fields())["readTimeout"].set_string_value(read_timeout);
  }
  auto handler = make_ss_handler(service);
  EXPECT_TRUE(handler.ok()) << handler.status();
  return std::move(*handler);
}

std::unique_ptr<Connector> ss_connector(const std::string& method, const std::string& password, bool nodelay = false) {
  config::v1::NodeConfig node;
  node.mutable_connector()->mutable_auth()->set_username(method);
  node.mutable_connector()->mutable_auth()->set_password(password);
  if (nodelay) (*node.mutable_connector()->mutable_metadata()->mutable_fields())["nodelay"].set_string_value("true");
  auto connector = make_ss_connector(node);
  EXPECT_TRUE(connector.ok()) << connector.status();
  return std::move(*connector);
}

asio::awaitable<StreamPtr> dial(uint16_t port) {
  auto executor = co_await asio::this_coro::executor;
  tcp::socket socket(executor);
  co_await socket.async_connect({asio::ip::make_address("127.0.0.1"), port}, asio::use_awaitable);
  co_return std::make_unique<TcpStream>(std::move(socket));
}

// A stream to `target` through the ss server on `port`.
asio::awaitable<Result<StreamPtr>> open_through(Connector& connector, uint16_t port, std::string target) {
  auto tunnel = co_await dial(port);
  co_return co_await connector.connect(std::move(tunnel), Network::kTcp, target);
}

// Reads from `socket` for `wait`: what arrived, and whether the peer closed.
struct Heard {
  std::string bytes;
  bool closed = false;
};
asio::awaitable<Heard> listen_for(tcp::socket& socket, std::chrono::milliseconds wait) {
  Heard heard;
  asio::steady_timer timer(socket.get_executor());
  timer.expires_after(wait);
  char buffer[256];
  auto outcome = co_await (socket.async_read_some(asio::buffer(buffer), kUseTuple) || timer.async_wait(kUseTuple));
  if (outcome.index() == 0) {
    auto [error, n] = std::get<0>(outcome);
    heard.bytes.assign(buffer, n);
    heard.closed = static_cast<bool>(error);
  }
  co_return heard;
}

class SsTest : public ::testing::Test {
 protected:
  asio::io_context io;
  std::shared_ptr<HandlerContext> context = testing::direct_context();
  tcp::acceptor echo_acceptor = testing::loopback_acceptor(io);
  int echoed = 0;
  void SetUp() override { asio::co_spawn(io, testing::echo(echo_acceptor, echoed), asio::detached); }
};

TEST_F(SsTest, ConnectorAndHandlerCarryBytesForEveryMethod) {
  for (const char* method : {"aes-128-gcm", "aes-256-gcm", "chacha20-ietf-poly1305", "AEAD_AES_128_GCM"}) {
    auto handler = ss_handler(method, "secret");
    testing::ServedHandler served(io, *handler, *context);
    asio::co_spawn(io, served.serve(), asio::detached);
    auto connector = ss_connector(method, "secret");
    std::string blob = testing::payload(300 * 1024, 7);
    run_for(io, [&]() -> asio::awaitable<void> {
      auto stream = co_await open_through(*connector, served.port(), testing::address_of(echo_acceptor));
      EXPECT_TRUE(stream);
      if (!stream) co_return;
      std::string back = co_await testing::send_and_receive(**stream, blob);
      EXPECT_EQ(back.size(), blob.size()) << method;
      EXPECT_TRUE(back == blob) << method;
    }());
  }
}

TEST_F(SsTest, ReadsIntoBuffersSmallerThanAChunk) {
  auto handler = ss_handler("aes-128-gcm", "secret");
  testing::ServedHandler served(io, *handler, *context);
  asio::co_spawn(io, served.serve(), asio::detached);
  auto connector = ss_connector("aes-128-gcm", "secret");
  std::string blob = testing::payload(40000, 3);
  run_for(io, [&]() -> asio::awaitable<void> {
    auto stream = co_await open_through(*connector, served.port(), testing::address_of(echo_acceptor));
    EXPECT_TRUE(stream);
    if (!stream) co_return;
    co_await asio::async_write(**stream, asio::buffer(blob), kUseTuple);
    std::string back;
    char small[1000];
    while (back.size() < blob.size()) {
      auto [error, n] = co_await (*stream)->async_read_some(asio::buffer(small), kUseTuple);
      if (error) break;
      back.append(small, n);
    }
    EXPECT_EQ(back.size(), blob.size());
    if (back.size() != blob.size()) co_return;
    EXPECT_TRUE(back == blob) << "first difference at " << std::mismatch(back.begin(), back.end(), blob.begin()).first - back.begin();
  }());
}

TEST_F(SsTest, ConnectorSendsTheHeaderAloneWhenTheTargetSpeaksFirst) {
  auto handler = ss_handler("aes-128-gcm", "secret");
  testing::ServedHandler served(io, *handler, *context);
  asio::co_spawn(io, served.serve(), asio::detached);
  tcp::acceptor banner = testing::loopback_acceptor(io);
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto [error, socket] = co_await banner.async_accept(kUseTuple);
        if (error) co_return;
        const std::string greeting = "SSH-2.0-test\r\n";
        co_await asio::async_write(socket, asio::buffer(greeting), kUseTuple);
        char sink[64];
        co_await socket.async_read_some(asio::buffer(sink), kUseTuple);
      },
      asio::detached);
  auto connector = ss_connector("aes-128-gcm", "secret");
  run_for(io, [&]() -> asio::awaitable<void> {
    auto stream = co_await open_through(*connector, served.port(), testing::address_of(banner));
    EXPECT_TRUE(stream);
    if (!stream) co_return;
    char buffer[64];
    auto [error, n] = co_await (*stream)->async_read_some(asio::buffer(buffer), kUseTuple);
    EXPECT_FALSE(error) << error.message();
    EXPECT_EQ(std::string(buffer, n), "SSH-2.0-test\r\n");
    (*stream)->close();
  }());
}

TEST_F(SsTest, NodelayConnectorWorksToo) {
  auto handler = ss_handler("chacha20-ietf-poly1305", "secret");
  testing::ServedHandler served(io, *handler, *context);
  asio::co_spawn(io, served.serve(), asio::detached);
  auto connector = ss_connector("chacha20-ietf-poly1305", "secret", true);
  run_for(io, [&]() -> asio::awaitable<void> {
    auto stream = co_await open_through(*connector, served.port(), testing::address_of(echo_acceptor));
    EXPECT_TRUE(stream);
    if (!stream) co_return;
    const std::string ping = "ping";
    std::string back = co_await testing::send_and_receive(**stream, ping);
    EXPECT_EQ(back, "ping");
  }());
}

// The first bytes a client sends for `target` carrying `payload`.
std::string client_bytes(const std::string& method_name, const std::string& password, const std::string& target,
                         const std::string& payload) {
  auto method = *ss_wire::find_method(method_name);
  std::string key = ss_wire::password_to_key(password, method.key_size);
  std::string plain = *socks5::encode_address(*common::parse_host_port(target)) + payload;
  ss_wire::StreamEncryptor encryptor(method, key);
  std::string wire;
  encryptor.seal(std::span(reinterpret_cast<const uint8_t*>(plain.data()), plain.size()), wire);
  return wire;
}

asio::awaitable<tcp::socket> raw_connect(uint16_t port, const std::string& bytes) {
  auto executor = co_await asio::this_coro::executor;
  tcp::socket socket(executor);
  co_await socket.async_connect({asio::ip::make_address("127.0.0.1"), port}, asio::use_awaitable);
  co_await asio::async_write(socket, asio::buffer(bytes), kUseTuple);
  co_return socket;
}

TEST_F(SsTest, BadInputGetsNoReplyAndIsHeldOpen) {
  auto handler = ss_handler("aes-256-gcm", "secret");
  testing::ServedHandler served(io, *handler, *context);
  asio::co_spawn(io, served.serve(), asio::detached);
  std::string echo = testing::address_of(echo_acceptor);
  const std::string probes[] = {
      client_bytes("aes-256-gcm", "wrong", echo, "ping"),
      std::string(200, '\x5a'),
      client_bytes("aes-256-gcm", "secret", echo, "ping").substr(0, 32) + std::string(40, '\x01'),
  };
  for (const auto& probe : probes) {
    run_for(io, [&]() -> asio::awaitable<void> {
      auto socket = co_await raw_connect(served.port(), probe);
      auto heard = co_await listen_for(socket, std::chrono::milliseconds(300));
      EXPECT_TRUE(heard.bytes.empty());
      EXPECT_FALSE(heard.closed) << "held, not closed, so a prober learns nothing";
      // More junk is read and dropped.
      const std::string junk(100000, 'j');
      co_await asio::async_write(socket, asio::buffer(junk), kUseTuple);
      heard = co_await listen_for(socket, std::chrono::milliseconds(100));
      EXPECT_TRUE(heard.bytes.empty());
      EXPECT_FALSE(heard.closed);
    }());
  }
  EXPECT_EQ(echoed, 0);
}

TEST_F(SsTest, HeldConnectionIsClosedAtReadTimeout) {
  auto handler = ss_handler("aes-128-gcm", "secret", "300ms");
  testing::ServedHandler served(io, *handler, *context);
  asio::co_spawn(io, served.serve(), asio::detached);
  run_for(io, [&]() -> asio::awaitable<void> {
    auto socket = co_await raw_connect(served.port(), std::string(64, '\x33'));
    auto heard = co_await listen_for(socket, std::chrono::seconds(3));
    EXPECT_TRUE(heard.bytes.empty());
    EXPECT_TRUE(heard.closed) << "closed once readTimeout passed";
  }());
}

TEST_F(SsTest, ReplayedSaltIsRefused) {
  auto handler = ss_handler("aes-128-gcm", "secret");
  testing::ServedHandler served(io, *handler, *context);
  asio::co_spawn(io, served.serve(), asio::detached);
  std::string recorded = client_bytes("aes-128-gcm", "secret", testing::address_of(echo_acceptor), "ping");
  run_for(io, [&]() -> asio::awaitable<void> {
    auto first = co_await raw_connect(served.port(), recorded);
    auto answer = co_await listen_for(first, std::chrono::seconds(2));
    EXPECT_GE(answer.bytes.size(), 16u + 18 + 4 + 16) << "the original is answered (salt, length, \"ping\")";
    auto replay = co_await raw_connect(served.port(), recorded);
    auto heard = co_await listen_for(replay, std::chrono::milliseconds(300));
    EXPECT_TRUE(heard.bytes.empty());
    EXPECT_FALSE(heard.closed);
  }());
  EXPECT_EQ(echoed, 1);
}

TEST_F(SsTest, UnreachableTargetClosesTheConnection) {
  auto handler = ss_handler("aes-128-gcm", "secret");
  testing::ServedHandler served(io, *handler, *context);
  asio::co_spawn(io, served.serve(), asio::detached);
  std::string closed = testing::closed_loopback_address(io);
  run_for(io, [&]() -> asio::awaitable<void> {
    auto socket = co_await raw_connect(served.port(), client_bytes("aes-128-gcm", "secret", closed, "x"));
    auto heard = co_await listen_for(socket, std::chrono::seconds(3));
    EXPECT_TRUE(heard.closed);
  }());
}

TEST(SsConfig, RefusesMissingOrUnknownMethodAndBadKeySize) {
  config::v1::ServiceConfig service;
  EXPECT_FALSE(make_ss_handler(service).ok());
  service.mutable_handler()->mutable_auth()->set_username("rc4-md5");
  service.mutable_handler()->mutable_auth()->set_password("x");
  EXPECT_FALSE(make_ss_handler(service).ok());
  service.mutable_handler()->mutable_auth()->set_username("aes-128-gcm");
  EXPECT_TRUE(make_ss_handler(service).ok());
  auto& fields = *service.mutable_handler()->mutable_metadata()->mutable_fields();
  fields["key"].set_string_value("short");
  EXPECT_FALSE(make_ss_handler(service).ok());
  fields["key"].set_string_value("0123456789abcdef");
  EXPECT_TRUE(make_ss_handler(service).ok());
}

TEST(SsSaltFilter, RemembersRecentSaltsWithinItsBound) {
  SaltFilter filter(4);
  EXPECT_TRUE(filter.insert("a"));
  EXPECT_FALSE(filter.insert("a"));
  for (const char* salt : {"b", "c", "d", "e"}) EXPECT_TRUE(filter.insert(salt));
  EXPECT_FALSE(filter.insert("a")) << "still in the older generation";
  for (const char* salt : {"f", "g", "h", "i"}) EXPECT_TRUE(filter.insert(salt));
  EXPECT_TRUE(filter.insert("a")) << "forgotten after two generations";
}

}  // namespace
}  // namespace strait::agent
