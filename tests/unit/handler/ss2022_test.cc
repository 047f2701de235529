// Shadowsocks 2022 (SIP022/SIP023) through our ss/ssu handlers and connectors over loopback.
#include <gtest/gtest.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>

#include "absl/strings/escaping.h"
#include "agent/channel/udp.h"
#include "agent/connector/ss.h"
#include "agent/connector/ssu.h"
#include "agent/handler/ss.h"
#include "agent/handler/ssu.h"
#include "agent/protocol/shadowsocks2022_udp.h"
#include "agent/protocol/socks5.h"
#include "support/proxy_harness.h"
#include "support/stream_io.h"

namespace strait::agent {
namespace {

using asio::ip::tcp;
using asio::ip::udp;
using namespace asio::experimental::awaitable_operators;
using testing::kUseTuple;
using testing::run_for;

std::string psk(size_t size, char fill) { return absl::Base64Escape(std::string(size, fill)); }
std::span<const uint8_t> bytes_of(const std::string& text) {
  return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

config::v1::ServiceConfig service(const std::string& method, const std::string& password,
                                  const std::map<std::string, std::string>& users = {}) {
  config::v1::ServiceConfig config;
  config.mutable_handler()->mutable_auth()->set_username(method);
  config.mutable_handler()->mutable_auth()->set_password(password);
  auto& fields = *config.mutable_handler()->mutable_metadata()->mutable_fields();
  if (!users.empty()) fields["readTimeout"].set_string_value("5s");
  for (const auto& [name, key] : users) {
    (*fields["users"].mutable_struct_value()->mutable_fields())[name].set_string_value(key);
  }
  return config;
}

config::v1::NodeConfig node(const std::string& method, const std::string& password, bool nodelay = false) {
  config::v1::NodeConfig config;
  config.mutable_connector()->mutable_auth()->set_username(method);
  config.mutable_connector()->mutable_auth()->set_password(password);
  if (nodelay) (*config.mutable_connector()->mutable_metadata()->mutable_fields())["nodelay"].set_string_value("true");
  return config;
}

asio::awaitable<Result<StreamPtr>> open_through(Connector& connector, uint16_t port, std::string target) {
  auto executor = co_await asio::this_coro::executor;
  tcp::socket socket(executor);
  co_await socket.async_connect({asio::ip::make_address("127.0.0.1"), port}, asio::use_awaitable);
  co_return co_await connector.connect(std::make_unique<TcpStream>(std::move(socket)), Network::kTcp, target);
}

// What arrives on `stream` within `wait` (empty if nothing).
asio::awaitable<std::string> heard_within(Stream& stream, std::chrono::milliseconds wait) {
  asio::steady_timer timer(stream.get_executor());
  timer.expires_after(wait);
  char buffer[256];
  auto outcome = co_await (stream.async_read_some(asio::buffer(buffer), kUseTuple) || timer.async_wait(kUseTuple));
  if (outcome.index() != 0) co_return std::string();
  auto [error, n] = std::get<0>(outcome);
  co_return std::string(buffer, n);
}

class Ss2022Test : public ::testing::Test {
 protected:
  asio::io_context io;
  std::shared_ptr<HandlerContext> context = testing::direct_context();
  tcp::acceptor echo_acceptor = testing::loopback_acceptor(io);
  int echoed = 0;
  void SetUp() override { asio::co_spawn(io, testing::echo(echo_acceptor, echoed), asio::detached); }

  std::unique_ptr<Handler> handler(const config::v1::ServiceConfig& config) {
    auto made = make_ss_handler(config);
    EXPECT_TRUE(made.ok()) << made.status();
    return made.ok() ? *std::move(made) : nullptr;
  }
  std::unique_ptr<Connector> connector(const config::v1::NodeConfig& config) {
    auto made = make_ss_connector(config);
    EXPECT_TRUE(made.ok()) << made.status();
    return made.ok() ? *std::move(made) : nullptr;
  }
};

TEST_F(Ss2022Test, CarriesAMegabyteEachWayForEachMethod) {
  const std::pair<const char*, size_t> methods[] = {
      {"2022-blake3-aes-128-gcm", 16}, {"2022-blake3-aes-256-gcm", 32}, {"2022-blake3-chacha20-poly1305", 32}};
  for (const auto& [method, size] : methods) {
    std::string key = psk(size, 'k');
    auto server = handler(service(method, key));
    testing::ServedHandler served(io, *server, *context);
    asio::co_spawn(io, served.serve(), asio::detached);
    auto client = connector(node(method, key));
    std::string blob = testing::payload(1024 * 1024, 11);
    run_for(io, [&]() -> asio::awaitable<void> {
      auto stream = co_await open_through(*client, served.port(), testing::address_of(echo_acceptor));
      EXPECT_TRUE(stream);
      if (!stream) co_return;
      std::string back = co_await testing::send_and_receive(**stream, blob);
      EXPECT_EQ(back.size(), blob.size()) << method;
      EXPECT_TRUE(back == blob) << method;
    }());
  }
}

TEST_F(Ss2022Test, HeaderWithPaddingReachesATargetThatSpeaksFirst) {
  std::string key = psk(16, 'k');
  auto server = handler(service("2022-blake3-aes-128-gcm", key));
  testing::ServedHandler served(io, *server, *context);
  asio::co_spawn(io, served.serve(), asio::detached);
  tcp::acceptor banner = testing::loopback_acceptor(io);
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        for (;;) {
          auto [error, socket] = co_await banner.async_accept(kUseTuple);
          if (error) co_return;
          const std::string greeting = "220 ready\r\n";
          co_await asio::async_write(socket, asio::buffer(greeting), kUseTuple);
          char sink[64];
          co_await socket.async_read_some(asio::buffer(sink), kUseTuple);
        }
      },
      asio::detached);
  for (bool nodelay : {false, true}) {
    auto client = connector(node("2022-blake3-aes-128-gcm", key, nodelay));
    run_for(io, [&]() -> asio::awaitable<void> {
      auto stream = co_await open_through(*client, served.port(), testing::address_of(banner));
      EXPECT_TRUE(stream);
      if (!stream) co_return;
      EXPECT_EQ(co_await heard_within(**stream, std::chrono::seconds(3)), "220 ready\r\n") << nodelay;
      (*stream)->close();
    }());
  }
}

TEST_F(Ss2022Test, IdentityHeadersServeTwoUsersAndNoStranger) {
  std::string ipsk = psk(32, 'i');
  std::string alice = psk(32, 'a');
  std::string bob = psk(32, 'b');
  auto server = handler(service("2022-blake3-aes-256-gcm", ipsk, {{"alice", alice}, {"bob", bob}}));
  testing::ServedHandler served(io, *server, *context);
  asio::co_spawn(io, served.serve(), asio::detached);
  for (const std::string& user : {alice, bob}) {
    auto client = connector(node("2022-blake3-aes-256-gcm", ipsk + ":" + user));
    run_for(io, [&]() -> asio::awaitable<void> {
      auto stream = co_await open_through(*client, served.port(), testing::address_of(echo_acceptor));
      EXPECT_TRUE(stream);
      if (!stream) co_return;
      std::string back = co_await testing::send_and_receive(**stream, std::string(70000, 'u'));
      EXPECT_EQ(back, std::string(70000, 'u'));
    }());
  }
  EXPECT_EQ(echoed, 2);
  for (const std::string& password : {ipsk + ":" + psk(32, 'z'), alice, psk(32, 'i') + ":" + psk(32, 'i')}) {
    auto client = connector(node("2022-blake3-aes-256-gcm", password));
    run_for(io, [&]() -> asio::awaitable<void> {
      auto stream = co_await open_through(*client, served.port(), testing::address_of(echo_acceptor));
      EXPECT_TRUE(stream);
      if (!stream) co_return;
      const std::string ping = "ping";
      co_await asio::async_write(**stream, asio::buffer(ping), kUseTuple);
      EXPECT_EQ(co_await heard_within(**stream, std::chrono::milliseconds(300)), "") << password;
    }());
  }
  EXPECT_EQ(echoed, 2) << "no stranger reached the target";
}

asio::awaitable<tcp::socket> raw_connect(uint16_t port, const std::string& bytes) {
  auto executor = co_await asio::this_coro::executor;
  tcp::socket socket(executor);
  co_await socket.async_connect({asio::ip::make_address("127.0.0.1"), port}, asio::use_awaitable);
  co_await asio::async_write(socket, asio::buffer(bytes), kUseTuple);
  co_return socket;
}

// Reads `socket` for `wait`: the bytes, and whether it was closed.
asio::awaitable<std::pair<std::string, bool>> listen_for(tcp::socket& socket, std::chrono::milliseconds wait) {
  asio::steady_timer timer(socket.get_executor());
  timer.expires_after(wait);
  char buffer[256];
  auto outcome = co_await (socket.async_read_some(asio::buffer(buffer), kUseTuple) || timer.async_wait(kUseTuple));
  if (outcome.index() != 0) co_return std::pair<std::string, bool>{};
  auto [error, n] = std::get<0>(outcome);
  co_return std::pair<std::string, bool>{std::string(buffer, n), static_cast<bool>(error)};
}

// A request for the echo target as a client would send it, with the clock `skew` seconds off.
std::string request(const std::string& key, const std::string& target, int64_t skew, const std::string& payload) {
  const auto method = *ss_wire::find_method("2022-blake3-aes-128-gcm");
  std::string salt(16, '\0');
  for (auto& byte : salt) byte = static_cast<char>(std::rand());
  ss_wire::AeadCipher aead(method.cipher, ss_wire::session_subkey(method, key, bytes_of(salt)), true);
  std::string wire = salt;
  std::string variable =
      ss2022::variable_header(*socks5::encode_address(*common::parse_host_port(target)), {}, bytes_of(payload));
  ss2022::seal_request_head(aead, static_cast<uint64_t>(static_cast<int64_t>(ss2022::unix_now()) + skew),
                            bytes_of(variable), wire);
  return wire;
}

TEST_F(Ss2022Test, ProbesStaleAndReplayedRequestsGetNoReply) {
  std::string key(16, 'k');
  auto server = handler(service("2022-blake3-aes-128-gcm", absl::Base64Escape(key)));
  testing::ServedHandler served(io, *server, *context);
  asio::co_spawn(io, served.serve(), asio::detached);
  std::string echo = testing::address_of(echo_acceptor);
  std::string recorded = request(key, echo, 0, "ping");
  run_for(io, [&]() -> asio::awaitable<void> {
    auto original = co_await raw_connect(served.port(), recorded);
    auto answer = co_await listen_for(original, std::chrono::seconds(2));
    EXPECT_EQ(answer.first.size(), 16u + 1 + 8 + 16 + 2 + 16 + 4 + 16) << "salt, response header, \"ping\"";
    const std::string probes[] = {
        recorded,                                  // replayed salt
        request(key, echo, -40, "ping"),           // stale
        request(key, echo, 40, "ping"),            // from the future
        request(std::string(16, 'K'), echo, 0, "ping"),  // wrong key
        std::string(300, '\x5a'),                  // random bytes
        recorded.substr(0, 30),                    // a short start
    };
    for (const auto& probe : probes) {
      auto socket = co_await raw_connect(served.port(), probe);
      auto heard = co_await listen_for(socket, std::chrono::milliseconds(300));
      EXPECT_TRUE(heard.first.empty());
      EXPECT_FALSE(heard.second) << "held, not closed, so a prober learns nothing";
    }
  }());
  EXPECT_EQ(echoed, 1);
}

// An ssu service on a udp listener, each client session served by the handler.
class Ssu2022Test : public ::testing::Test {
 protected:
  void start(const config::v1::ServiceConfig& config) {
    auto made = make_ssu_handler(config);
    ASSERT_TRUE(made.ok()) << made.status();
    handler = std::move(*made);
    auto opened = make_udp_listener_factory()->listen(io.get_executor(), {.address = common::HostPort{"127.0.0.1", 0}});
    ASSERT_TRUE(opened);
    listener = std::move(*opened);
    server = "127.0.0.1:" + std::to_string(listener->bound_address().port);
    asio::co_spawn(io, serve(), asio::detached);
    asio::co_spawn(io, testing::udp_echo(echo), asio::detached);
  }
  void TearDown() override {
    if (listener) listener->close();
    echo.close();
    io.restart();
    io.run_for(std::chrono::milliseconds(200));
  }
  asio::awaitable<void> serve() {
    for (;;) {
      auto session = co_await listener->accept();
      if (!session) co_return;
      asio::co_spawn(io, handler->handle(std::move(*session), *context), asio::detached);
    }
  }
  // Sends each datagram through an ssu connector with `password`; what came back.
  std::vector<std::string> exchange(const std::string& method, const std::string& password,
                                    const std::vector<std::string>& datagrams) {
    auto connector = make_ssu_connector(node(method, password));
    EXPECT_TRUE(connector.ok()) << connector.status();
    std::vector<std::string> answers;
    if (!connector.ok()) return answers;
    auto dialer = make_udp_dialer();
    const DialOptions options;
    run_for(io, [&]() -> asio::awaitable<void> {
      auto tunnel = co_await dialer->dial(io.get_executor(), server, Network::kUdp, options);
      if (!tunnel) co_return;
      auto stream = co_await (*connector)->connect(std::move(*tunnel), Network::kUdp, testing::address_of(echo));
      if (!stream) co_return;
      // A datagram stream's read does not end on cancellation: a timer closes the stream
      // instead when no answer comes.
      auto closer = std::make_shared<asio::steady_timer>(io);
      closer->expires_after(std::chrono::seconds(2));
      closer->async_wait([stream = stream->get(), closer](boost::system::error_code error) {
        if (!error) stream->close();
      });
      for (const std::string& datagram : datagrams) {
        co_await (*stream)->async_write_some(asio::buffer(datagram), kUseTuple);
        char buffer[2048];
        auto [error, n] = co_await (*stream)->async_read_some(asio::buffer(buffer), kUseTuple);
        answers.push_back(error ? std::string() : std::string(buffer, n));
        if (error) break;
      }
      closer->cancel();
      (*stream)->close();
    }());
    return answers;
  }

