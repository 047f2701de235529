#include "agent/channel/kcp_session.h"

#include <gtest/gtest.h>

#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>

#include "agent/channel/kcp_socket.h"
#include "support/asio_test.h"
#include "unit/channel/kcp_test_support.h"

namespace strait::agent {
namespace {

using namespace asio::experimental::awaitable_operators;
using asio::ip::udp;
using testing::kUseTuple;
using testing::run_for;
using kcp_test::config_of;
using kcp_test::metadata;
using kcp_test::Pairs;

std::shared_ptr<kcp::PacketCrypt> crypt_of(const KcpConfig& config) {
  absl::Status error;
  return kcp::make_packet_crypt_with_key(config.crypt, config.derived_key, error, kcp::UnknownCrypt::kUseAes);
}

udp::socket loopback_socket(asio::io_context& io) { return udp::socket(io, {asio::ip::make_address("127.0.0.1"), 0}); }

// A user-space link between two UDP endpoints: forwards each datagram to the other side,
// dropping `loss_percent` of them (deterministic) and delivering every seventh one after the
// datagram that follows it. cut() drops everything from then on.
class LossyHop {
 public:
  LossyHop(asio::io_context& io, int loss_percent)
      : socket_(std::make_shared<KcpSocket>(loopback_socket(io), 4096)), loss_percent_(loss_percent) {
    socket_->start([this](std::span<uint8_t> datagram, const udp::endpoint& from) { forward(datagram, from); });
  }
  ~LossyHop() { socket_->close(); }
  void connect(udp::endpoint a, udp::endpoint b) {
    a_ = a;
    b_ = b;
  }
  udp::endpoint endpoint() { return socket_->socket().local_endpoint(); }
  void cut() { cut_ = true; }
  uint64_t dropped() const { return dropped_; }

 private:
  void forward(std::span<uint8_t> datagram, const udp::endpoint& from) {
    const udp::endpoint& to = from == a_ ? b_ : a_;
    state_ = state_ * 1103515245u + 12345u;
    if (cut_ || static_cast<int>((state_ >> 16) % 100) < loss_percent_) {
      ++dropped_;
      return;
    }
    if (++count_ % 7 == 0 && held_.empty()) {
      held_.assign(datagram.begin(), datagram.end());
      held_to_ = to;
      return;
    }
    socket_->send(datagram, &to);
    if (!held_.empty()) {
      socket_->send(held_, &held_to_);
      held_.clear();
    }
  }

