#include "agent/channel/ws_stream.h"

#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <optional>
#include <tuple>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include "agent/channel/tls_stream.h"
#include "agent/net/buffers.h"
#include "common/io_operation.h"

namespace strait::agent {
namespace {

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
// A closing WebSocket waits this long for the peer's close frame before dropping the socket.
constexpr auto kCloseGrace = std::chrono::seconds(1);
// A data frame carries at most a relay buffer: a relay read is one frame and one write below.
constexpr size_t kMaxFramePayload = StreamBuffers::kBufferSize;
// What a closing connection reads at a time while it waits for the peer's close frame.
constexpr size_t kDrainChunk = 512;

using common::IoResult;
using Clock = std::chrono::steady_clock;

// The stream below as asio::async_write sees it: a frame's header and payload go out in one
// system call where the stream allows it, gathered into one sendmsg(2) on a plain socket or
// into one flush of TLS records on a TLS stream.
class GatheredWriter {
 public:
  using executor_type = Stream::executor_type;

  explicit GatheredWriter(Stream& stream)
      : stream_(&stream), socket_(stream.plain_tcp_socket()), tls_(dynamic_cast<TlsStream*>(&stream)) {}

  executor_type get_executor() { return stream_->get_executor(); }

  template <typename ConstBuffers, typename Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return asio::async_initiate<Token, void(error_code, std::size_t)>(
        [this](auto handler, const ConstBuffers& some) {
          if (socket_ != nullptr) return socket_->async_write_some(some, std::move(handler));
          if (tls_ == nullptr) return stream_->async_write_some(some, std::move(handler));
          std::array<asio::const_buffer, 4> first;
          size_t count = 0;
          for (auto it = asio::buffer_sequence_begin(some); it != asio::buffer_sequence_end(some) && count < first.size();
               ++it) {
            if (asio::buffer_size(*it) > 0) first[count++] = *it;
          }
          tls_->write_some_gathered(std::span<const asio::const_buffer>(first.data(), count), std::move(handler));
        },
        token, buffers);
  }

 private:
  Stream* stream_;
  asio::ip::tcp::socket* socket_;  // set when the stream is a plain socket
  TlsStream* tls_;                 // set when the stream is TLS
};

// Everything a connection holds, shared with the operations in flight (a close frame may
// still be going out after the stream is gone). All of it lives on the stream's executor.
struct WsCore {
  WsCore(StreamPtr below_stream, WsStreamOptions options)
      : below(std::move(below_stream)),
        writer(*below),
        decoder(options.role),
        role(options.role),
        prefetched(std::move(options.prefetched)),
        last_heard(Clock::now()) {}

  std::optional<websocket::MaskKey> mask() const {
    if (role == websocket::Role::kServer) return std::nullopt;
    websocket::MaskKey key;
    if (RAND_bytes(key.data(), static_cast<int>(key.size())) != 1) {
      // The key only keeps a hostile page from steering an intermediary's cache; a failing
      // generator must not stop the data.
      uint32_t fallback = static_cast<uint32_t>(Clock::now().time_since_epoch().count());
      std::memcpy(key.data(), &fallback, key.size());
    }
    return key;
  }

  // One frame at a time on the wire: a pong or a close waits for the data frame being
  // written, and the next data frame for them.
  asio::awaitable<void> acquire_turn() {
    while (writing) {
      // Made on first contention only: a timer is memory an idle connection would keep.
      if (!turn) turn = std::make_unique<asio::steady_timer>(below->get_executor(), Clock::time_point::max());
      co_await turn->async_wait(kUseTuple);
    }
    writing = true;
  }
  void release_turn() {
    writing = false;
    if (turn) turn->cancel();
  }
  // Moves bytes read past the handshake into `out`; how many.
  size_t take_prefetched(std::span<uint8_t> out) {
    size_t n = std::min(prefetched.size(), out.size());
    if (n == 0) return 0;
    std::memcpy(out.data(), prefetched.data(), n);
    prefetched.erase(0, n);
    if (prefetched.empty()) std::string().swap(prefetched);
    return n;
  }
  // A control frame; nothing but our close frame itself goes after our close frame.
  asio::awaitable<error_code> write_control(uint8_t frame_opcode, std::string payload) {
    co_await acquire_turn();
    error_code ec;
    if (frame_opcode == websocket::opcode::kClose || !close_sent) {
      std::string frame = websocket::control_frame(frame_opcode, payload, mask());
      std::tie(ec, std::ignore) = co_await asio::async_write(writer, asio::buffer(frame), kUseTuple);
    }
    release_turn();
    co_return ec;
  }

