#pragma once

// Shared by the smux session tests: sessions over loopback TCP, a raw socket playing the
// peer byte by byte, frame builders.

#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include <gtest/gtest.h>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "agent/channel/smux_session.h"
#include "agent/channel/tcp.h"
#include "support/asio_test.h"

namespace strait::agent::smux_test {

using namespace asio::experimental::awaitable_operators;
using namespace std::chrono_literals;
using asio::ip::tcp;
using testing::kUseTuple;
using testing::run_for;
using SessionPtr = std::shared_ptr<SmuxSession>;
using SharedStream = std::shared_ptr<Stream>;

inline smux::Config quiet(int version) {
  smux::Config config;
  config.version = version;
  config.keepalive_disabled = true;  // no NOP between the frames a test checks
  return config;
}

inline std::string frame(int version, uint8_t command, uint32_t id, std::string_view data = {}) {
  auto header =
      smux::encode_frame_header({static_cast<uint8_t>(version), command, static_cast<uint16_t>(data.size()), id});
  return std::string(header.begin(), header.end()) + std::string(data);
}

inline std::string update_frame(uint32_t id, uint32_t consumed, uint32_t window) {
  auto bytes = smux::encode_update(2, id, {consumed, window});
  return {bytes.begin(), bytes.end()};
}

struct SessionPair {
  SessionPtr client;
  SessionPtr server;
  void close() {
    client->close();
    server->close();
  }
};

inline asio::awaitable<SessionPair> session_pair(smux::Config client, smux::Config server) {
  auto sockets = co_await testing::tcp_pair();
  co_return SessionPair{SmuxSession::start(std::make_unique<TcpStream>(std::move(sockets.first)), true, client),
                        SmuxSession::start(std::make_unique<TcpStream>(std::move(sockets.second)), false, server)};
}

// A session facing a raw socket that plays the peer byte by byte.
struct RawPeer {
  SessionPtr session;
  tcp::socket raw;
};

inline asio::awaitable<RawPeer> raw_peer(bool session_is_client, smux::Config config) {
  auto sockets = co_await testing::tcp_pair();
  auto& mine = session_is_client ? sockets.first : sockets.second;
  auto& theirs = session_is_client ? sockets.second : sockets.first;
  co_return RawPeer{SmuxSession::start(std::make_unique<TcpStream>(std::move(mine)), session_is_client, config),
                    std::move(theirs)};
}

inline asio::awaitable<std::string> read_exactly(tcp::socket& socket, size_t size) {
  std::string out(size, '\0');
  auto [error, n] = co_await asio::async_read(socket, asio::buffer(out), kUseTuple);
  EXPECT_FALSE(error) << error.message();
  out.resize(n);
  co_return out;
}

// Reads until the stream ends; returns what came and how it ended.
inline asio::awaitable<std::pair<std::string, error_code>> read_all(Stream& stream) {
  std::string out;
  std::array<char, 16384> buffer;
  for (;;) {
    auto [error, n] = co_await stream.async_read_some(asio::buffer(buffer), kUseTuple);
    out.append(buffer.data(), n);
    if (error) co_return std::make_pair(std::move(out), error);
  }
}

// Counts spawned coroutines down; wait() returns when all have finished.
class Latch {
 public:
  Latch(asio::any_io_executor executor, int count)
      : executor_(executor), timer_(executor, asio::steady_timer::time_point::max()), count_(count) {}
  void spawn(asio::awaitable<void> task) {
    asio::co_spawn(executor_, std::move(task), [this](std::exception_ptr e) {
      if (e) failure_ = e;
      if (--count_ == 0) timer_.cancel();
    });
  }
  asio::awaitable<void> wait() {
    while (count_ > 0) co_await timer_.async_wait(kUseTuple);
    if (failure_) std::rethrow_exception(failure_);
  }

 private:
  asio::any_io_executor executor_;
  asio::steady_timer timer_;
  int count_;
  std::exception_ptr failure_;
};

}  // namespace strait::agent::smux_test
