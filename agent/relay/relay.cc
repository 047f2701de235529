#include "agent/relay/relay.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "agent/net/buffers.h"
#include "agent/net/pipe_pool.h"
#include "agent/relay/silence_watch.h"

namespace strait::agent {
namespace {

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

class RelayOperation;

// A counted reference to a relay operation. Each pending callback of the relay holds one, so
// the operation is freed with its last callback, also when an io_context is destroyed with
// them pending. Not atomic: a relay's callbacks all run on its streams' executor.
class RelayRef {
 public:
  explicit RelayRef(RelayOperation& operation);
  RelayRef(const RelayRef& other) : RelayRef(*other.operation_) {}
  RelayRef(RelayRef&& other) noexcept : operation_(std::exchange(other.operation_, nullptr)) {}
  RelayRef& operator=(const RelayRef&) = delete;
  RelayRef& operator=(RelayRef&&) = delete;
  ~RelayRef();

 private:
  RelayOperation* operation_;
};

// One relay: the streams it may own, its shared state and what to call at its end. The
// relay of the kind in use (splice or copy) is part of the same allocation (RelayOperationOf).
class RelayOperation {
 public:
  RelayOperation(StreamPtr owned_client, StreamPtr owned_target, Stream& client, Stream& target,
                 const RelayOptions& options, RelayFinished finished)
      : owned_client_(std::move(owned_client)),
        owned_target_(std::move(owned_target)),
        state(client, target, options),
        finished_(std::move(finished)) {}
  virtual ~RelayOperation() = default;
  RelayOperation(const RelayOperation&) = delete;
  RelayOperation& operator=(const RelayOperation&) = delete;

  RelayRef ref() { return RelayRef(*this); }

  // Both directions have ended: hands the result over. The owned streams go with the
  // operation's last reference, after `finished` has run.
  void both_finished() {
    auto& result = state.result;
    result.idle_timeout = state.deadline.expired() && !state.deadline.expired_half_closed();
    result.half_close_timeout = state.deadline.expired_half_closed();
    if (state.deadline.expired()) result.error = {};
    auto finished = std::move(finished_);
    std::move(finished)(result);
  }

 private:
  friend class RelayRef;
  // Declared first, destroyed last: the state below refers to them.
  StreamPtr owned_client_;
  StreamPtr owned_target_;

 public:
  RelayState state;

 private:
  RelayFinished finished_;
  uint32_t references_ = 0;
};

RelayRef::RelayRef(RelayOperation& operation) : operation_(&operation) { ++operation.references_; }

RelayRef::~RelayRef() {
  if (operation_ != nullptr && --operation_->references_ == 0) delete operation_;
}

template <typename Kind>
class RelayOperationOf final : public RelayOperation {
 public:
  template <typename... KindArgs>
  RelayOperationOf(StreamPtr owned_client, StreamPtr owned_target, Stream& client, Stream& target,
                   const RelayOptions& options, RelayFinished finished, KindArgs&... kind_args)
      : RelayOperation(std::move(owned_client), std::move(owned_target), client, target, options,
                       std::move(finished)),
        kind_(*this, kind_args...) {}

  void start() { kind_.start(); }

 private:
  Kind kind_;
};

// Joins two plain TCP sockets with splice(2), both directions, as callbacks rather than
// coroutines: an idle spliced connection then costs one small object and two pending
// readiness waits, which keeps memory per idle connection low. A direction holds a pipe
// (or, when none can be had, a buffer) only while it has bytes not yet written.
class SpliceRelay {
 public:
  SpliceRelay(RelayOperation& operation, asio::ip::tcp::socket& client, asio::ip::tcp::socket& target)
      : operation_(operation),
        state_(operation.state),
        directions_{Direction{client, target, state_.target, state_.result.bytes_from_client},
                    Direction{target, client, state_.client, state_.result.bytes_to_client}} {}

  void start() {
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
    d.from.async_wait(asio::ip::tcp::socket::wait_read, [this, &d, keep = operation_.ref()](const error_code& ec) {
      if (ec) return fail(d, ec);
      pump(d);
    });
  }

