#include "agent/relay/relay.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <vector>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "agent/net/buffers.h"
#include "agent/net/pipe_pool.h"
#include "agent/relay/silence_watch.h"

namespace strait::agent {
namespace {

using namespace asio::experimental::awaitable_operators;
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
constexpr size_t kSpliceChunk = 1 << 20;  // asks for all the pipe can hold

struct RelayState {
  Stream& client;
  Stream& target;
  SilenceDeadline deadline;
  RelayResult result;

  RelayState(Stream& client_stream, Stream& target_stream, const RelayOptions& options)
      : client(client_stream),
        target(target_stream),
        deadline(client_stream, target_stream, options.idle_timeout, options.half_close_timeout) {}

  void fail(error_code ec) {
    if (!result.error) result.error = ec;
    client.close();
    target.close();
  }
};

bool is_clean_end(const error_code& ec) { return ec == asio::error::eof; }

// Joins two plain TCP sockets with splice(2), both directions, as callbacks rather than
// coroutines: an idle spliced connection then costs one small object and two pending
// readiness waits, which keeps memory per idle connection low. A direction holds a pipe
// (or, when none can be had, a buffer) only while it has bytes not yet written.
class SpliceRelay {
 public:
  using Done = asio::any_completion_handler<void()>;

  SpliceRelay(RelayState& state, asio::ip::tcp::socket& client, asio::ip::tcp::socket& target)
      : state_(state),
        directions_{Direction{client, target, state.target, state.result.bytes_from_client},
                    Direction{target, client, state.client, state.result.bytes_to_client}} {}

  void start(Done done) {
    done_.emplace(std::move(done));
    for (auto& direction : directions_) direction.from.non_blocking(true);
    for (auto& direction : directions_) direction.to.non_blocking(true);
    for (auto& direction : directions_) wait_readable(direction);
  }

 private:
  struct Direction {
    Direction(asio::ip::tcp::socket& source, asio::ip::tcp::socket& sink, Stream& sink_stream, uint64_t& bytes)
        : from(source), to(sink), to_stream(sink_stream), counter(bytes) {}
    asio::ip::tcp::socket& from;
    asio::ip::tcp::socket& to;
    Stream& to_stream;
    uint64_t& counter;
    std::optional<SplicePipe> pipe;
    StreamBuffers::Buffer held;  // copy path: bytes read, not yet written
    // Sizes fit 32 bits: a pipe holds at most 1 MiB, a buffer 16 KiB.
    uint32_t in_pipe = 0;
    uint32_t held_offset = 0;
    uint32_t held_size = 0;
    bool asked_bigger_pipe = false;
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

  static bool would_block() { return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR; }

  void moved(Direction& d, size_t bytes) {
    d.counter += bytes;
    state_.deadline.activity();
  }

