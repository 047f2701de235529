#include "agent/service/relay.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace strait::agent {
namespace {

using namespace asio::experimental::awaitable_operators;
using Clock = std::chrono::steady_clock;
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
constexpr size_t kStreamBufferSize = 16 * 1024;
constexpr size_t kDatagramBufferSize = 64 * 1024;
constexpr size_t kSpliceChunk = 1 << 20;
// Per-thread cache of stream buffers: the data path of a thread never locks, and a buffer
// returns here when its connection goes quiet.
constexpr size_t kCachedBuffers = 64;

class BufferCache {
 public:
  std::unique_ptr<uint8_t[]> take() {
    if (free_.empty()) return std::make_unique<uint8_t[]>(kStreamBufferSize);
    auto buffer = std::move(free_.back());
    free_.pop_back();
    return buffer;
  }
  void give_back(std::unique_ptr<uint8_t[]> buffer) {
    if (buffer && free_.size() < kCachedBuffers) free_.push_back(std::move(buffer));
  }

 private:
  std::vector<std::unique_ptr<uint8_t[]>> free_;
};

thread_local BufferCache buffer_cache;

struct RelayState {
  Stream& client;
  Stream& target;
  Clock::time_point last_activity = Clock::now();
  RelayResult result;

  void fail(error_code ec) {
    if (!result.error) result.error = ec;
    client.close();
    target.close();
  }
};

bool is_clean_end(const error_code& ec) { return ec == asio::error::eof; }

// A one-direction pipe for splice(2): socket -> pipe -> socket, bytes never enter user space.
class SplicePipe {
 public:
  ~SplicePipe() {
    if (fds_[0] >= 0) ::close(fds_[0]);
    if (fds_[1] >= 0) ::close(fds_[1]);
  }
  bool open() {
    if (fds_[0] >= 0) return true;
    if (::pipe2(fds_, O_NONBLOCK | O_CLOEXEC) != 0) return false;
    ::fcntl(fds_[1], F_SETPIPE_SZ, static_cast<int>(kSpliceChunk));
    return true;
  }
  int read_end() const { return fds_[0]; }
  int write_end() const { return fds_[1]; }

 private:
  int fds_[2] = {-1, -1};
};

asio::awaitable<void> splice_direction(asio::ip::tcp::socket& from, asio::ip::tcp::socket& to, Stream& to_stream,
                                       uint64_t& counter, RelayState& state) {
  SplicePipe pipe;
  for (;;) {
    auto [wait_error] = co_await from.async_wait(asio::ip::tcp::socket::wait_read, kUseTuple);
    if (wait_error) {
      state.fail(wait_error);
      co_return;
    }
    if (!pipe.open()) {
      state.fail(error_code(errno, boost::system::system_category()));
      co_return;
    }
    ssize_t in = ::splice(from.native_handle(), nullptr, pipe.write_end(), nullptr, kSpliceChunk,
                          SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (in == 0) {
      to_stream.shutdown_send();
      co_return;
    }
    if (in < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      state.fail(error_code(errno, boost::system::system_category()));
      co_return;
    }
    while (in > 0) {
      ssize_t out = ::splice(pipe.read_end(), nullptr, to.native_handle(), nullptr, static_cast<size_t>(in),
                             SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (out < 0 && (errno == EAGAIN || errno == EINTR)) {
        auto [write_wait_error] = co_await to.async_wait(asio::ip::tcp::socket::wait_write, kUseTuple);
        if (write_wait_error) {
          state.fail(write_wait_error);
          co_return;
        }
        continue;
      }
      if (out <= 0) {
        state.fail(out == 0 ? asio::error::broken_pipe : error_code(errno, boost::system::system_category()));
        co_return;
      }
      in -= out;
      counter += static_cast<uint64_t>(out);
      state.last_activity = Clock::now();
    }
  }
}

asio::awaitable<void> copy_direction(Stream& from, Stream& to, uint64_t& counter, RelayState& state) {
  const bool datagram = from.is_datagram();
  std::unique_ptr<uint8_t[]> owned_datagram_buffer;
  std::unique_ptr<uint8_t[]> buffer;
  asio::ip::tcp::socket* waitable = from.plain_tcp_socket();
  for (;;) {
    if (waitable != nullptr && !buffer) {
      auto [wait_error] = co_await waitable->async_wait(asio::ip::tcp::socket::wait_read, kUseTuple);
      if (wait_error) {
        state.fail(wait_error);
        co_return;
      }
    }
    asio::mutable_buffer window;
    if (datagram) {
      if (!owned_datagram_buffer) owned_datagram_buffer = std::make_unique<uint8_t[]>(kDatagramBufferSize);
      window = asio::buffer(owned_datagram_buffer.get(), kDatagramBufferSize);
    } else {
      if (!buffer) buffer = buffer_cache.take();
      window = asio::buffer(buffer.get(), kStreamBufferSize);
    }
    auto [read_error, n] = co_await from.async_read_some(window, kUseTuple);
    if (read_error) {
      buffer_cache.give_back(std::move(buffer));
      if (is_clean_end(read_error)) {
        to.shutdown_send();
      } else {
        state.fail(read_error);
      }
      co_return;
    }
    auto [write_error, written] = co_await asio::async_write(to, asio::buffer(window.data(), n), kUseTuple);
    if (write_error) {
      buffer_cache.give_back(std::move(buffer));
      state.fail(write_error);
      co_return;
    }
    counter += written;
    state.last_activity = Clock::now();
    if (waitable != nullptr) {
      error_code ignored;
      if (waitable->available(ignored) == 0) buffer_cache.give_back(std::move(buffer));
    }
  }
}

asio::awaitable<void> watch_idle(RelayState& state, std::chrono::nanoseconds idle_timeout) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    auto deadline = state.last_activity + idle_timeout;
    if (Clock::now() >= deadline) {
      state.result.idle_timeout = true;
      state.client.close();
      state.target.close();
      co_return;
    }
    timer.expires_at(deadline);
    auto [ec] = co_await timer.async_wait(kUseTuple);
    if (ec) co_return;
  }
}

asio::awaitable<void> relay_both_directions(RelayState& state) {
  auto* client_socket = state.client.plain_tcp_socket();
  auto* target_socket = state.target.plain_tcp_socket();
  auto& result = state.result;
  if (client_socket != nullptr && target_socket != nullptr) {
    result.spliced = true;
    client_socket->non_blocking(true);
    target_socket->non_blocking(true);
    co_await (splice_direction(*client_socket, *target_socket, state.target, result.bytes_from_client, state) &&
              splice_direction(*target_socket, *client_socket, state.client, result.bytes_to_client, state));
  } else {
    co_await (copy_direction(state.client, state.target, result.bytes_from_client, state) &&
              copy_direction(state.target, state.client, result.bytes_to_client, state));
  }
}

}  // namespace

asio::awaitable<RelayResult> relay(Stream& client, Stream& target, const RelayOptions& options) {
  RelayState state{client, target, Clock::now(), {}};
  if (options.idle_timeout.count() > 0) {
    co_await (relay_both_directions(state) || watch_idle(state, options.idle_timeout));
  } else {
    co_await relay_both_directions(state);
  }
  if (state.result.idle_timeout) state.result.error = {};
  co_return state.result;
}

}  // namespace strait::agent