  StreamPtr below;
  GatheredWriter writer;
  websocket::FrameDecoder decoder;
  websocket::Role role;
  std::string prefetched;
  Clock::time_point last_heard;  // the last bytes from the peer, or the start of the read awaiting them
  bool writing = false;
  std::unique_ptr<asio::steady_timer> turn;  // wakes writers waiting for their turn
  std::string pong_payload;                  // the last ping's, while its pong waits
  bool pong_queued = false;
  bool close_sent = false;
  bool peer_closed = false;  // its close frame came, or it broke the protocol
  bool closing = false;      // close() was called
  bool reading = false;      // a read below is in flight
  std::unique_ptr<asio::steady_timer> keepalive;
};

void report_unexpected(std::exception_ptr failure) {
  if (failure) spdlog::error("ws: a frame write ended by an unexpected exception");
}

// Answers pings with one pong for the latest, so a peer that pings without reading costs
// one queued frame, not one per ping (RFC 6455 §5.5.3 allows it).
void answer_ping(const std::shared_ptr<WsCore>& core, std::string payload) {
  core->pong_payload = std::move(payload);
  if (core->pong_queued || core->close_sent) return;
  core->pong_queued = true;
  asio::co_spawn(
      core->below->get_executor(),
      [](std::shared_ptr<WsCore> owner) -> asio::awaitable<void> {
        co_await owner->acquire_turn();
        owner->pong_queued = false;
        if (owner->close_sent) {  // nothing may follow a close frame
          owner->release_turn();
          co_return;
        }
        std::string frame = websocket::control_frame(websocket::opcode::kPong, owner->pong_payload, owner->mask());
        co_await asio::async_write(owner->writer, asio::buffer(frame), kUseTuple);
        owner->release_turn();
      }(core),
      report_unexpected);
}

// Reads and drops frames until the peer's close frame, the end of the stream or an error.
asio::awaitable<void> drain_until_close(std::shared_ptr<WsCore> core) {
  std::array<uint8_t, kDrainChunk> chunk;
  while (!core->peer_closed) {
    size_t n = core->take_prefetched(chunk);
    if (n == 0) {
      auto [ec, got] = co_await core->below->async_read_some(asio::buffer(chunk), kUseTuple);
      if (ec) co_return;
      n = got;
    }
    auto result = core->decoder.decode(std::span(chunk.data(), n));
    if (result.closed || !result.error.empty()) core->peer_closed = true;
  }
}

// Sends our close frame with `code` unless one went already; then, if `end` is set, waits
// for the peer's (unless it came, or a reader is on the stream and will see it) and drops
// the connection. A peer that neither reads nor answers is dropped after kCloseGrace.
asio::awaitable<void> close_handshake(std::shared_ptr<WsCore> core, uint16_t code, bool end) {
  asio::steady_timer grace(core->below->get_executor(), kCloseGrace);
  grace.async_wait([core](error_code ec) {
    if (!ec) core->below->close();
  });
  if (!core->close_sent) {
    core->close_sent = true;
    co_await core->write_control(websocket::opcode::kClose, websocket::close_payload(code));
  }
  if (end) {
    if (!core->reading) co_await drain_until_close(core);
    // A close frame queued behind a data frame goes out before the connection ends.
    co_await core->acquire_turn();
    core->release_turn();
    core->below->close();
  }
  grace.cancel();
}

void start_close_handshake(const std::shared_ptr<WsCore>& core, uint16_t code, bool end) {
  asio::co_spawn(core->below->get_executor(), close_handshake(core, code, end), [](std::exception_ptr failure) {
    if (failure) spdlog::error("ws: the closing handshake ended by an unexpected exception");
  });
}

asio::awaitable<void> keep_alive(std::shared_ptr<WsCore> core, std::chrono::nanoseconds interval) {
  while (!core->closing && !core->peer_closed) {
    core->keepalive->expires_after(interval);
    auto [ec] = co_await core->keepalive->async_wait(kUseTuple);
    if (ec || core->closing || core->peer_closed) co_return;
    // Silence counts only while a read waits: a reader that stopped (its target is slow)
    // has not heard the peer, but the peer may well be there.
    if (core->reading && Clock::now() - core->last_heard >= 2 * interval) {
      spdlog::info("ws: {} sent nothing for two keepalive intervals; closing", core->below->remote_address());
      core->peer_closed = true;
      core->below->close();
      co_return;
    }
    if (co_await core->write_control(websocket::opcode::kPing, {})) co_return;
  }
}

class WsStream final : public Stream {
 public:
  WsStream(StreamPtr below, WsStreamOptions options) {
    auto interval = options.ping_interval;
    core_ = std::make_shared<WsCore>(std::move(below), std::move(options));
    if (interval.count() > 0) {
      core_->keepalive = std::make_unique<asio::steady_timer>(core_->below->get_executor());
      asio::co_spawn(core_->below->get_executor(), keep_alive(core_, interval), [](std::exception_ptr failure) {
        if (failure) spdlog::error("ws: the keepalive ended by an unexpected exception");
      });
    }
  }
  ~WsStream() override { close(); }