  // Moves bytes until the source has none (then waits for readability) or the
  // destination is full (then waits for writability).
  void pump(Direction& d) {
    for (;;) {
      while (d.in_pipe > 0) {
        ssize_t out = ::splice(d.pipe->read_end(), nullptr, d.to.native_handle(), nullptr, d.in_pipe,
                               SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (out < 0 && would_block()) return wait_writable(d);
        if (out <= 0) return fail(d, out == 0 ? asio::error::broken_pipe : last_error());
        d.in_pipe -= static_cast<uint32_t>(out);
        moved(d, static_cast<size_t>(out));
      }
      while (d.held_size > 0) {
        ssize_t out = ::send(d.to.native_handle(), d.held.get() + d.held_offset, d.held_size, MSG_NOSIGNAL);
        if (out < 0 && would_block()) return wait_writable(d);
        if (out < 0) return fail(d, last_error());
        d.held_offset += static_cast<uint32_t>(out);
        d.held_size -= static_cast<uint32_t>(out);
        moved(d, static_cast<size_t>(out));
      }
      if (!d.pipe && !d.held) d.pipe = PipePool::this_thread().take();
      ssize_t in = d.pipe ? ::splice(d.from.native_handle(), nullptr, d.pipe->write_end(), nullptr, kSpliceChunk,
                                     SPLICE_F_MOVE | SPLICE_F_NONBLOCK)
                          : read_into_buffer(d);
      if (in == 0) {
        release(d);
        d.to_stream.shutdown_send();
        state_.deadline.half_closed();
        return finish(d);
      }
      if (in < 0 && would_block()) {
        release(d);  // nothing in flight: an idle direction holds no pipe and no buffer
        return wait_readable(d);
      }
      if (in < 0) return fail(d, last_error());
      if (d.pipe) {
        d.in_pipe = static_cast<uint32_t>(in);
        // A full pipe: a bulk stream, which moves more per system call with a bigger pipe.
        if (d.in_pipe >= d.pipe->capacity() && !d.asked_bigger_pipe) {
          d.asked_bigger_pipe = true;
          PipePool::this_thread().grow(*d.pipe);
        }
      } else {
        d.held_offset = 0;
        d.held_size = static_cast<uint32_t>(in);
      }
    }
  }

  ssize_t read_into_buffer(Direction& d) {
    if (!d.held) d.held = StreamBuffers::this_thread().take();
    return ::recv(d.from.native_handle(), d.held.get(), StreamBuffers::kBufferSize, 0);
  }

  // Gives back an empty pipe or buffer.
  static void release(Direction& d) {
    if (d.pipe) {
      PipePool::this_thread().give_back(std::move(*d.pipe));
      d.pipe.reset();
    }
    StreamBuffers::this_thread().give_back(std::move(d.held));
  }

  static error_code last_error() { return {errno, boost::system::system_category()}; }

  void fail(Direction& d, const error_code& ec) {
    state_.fail(ec);  // closes both sockets, so the other direction's wait ends too
    if (d.pipe) {
      // Bytes left in it belong to this connection only: the pipe is closed, not reused.
      if (d.in_pipe > 0) {
        PipePool::this_thread().discard(std::move(*d.pipe));
        d.pipe.reset();
        d.in_pipe = 0;
      }
    }
    d.held_size = 0;
    release(d);
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

// A buffer from the thread's cache of the right size, for one read and its write.
template <typename Cache>
asio::awaitable<bool> copy_once(Stream& from, Stream& to, uint64_t& counter, RelayState& state) {
  auto& cache = Cache::this_thread();
  auto buffer = cache.take();
  auto [read_error, n] = co_await from.async_read_some(asio::buffer(buffer.get(), Cache::kBufferSize), kUseTuple);
  if (read_error) {
    cache.give_back(std::move(buffer));
    if (is_clean_end(read_error)) {
      to.shutdown_send();
      state.deadline.half_closed();
    } else {
      state.fail(read_error);
    }
    co_return false;
  }
  auto [write_error, written] = co_await asio::async_write(to, asio::buffer(buffer.get(), n), kUseTuple);
  cache.give_back(std::move(buffer));
  if (write_error) {
    state.fail(write_error);
    co_return false;
  }
  counter += written;
  state.deadline.activity();
  co_return true;
}

asio::awaitable<void> copy_direction(Stream& from, Stream& to, uint64_t& counter, RelayState& state) {
  const bool datagram = from.is_datagram();
  asio::ip::tcp::socket* socket = from.plain_tcp_socket();
  for (;;) {
    // A buffer is taken only once there is something to read: idle streams hold none.
    error_code ignored;
    if (socket == nullptr || socket->available(ignored) == 0) {
      auto [wait_error] = co_await from.async_wait_readable(kUseTuple);
      if (wait_error) {
        state.fail(wait_error);
        co_return;
      }
    }
    bool more = datagram ? co_await copy_once<DatagramBuffers>(from, to, counter, state)
                         : co_await copy_once<StreamBuffers>(from, to, counter, state);
    if (!more) co_return;
  }
}

// Apart from relay() so that its operator-&& temporaries are not part of the frame every
// spliced connection keeps for its whole life.
asio::awaitable<void> copy_both_directions(RelayState& state) {
  co_await (copy_direction(state.client, state.target, state.result.bytes_from_client, state) &&
            copy_direction(state.target, state.client, state.result.bytes_to_client, state));
}

bool spliceable(RelayState& state) {
  return state.client.plain_tcp_socket() != nullptr && state.target.plain_tcp_socket() != nullptr;
}

}  // namespace

asio::awaitable<RelayResult> relay(Stream& client, Stream& target, const RelayOptions& options) {
  RelayState state(client, target, options);
  if (spliceable(state)) {
    state.result.spliced = true;
    SpliceRelay splice(state, *client.plain_tcp_socket(), *target.plain_tcp_socket());
    co_await async_splice(splice);
  } else {
    co_await copy_both_directions(state);
  }
  state.result.idle_timeout = state.deadline.expired() && !state.deadline.expired_half_closed();
  state.result.half_close_timeout = state.deadline.expired_half_closed();
  if (state.deadline.expired()) state.result.error = {};
  co_return state.result;
}

}  // namespace strait::agent