  void wait_writable(Direction& d) {
    d.to.async_wait(asio::ip::tcp::socket::wait_write, [this, &d, keep = operation_.ref()](const error_code& ec) {
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
    if (directions_[0].finished && directions_[1].finished) operation_.both_finished();
  }

  RelayOperation& operation_;
  RelayState& state_;
  Direction directions_[2];
};


// Copies between streams of any kind (TLS, WebSocket, mux streams, datagrams) with
// callbacks, as SpliceRelay does for two sockets: an idle connection keeps this object and
// two readiness waits, no coroutine frame and no buffer. A direction takes a buffer from the
// thread's cache once its source is readable and gives it back once the bytes are written.
class CopyRelay {
 public:
  explicit CopyRelay(RelayOperation& operation)
      : operation_(operation),
        state_(operation.state),
        directions_{Direction{state_.client, state_.target, state_.result.bytes_from_client},
                    Direction{state_.target, state_.client, state_.result.bytes_to_client}} {}

  void start() {
    for (auto& direction : directions_) next(direction);
  }

 private:
  struct Direction {
    Direction(Stream& source, Stream& sink, uint64_t& bytes)
        : from(source), to(sink), counter(bytes), datagram(source.is_datagram()) {}
    Stream& from;
    Stream& to;
    uint64_t& counter;
    const bool datagram;
    StreamBuffers::Buffer held;  // both caches hand out the same buffer type
    bool last_read_full = false;  // the last read filled the buffer
    bool finished = false;
  };

  // Reads at once after a read that filled the buffer (more is probably there: this spares a
  // readiness wait or an FIONREAD per buffer of a busy direction) or when a plain socket
  // already has bytes; else waits for some first, holding no buffer.
  void next(Direction& d) {
    if (d.last_read_full) return read(d);
    error_code ignored;
    if (auto* socket = d.from.plain_tcp_socket(); socket != nullptr && socket->available(ignored) > 0) {
      return read(d);
    }
    d.from.async_wait_readable([this, &d, keep = operation_.ref()](const error_code& ec) {
      if (ec) return fail(d, ec);
      read(d);
    });
  }

  void read(Direction& d) {
    size_t size = d.datagram ? DatagramBuffers::kBufferSize : StreamBuffers::kBufferSize;
    d.held = d.datagram ? DatagramBuffers::this_thread().take() : StreamBuffers::this_thread().take();
    d.from.async_read_some(asio::buffer(d.held.get(), size), [this, &d, size, keep = operation_.ref()](
                                                                  const error_code& ec, size_t n) {
      d.last_read_full = !ec && n == size;
      if (ec) {
        release(d);
        if (!is_clean_end(ec)) return fail(d, ec);
        d.to.shutdown_send();
        state_.deadline.half_closed();
        return finish(d);
      }
      asio::async_write(d.to, asio::buffer(d.held.get(), n), [this, &d, keep](
                                                                 const error_code& write_error, size_t written) {
        release(d);
        if (write_error) return fail(d, write_error);
        d.counter += written;
        state_.deadline.activity();
        next(d);
      });
    });
  }

  static void release(Direction& d) {
    if (!d.held) return;
    if (d.datagram) {
      DatagramBuffers::this_thread().give_back(std::move(d.held));
    } else {
      StreamBuffers::this_thread().give_back(std::move(d.held));
    }
  }

  void fail(Direction& d, const error_code& ec) {
    state_.fail(ec);  // closes both streams, so the other direction's wait ends too
    finish(d);
  }

  void finish(Direction& d) {
    d.finished = true;
    if (directions_[0].finished && directions_[1].finished) operation_.both_finished();
  }

  RelayOperation& operation_;
  RelayState& state_;
  Direction directions_[2];
};

// Starts the relay of the kind the two streams allow. From here on the operation lives as
// long as its pending callbacks.
void start_operation(StreamPtr owned_client, StreamPtr owned_target, Stream& client, Stream& target,
                     const RelayOptions& options, RelayFinished finished) {
  auto* client_socket = client.plain_tcp_socket();
  auto* target_socket = target.plain_tcp_socket();
  if (client_socket != nullptr && target_socket != nullptr) {
    auto* operation = new RelayOperationOf<SpliceRelay>(std::move(owned_client), std::move(owned_target), client,
                                                        target, options, std::move(finished), *client_socket,
                                                        *target_socket);
    operation->state.result.spliced = true;
    RelayRef starting = operation->ref();  // until start() has handed references to callbacks
    operation->start();
  } else {
    auto* operation = new RelayOperationOf<CopyRelay>(std::move(owned_client), std::move(owned_target), client,
                                                      target, options, std::move(finished));
    RelayRef starting = operation->ref();
    operation->start();
  }
}

}  // namespace

asio::awaitable<RelayResult> relay(Stream& client, Stream& target, const RelayOptions& options) {
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(RelayResult)>(
      [&client, &target, &options](auto handler) {
        start_operation(nullptr, nullptr, client, target, options,
                        [handler = std::move(handler)](const RelayResult& result) mutable {
                          std::move(handler)(result);
                        });
      },
      asio::use_awaitable);
}

void start_relay(StreamPtr client, StreamPtr target, const RelayOptions& options, RelayFinished finished) {
  Stream& client_stream = *client;
  Stream& target_stream = *target;
  start_operation(std::move(client), std::move(target), client_stream, target_stream, options, std::move(finished));
}

}  // namespace strait::agent