  std::shared_ptr<KcpSocket> socket_;
  int loss_percent_;
  udp::endpoint a_, b_, held_to_;
  std::vector<uint8_t> held_;
  uint32_t state_ = 7;
  uint64_t count_ = 0;
  uint64_t dropped_ = 0;
  bool cut_ = false;
};

// One end: a socket that sends everything to the hop, and its session.
struct End {
  End(asio::io_context& io, const KcpConfig& config, udp::endpoint hop, uint32_t conversation)
      : socket(std::make_shared<KcpSocket>(loopback_socket(io), 4096)) {
    auto timers = std::make_shared<KcpTimers>(io.get_executor());
    session = KcpSession::create(
        timers, config, crypt_of(config), conversation,
        [socket = socket, hop](std::span<const uint8_t> packet) { socket->send(packet, &hop); }, "peer", "local");
    socket->start([weak = std::weak_ptr<KcpSession>(session)](std::span<uint8_t> datagram, const udp::endpoint&) {
      if (auto alive = weak.lock()) alive->on_datagram(datagram);
    });
    stream = session->stream();
  }
  ~End() {
    stream.reset();
    socket->close();
  }
  std::shared_ptr<KcpSocket> socket;
  std::shared_ptr<KcpSession> session;
  StreamPtr stream;
};

asio::awaitable<bool> write_all(Stream& to, const std::string& data) {
  auto [error, n] = co_await asio::async_write(to, asio::buffer(data), kUseTuple);
  co_return !error;
}

asio::awaitable<bool> read_expecting(Stream& from, const std::string& data) {
  std::string received(data.size(), '\0');
  auto [error, n] = co_await asio::async_read(from, asio::buffer(received), kUseTuple);
  co_return !error && received == data;
}

asio::awaitable<bool> send_and_check(Stream& from, Stream& to, const std::string& data) {
  auto [sent, got] = co_await (write_all(from, data) && read_expecting(to, data));
  co_return sent && got;
}

void exchange_over_lossy_link(const KcpConfig& config) {
  asio::io_context io;
  LossyHop hop(io, 5);
  End a(io, config, hop.endpoint(), 42);
  End b(io, config, hop.endpoint(), 42);
  hop.connect(a.socket->socket().local_endpoint(), b.socket->socket().local_endpoint());
  const std::string one = testing::payload(1 << 20, 1);
  const std::string two = testing::payload(1 << 20, 2);
  bool ok = run_for(
      io,
      [&]() -> asio::awaitable<bool> {
        auto [forward, backward] = co_await (send_and_check(*a.stream, *b.stream, one) &&
                                             send_and_check(*b.stream, *a.stream, two));
        co_return forward && backward;
      }(),
      std::chrono::seconds(60));
  EXPECT_TRUE(ok);
  EXPECT_GT(hop.dropped(), 0u);
  EXPECT_GT(a.session->control().counters().retransmits + b.session->control().counters().retransmits, 0u);
}

TEST(KcpSession, MovesOneMebibyteEachWayOverALossyReorderingLink) {
  exchange_over_lossy_link(config_of({{"kcp.key", "k"}}));
}

TEST(KcpSession, FecRebuildsLostPackets) {
  asio::io_context io;
  auto config = config_of({{"kcp.crypt", "salsa20"}, {"kcp.nocomp", "true"}});
  LossyHop hop(io, 5);
  End a(io, config, hop.endpoint(), 7);
  End b(io, config, hop.endpoint(), 7);
  hop.connect(a.socket->socket().local_endpoint(), b.socket->socket().local_endpoint());
  const std::string data = testing::payload(512 * 1024, 3);
  EXPECT_TRUE(run_for(io, send_and_check(*a.stream, *b.stream, data), std::chrono::seconds(60)));
  EXPECT_GT(b.session->counters().recovered, 0u);
}

TEST(KcpSession, WithoutCryptOrFec) {
  exchange_over_lossy_link(config_of({{"kcp.crypt", "null"}, {"kcp.datashard", "0"}, {"kcp.parityshard", "0"}}));
}

TEST(KcpSession, BadPacketsAreDroppedAndCounted) {
  asio::io_context io;
  auto config = config_of({{"kcp.key", "right"}});
  auto other = config_of({{"kcp.key", "wrong"}});
  auto timers = std::make_shared<KcpTimers>(io.get_executor());
  std::vector<std::vector<uint8_t>> sent;
  auto session = KcpSession::create(timers, config, crypt_of(config), 1, [](std::span<const uint8_t>) {}, "p", "l");
  auto foreign = KcpSession::create(timers, other, crypt_of(other), 1,
                                    [&](std::span<const uint8_t> p) { sent.emplace_back(p.begin(), p.end()); }, "p", "l");
  auto stream = foreign->stream();
  run_for(io, [&]() -> asio::awaitable<void> {
    const std::string hello = "hello";
    co_await asio::async_write(*stream, asio::buffer(hello), kUseTuple);
  }());
  ASSERT_FALSE(sent.empty());
  EXPECT_FALSE(session->on_datagram(sent.front()));
  EXPECT_EQ(session->counters().bad_crypt, 1u);
  std::vector<uint8_t> garbage(100, 0xab);
  EXPECT_FALSE(session->on_datagram(garbage));
  std::vector<uint8_t> tiny(3, 1);
  EXPECT_FALSE(session->on_datagram(tiny));
  EXPECT_EQ(session->counters().bad_crypt, 3u);
  EXPECT_EQ(session->control().readable_bytes(), 0u);
  EXPECT_FALSE(session->ended());
}

// A link that goes silent ends the stream after 3 keepalive intervals, with an error.
TEST(KcpSession, DeadLinkEndsTheStream) {
  asio::io_context io;
  auto config = config_of({{"kcp.keepalive", "1"}});
  LossyHop hop(io, 0);
  End a(io, config, hop.endpoint(), 9);
  End b(io, config, hop.endpoint(), 9);
  hop.connect(a.socket->socket().local_endpoint(), b.socket->socket().local_endpoint());
  auto error = run_for(
      io,
      [&]() -> asio::awaitable<error_code> {
        if (!co_await send_and_check(*a.stream, *b.stream, "ping")) co_return error_code{};
        hop.cut();
        char byte = 0;
        auto [read_error, n] = co_await b.stream->async_read_some(asio::buffer(&byte, 1), kUseTuple);
        co_return read_error;
      }(),
      std::chrono::seconds(15));
  EXPECT_EQ(error, asio::error::timed_out);
  EXPECT_TRUE(b.session->ended());
}

// A conversation that never hears a valid segment ends after the handshake timeout.
TEST(KcpSession, SilentPeerEndsAfterHandshakeTimeout) {
  asio::io_context io;
  auto config = config_of({{"handshakeTimeout", "300ms"}});
  auto timers = std::make_shared<KcpTimers>(io.get_executor());
  auto session = KcpSession::create(timers, config, crypt_of(config), 1, [](std::span<const uint8_t>) {}, "p", "l");
  auto stream = session->stream();
  auto error = run_for(io, [&]() -> asio::awaitable<error_code> {
    const std::string hello = "hello?";
    co_await asio::async_write(*stream, asio::buffer(hello), kUseTuple);
    char byte = 0;
    auto [read_error, n] = co_await stream->async_read_some(asio::buffer(&byte, 1), kUseTuple);
    co_return read_error;
  }());
  EXPECT_EQ(error, asio::error::timed_out);
  EXPECT_EQ(timers->sessions(), 0u);
}

// Cancelling a pending read (a deadline) leaves the session usable.
TEST(KcpSession, CancelledReadLeavesTheSessionUsable) {
  asio::io_context io;
  auto config = config_of({});
  LossyHop hop(io, 0);
  End a(io, config, hop.endpoint(), 11);
  End b(io, config, hop.endpoint(), 11);
  hop.connect(a.socket->socket().local_endpoint(), b.socket->socket().local_endpoint());
  bool ok = run_for(io, [&]() -> asio::awaitable<bool> {
    asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::milliseconds(50));
    char byte = 0;
    auto first = co_await (b.stream->async_read_some(asio::buffer(&byte, 1), kUseTuple) ||
                           timer.async_wait(kUseTuple));
    if (first.index() != 1) co_return false;
    co_return co_await send_and_check(*a.stream, *b.stream, "after");
  }());
  EXPECT_TRUE(ok);
}

}  // namespace
}  // namespace strait::agent