  executor_type get_executor() override { return core_->below->get_executor(); }
  // WebSocket has no half close: the end of our data is told with the close frame, which
  // ends the peer's sending too once it has answered (GOST ends the whole connection at the
  // first end of stream). Without it the far end would never learn that the client is done.
  // Reads go on until the peer's close frame.
  void shutdown_send() override {
    if (!core_->close_sent) start_close_handshake(core_, websocket::close_code::kNormal, false);
  }
  // Our close frame if it did not go yet, then the peer's (read and dropped, unless a read is
  // still pending and will see it), then the socket: at once if the peer answers, else after
  // a grace. Dropping the socket at once instead would leave the peer a reset, not an end.
  void close() override {
    if (core_->closing) return;
    core_->closing = true;
    if (core_->keepalive) core_->keepalive->cancel();
    start_close_handshake(core_, websocket::close_code::kNormal, true);
  }
  std::string remote_address() const override { return core_->below->remote_address(); }
  std::string local_address() const override { return core_->below->local_address(); }

 protected:
  void do_read_some(asio::mutable_buffer buffer, common::IoHandler handler) override {
    common::complete_with(get_executor(), read(core_, buffer), std::move(handler));
  }
  void do_write_some(asio::const_buffer buffer, common::IoHandler handler) override {
    common::complete_with(get_executor(), write(core_, buffer), std::move(handler));
  }
  void do_wait_readable(common::WaitHandler handler) override {
    if (!core_->prefetched.empty() || core_->peer_closed) {
      asio::post(get_executor(), [handler = std::move(handler)]() mutable { std::move(handler)(error_code{}); });
      return;
    }
    core_->below->async_wait_readable(std::move(handler));
  }

 private:
  static asio::awaitable<IoResult> read(std::shared_ptr<WsCore> core, asio::mutable_buffer out) {
    std::span<uint8_t> bytes(static_cast<uint8_t*>(out.data()), out.size());
    if (bytes.empty()) co_return IoResult{error_code{}, 0};
    for (;;) {
      if (core->peer_closed) co_return IoResult{asio::error::eof, 0};
      size_t n = core->take_prefetched(bytes);
      if (n == 0) {
        core->reading = true;
        core->last_heard = Clock::now();
        auto [ec, got] = co_await core->below->async_read_some(out, kUseTuple);
        core->reading = false;
        if (ec) co_return IoResult{ec, 0};
        n = got;
      }
      core->last_heard = Clock::now();
      auto result = core->decoder.decode(bytes.first(n));
      if (result.ping) answer_ping(core, std::move(*result.ping));
      if (!result.error.empty()) {
        spdlog::info("ws: {} broke the protocol: {}; closing", core->below->remote_address(), result.error);
        core->peer_closed = true;
        start_close_handshake(core, websocket::close_code::kProtocolError, true);
        co_return IoResult{asio::error::connection_aborted, 0};
      }
      if (result.closed) {
        core->peer_closed = true;
        // The answer to its close frame; the connection ends when our owner closes us.
        start_close_handshake(core, websocket::close_code::kNormal, core->closing);
      }
      if (result.payload > 0) co_return IoResult{error_code{}, result.payload};
    }
  }

  static asio::awaitable<IoResult> write(std::shared_ptr<WsCore> core, asio::const_buffer in) {
    if (core->close_sent || core->peer_closed) co_return IoResult{asio::error::broken_pipe, 0};
    const size_t size = std::min(in.size(), kMaxFramePayload);
    co_await core->acquire_turn();
    if (core->close_sent) {
      core->release_turn();
      co_return IoResult{asio::error::broken_pipe, 0};
    }
    websocket::HeaderBytes header;
    auto mask = core->mask();
    size_t header_size = websocket::encode_header(websocket::opcode::kBinary, size, mask, header);
    error_code ec;
    if (mask) {
      // A client's payload is masked in a pooled buffer, taken only for this write.
      auto masked = StreamBuffers::this_thread().take();
      std::memcpy(masked.get(), in.data(), size);
      websocket::apply_mask(std::span(masked.get(), size), *mask, 0);
      std::tie(ec, std::ignore) = co_await asio::async_write(
          core->writer, std::array{asio::const_buffer(header.data(), header_size), asio::const_buffer(masked.get(), size)},
          kUseTuple);
      StreamBuffers::this_thread().give_back(std::move(masked));
    } else {
      std::tie(ec, std::ignore) = co_await asio::async_write(
          core->writer, std::array{asio::const_buffer(header.data(), header_size), asio::const_buffer(in.data(), size)},
          kUseTuple);
    }
    core->release_turn();
    co_return IoResult{ec, ec ? 0 : size};
  }

  std::shared_ptr<WsCore> core_;
};

}  // namespace

StreamPtr make_ws_stream(StreamPtr below, WsStreamOptions options) {
  return std::make_unique<WsStream>(std::move(below), std::move(options));
}

}  // namespace strait::agent