  asio::io_context io;
  std::shared_ptr<HandlerContext> context = testing::direct_context();
  std::unique_ptr<Handler> handler;
  std::unique_ptr<Listener> listener;
  std::string server;
  udp::socket echo = testing::loopback_udp(io);
};

TEST_F(Ssu2022Test, ConnectorCarriesDatagramsBothWays) {
  std::string key = psk(32, 'k');
  start(service("2022-blake3-aes-256-gcm", key));
  std::vector<std::string> datagrams = {"one", std::string(1200, 'x'), "three"};
  EXPECT_EQ(exchange("2022-blake3-aes-256-gcm", key, datagrams), datagrams);
  EXPECT_EQ(exchange("2022-blake3-aes-256-gcm", psk(32, 'K'), {"wrong key"}), std::vector<std::string>{""});
}

TEST_F(Ssu2022Test, IdentityHeadersServeTwoUsers) {
  std::string ipsk = psk(16, 'i');
  start(service("2022-blake3-aes-128-gcm", ipsk, {{"alice", psk(16, 'a')}, {"bob", psk(16, 'b')}}));
  EXPECT_EQ(exchange("2022-blake3-aes-128-gcm", ipsk + ":" + psk(16, 'a'), {"from alice"}),
            std::vector<std::string>{"from alice"});
  EXPECT_EQ(exchange("2022-blake3-aes-128-gcm", ipsk + ":" + psk(16, 'b'), {"from bob"}),
            std::vector<std::string>{"from bob"});
  EXPECT_EQ(exchange("2022-blake3-aes-128-gcm", ipsk + ":" + psk(16, 'z'), {"stranger"}), std::vector<std::string>{""});
}

TEST_F(Ssu2022Test, ReplayedPacketIsDropped) {
  std::string key(16, 'k');
  start(service("2022-blake3-aes-128-gcm", absl::Base64Escape(key)));
  auto codec = ss2022::make_client_packet_codec(*ss_wire::find_method("2022-blake3-aes-128-gcm"), {key});
  std::string plain = *socks5::encode_address(*common::parse_host_port(testing::address_of(echo))) + "once";
  std::string packet = codec->seal(bytes_of(plain));
  udp::socket client = testing::loopback_udp(io);
  udp::endpoint to(asio::ip::make_address("127.0.0.1"), listener->bound_address().port);
  int answers = 0;
  run_for(io, [&]() -> asio::awaitable<void> {
    for (int i = 0; i < 2; ++i) {
      co_await client.async_send_to(asio::buffer(packet), to, kUseTuple);
      asio::steady_timer timer(client.get_executor());
      timer.expires_after(std::chrono::milliseconds(500));
      char buffer[512];
      udp::endpoint from;
      auto got = co_await (client.async_receive_from(asio::buffer(buffer), from, kUseTuple) || timer.async_wait(kUseTuple));
      if (got.index() == 0) {
        ++answers;
        auto [error, n] = std::get<0>(got);
        auto opened = codec->open(std::span(reinterpret_cast<const uint8_t*>(buffer), n));
        EXPECT_TRUE(opened && opened->ends_with("once"));
      }
    }
  }());
  EXPECT_EQ(answers, 1) << "the replay got no answer";
}

TEST(Ss2022Config, RefusesKeysOfTheWrongSizeNamingTheField) {
  auto refused = [](const absl::Status& status, const std::string& text) {
    EXPECT_FALSE(status.ok());
    EXPECT_NE(status.message().find(text), std::string::npos) << status.message();
  };
  refused(make_ss_handler(service("2022-blake3-aes-128-gcm", psk(32, 'k'))).status(), "password decodes to 32 bytes");
  refused(make_ss_handler(service("2022-blake3-aes-256-gcm", "not base64!")).status(), "password is not base64");
  refused(make_ss_handler(service("2022-blake3-aes-128-gcm", psk(16, 'k'), {{"carol", psk(8, 'c')}})).status(),
          "users.carol decodes to 8 bytes");
  refused(make_ss_handler(service("2022-blake3-aes-128-gcm", psk(16, 'k') + ":" + psk(16, 'u'))).status(),
          "one base64 PSK");
  refused(make_ss_connector(node("2022-blake3-aes-128-gcm", psk(16, 'i') + ":" + psk(15, 'u'))).status(),
          "password key 2 decodes to 15 bytes");
  refused(make_ss_connector(node("2022-blake3-chacha20-poly1305", psk(32, 'i') + ":" + psk(32, 'u'))).status(),
          "no identity headers");
  refused(make_ssu_handler(service("2022-blake3-chacha20-poly1305", psk(32, 'k'))).status(), "TCP only");
  EXPECT_TRUE(make_ss_connector(node("2022-blake3-aes-128-gcm", psk(16, 'i') + ":" + psk(16, 'u'))).ok());
}

}  // namespace
}  // namespace strait::agent
