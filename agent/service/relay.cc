#include "agent/service/relay.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <vector>

#include <boost/asio/any_completion_handler.hpp>
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

// Joins two plain TCP sockets with splice(2), both directions, as callbacks rather than
// coroutines: an idle spliced connection then costs one small object and two pending
// readiness waits, which keeps memory per idle connection low.
class SpliceRelay {
 public:
  using Done = asio::any_completion_handler<void()>;

  SpliceRelay(RelayState& state, asio::ip::tcp::socket& client, asio::ip::tcp::socket& target)
      : state_(state),
        directions_{Direction{client, target, state.target, state.result.bytes_from_client, {}, 0, false},
                    Direction{target, client, state.client, state.result.bytes_to_client, {}, 0, false}} {}

  void start(Done done) {
    done_.emplace(std::move(done));
    for (auto& direction : directions_) direction.from.non_blocking(true);
    for (auto& direction : directions_) wait_readable(direction);
  }

 private:
  struct Direction {
    asio::ip::tcp::socket& from;
    asio::ip::tcp::socket& to;
    Stream& to_stream;
    uint64_t& counter;
    SplicePipe pipe;
    size_t in_pipe = 0;
    bool finished = false;
  };

  void wait_readable(Direction& d) {
    d.from.async_wait(asio::ip::tcp::socket::wait_read, [this, &d](const error_code& ec) {
      if (ec) return fail(d, ec);
      pump(d);
    });
  }

  void wait_writable(Direction& d) {
    d.to.async_wait(asio::ip::tcp::socket::wait_write, [this, &d](const error_code& ec) {
      if (ec) return fail(d, ec);
      pump(d);
    });
  }

  // Moves bytes until the source has none (then waits for readability) or the
  // destination is full (then waits for writability).
  void pump(Direction& d) {
    for (;;) {
      while (d.in_pipe > 0) {
        ssize_t out = ::splice(d.pipe.read_end(), nullptr, d.to.native_handle(), nullptr, d.in_pipe,
                               SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (out < 0 && (errno == EAGAIN || errno == EINTR)) return wait_writable(d);
        if (out <= 0) return fail(d, out == 0 ? asio::error::broken_pipe : last_error());
        d.in_pipe -= static_cast<size_t>(out);
        d.counter += static_cast<uint64_t>(out);
        state_.last_activity = Clock::now();
      }
      if (!d.pipe.open()) return fail(d, last_error());
      ssize_t in = ::splice(d.from.native_handle(), nullptr, d.pipe.write_end(), nullptr, kSpliceChunk,
                            SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (in == 0) {
        d.to_stream.shutdown_send();
        return finish(d);
      }
      if (in < 0 && (errno == EAGAIN || errno == EINTR)) return wait_readable(d);
      if (in < 0) return fail(d, last_error());
      d.in_pipe = static_cast<size_t>(in);
    }
  }

  static error_code last_error() { return {errno, boost::system::system_category()}; }

  void fail(Direction& d, const error_code& ec) {
    state_.fail(ec);  // closes both sockets, so the other direction's wait ends too
    finish(d);
  }

  void finish(Direction& d) {
    d.finished = true;
    if (directions_[0].finished && directions_[1].finished && done_) {
      auto done = std::move(*done_);
      done_.reset();
      std::move(done)();
    }
  }

  RelayState& state_;
  Direction directions_[2];
  std::optional<Done> done_;
};

// An operation, not a coroutine: awaiting it adds no coroutine frame of our own.
auto async_splice(SpliceRelay& splice) {
  return asio::async_initiate<decltype(asio::use_awaitable), void()>(
      [&splice](auto handler) { splice.start(std::move(handler)); }, asio::use_awaitable);
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

bool spliceable(RelayState& state) {
  return state.client.plain_tcp_socket() != nullptr && state.target.plain_tcp_socket() != nullptr;
}

asio::awaitable<void> relay_both_directions(RelayState& state) {
  if (spliceable(state)) {
    state.result.spliced = true;
    SpliceRelay splice(state, *state.client.plain_tcp_socket(), *state.target.plain_tcp_socket());
    co_await async_splice(splice);
  } else {
    co_await (copy_direction(state.client, state.target, state.result.bytes_from_client, state) &&
              copy_direction(state.target, state.client, state.result.bytes_to_client, state));
  }
}

asio::awaitable<void> relay_until_idle(RelayState& state, std::chrono::nanoseconds idle_timeout) {
  co_await (relay_both_directions(state) || watch_idle(state, idle_timeout));
}

}  // namespace

asio::awaitable<RelayResult> relay(Stream& client, Stream& target, const RelayOptions& options) {
  RelayState state{client, target, Clock::now(), {}};
  if (options.idle_timeout.count() > 0) {
    co_await relay_until_idle(state, options.idle_timeout);
  } else if (spliceable(state)) {
    // The common case, inline: one frame fewer for every idle spliced connection.
    state.result.spliced = true;
    SpliceRelay splice(state, *client.plain_tcp_socket(), *target.plain_tcp_socket());
    co_await async_splice(splice);
  } else {
    co_await relay_both_directions(state);
  }
  if (state.result.idle_timeout) state.result.error = {};
  co_return state.result;
}

}  // namespace strait::agent
