#include "agent/channel/tls_stream.h"

#include <openssl/err.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "agent/net/buffers.h"

namespace strait::agent {
namespace {

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
// The most plaintext one SSL_write takes: one TLS record.
constexpr size_t kMaxRecordPlaintext = 16 * 1024;
// The most plaintext one write takes before its records go below: a relay buffer.
constexpr size_t kMaxGatheredPlaintext = StreamBuffers::kBufferSize;
constexpr size_t kSpareOutputs = 64;
constexpr size_t kMaxSpareCapacity = 64 * 1024;

using IoResult = std::tuple<error_code, size_t>;

error_code last_ssl_error() {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return asio::error::connection_reset;
  return error_code(static_cast<int>(code), asio::error::get_ssl_category());
}

}  // namespace

// Everything a TLS connection holds, shared by the stream and by the operations in flight,
// so that a close_notify still being written after the stream is gone touches live memory.
// All of it lives on the stream's executor.
struct TlsStream::Core {
  Core(StreamPtr below_stream, SSL* ssl_object) : below(std::move(below_stream)), ssl(ssl_object) {}
  ~Core() { SSL_free(ssl); }

  // Moves bytes OpenSSL wrote into `out` to the stream below; one write at a time, in order.
  asio::awaitable<error_code> flush() {
    while (!out.empty()) {
      if (flushing) {
        // Made on first need only: a timer is a hundred bytes an idle connection would keep.
        if (!flushed) {
          flushed = std::make_unique<asio::steady_timer>(below->get_executor(), asio::steady_timer::time_point::max());
        }
        co_await flushed->async_wait(kUseTuple);  // woken by cancel() when that write ends
        continue;
      }
      flushing = true;
      std::string sending = std::move(out);
      out = std::string();
      auto [ec, n] = co_await asio::async_write(*below, asio::buffer(sending), kUseTuple);
      give_back_output(std::move(sending));
      flushing = false;
      if (flushed) flushed->cancel();
      if (ec) co_return ec;
    }
    co_return error_code{};
  }

  // Reads what the stream below has into a pooled buffer, once it is readable. One read
  // below at a time: another caller (a read while a wait for readability peeks) waits for
  // that one to end, then its SSL call runs again on what came.
  asio::awaitable<error_code> fill(bool below_readable = false) {
    if (reading) {
      if (!filled) {
        filled = std::make_unique<asio::steady_timer>(below->get_executor(), asio::steady_timer::time_point::max());
      }
      uint64_t before = fills_ended;
      co_await filled->async_wait(kUseTuple);  // woken by cancel() when that read ends
      co_return fills_ended != before ? error_code{} : error_code(asio::error::operation_aborted);
    }
    release_input();  // OpenSSL took every byte: a wait below holds no buffer
    reading = true;
    auto done = [this](error_code ec) {
      reading = false;
      ++fills_ended;
      if (filled) filled->cancel();
      return ec;
    };
    // After a full buffer more is probably there: read at once. Otherwise wait first, so
    // that an idle connection waits without a buffer.
    if (!last_fill_full && !below_readable) {
      auto [wait_error] = co_await below->async_wait_readable(kUseTuple);
      if (wait_error) co_return done(wait_error);
    }
    if (!in) in = StreamBuffers::this_thread().take();
    auto [ec, n] = co_await below->async_read_some(asio::buffer(in.get(), StreamBuffers::kBufferSize), kUseTuple);
    last_fill_full = n == StreamBuffers::kBufferSize;
    if (ec == asio::error::eof) {
      below_eof = true;
      ec = {};
    }
    if (ec || n == 0) {
      done(ec);
      release_input();
      co_return ec;
    }
    in_begin = 0;
    in_end = n;
    co_return done(error_code{});
  }

  // Output buffers are reused through a per-thread cache: a record costs no allocation, and
  // an idle connection holds none.
  static std::string take_output() {
    auto& spare = spare_outputs();
    if (spare.empty()) return {};
    std::string buffer = std::move(spare.back());
    spare.pop_back();
    return buffer;
  }
  static void give_back_output(std::string buffer) {
    auto& spare = spare_outputs();
    if (spare.size() >= kSpareOutputs || buffer.capacity() > kMaxSpareCapacity) return;
    buffer.clear();
    spare.push_back(std::move(buffer));
  }
  static std::vector<std::string>& spare_outputs() {
    thread_local std::vector<std::string> spare;
    return spare;
  }

  // Gives the input buffer back once OpenSSL has taken every byte, unless a read below is
  // filling it right now.
  void release_input() {
    if (in_begin == in_end && in && !reading) StreamBuffers::this_thread().give_back(std::move(in));
  }

  // Runs `step` (an SSL call) until it succeeds, reading and writing below as OpenSSL asks.
  template <typename Step>
  asio::awaitable<std::tuple<error_code, int>> drive(Step step) {
    for (;;) {
      ERR_clear_error();
      int result = step();
      int error = result > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl, result);
      if (!out.empty()) {
        if (auto ec = co_await flush(); ec) co_return std::tuple{ec, result};
      }
      switch (error) {
        case SSL_ERROR_NONE:
          release_input();
          co_return std::tuple{error_code{}, result};
        case SSL_ERROR_WANT_READ:
          if (below_eof) co_return std::tuple{error_code(asio::error::eof), result};
          if (auto ec = co_await fill(); ec) co_return std::tuple{ec, result};
          continue;
        case SSL_ERROR_ZERO_RETURN:
          co_return std::tuple{error_code(asio::error::eof), result};
        default:
          co_return std::tuple{last_ssl_error(), result};
      }
    }
  }

  StreamPtr below;
  SSL* ssl;
  StreamBuffers::Buffer in;  // bytes from below OpenSSL has not taken yet: [in_begin, in_end)
  size_t in_begin = 0;
  size_t in_end = 0;
  bool below_eof = false;
  bool reading = false;
  bool last_fill_full = false;
  uint64_t fills_ended = 0;
  std::unique_ptr<asio::steady_timer> filled;  // wakes callers waiting for the read in progress
  std::string out;  // bytes OpenSSL wrote, not yet given to the stream below
  bool flushing = false;
  std::unique_ptr<asio::steady_timer> flushed;  // wakes flushes waiting for the one in progress
};

namespace {

int bio_write(BIO* bio, const char* data, size_t size, size_t* written) {
  auto* core = static_cast<TlsStream::Core*>(BIO_get_data(bio));
  if (core->out.capacity() == 0) core->out = TlsStream::Core::take_output();
  core->out.append(data, size);
  *written = size;
  return 1;
}

int bio_read(BIO* bio, char* data, size_t size, size_t* read) {
  auto* core = static_cast<TlsStream::Core*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  size_t available = core->in_end - core->in_begin;
  if (available == 0) {
    if (core->below_eof) return 0;
    BIO_set_retry_read(bio);
    return 0;
  }
  size_t n = std::min(size, available);
  std::memcpy(data, core->in.get() + core->in_begin, n);
  core->in_begin += n;
  *read = n;
  return 1;
}

long bio_ctrl(BIO*, int command, long, void*) {
  // OpenSSL flushes after each flight; our writes go out in Core::flush.
  return command == BIO_CTRL_FLUSH ? 1 : 0;
}

BIO_METHOD* stream_bio_method() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* made = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "strait stream");
    BIO_meth_set_write_ex(made, bio_write);
    BIO_meth_set_read_ex(made, bio_read);
    BIO_meth_set_ctrl(made, bio_ctrl);
    return made;
  }();
  return method;
}

// Completes `handler` with what `operation` (a coroutine over the core) returns; the
// handler's cancellation slot reaches the waits below.
template <typename Handler, typename Operation>
void run(const std::shared_ptr<TlsStream::Core>& core, Handler handler, Operation operation) {
  auto slot = asio::get_associated_cancellation_slot(handler);
  asio::co_spawn(core->below->get_executor(), std::move(operation),
                 asio::bind_cancellation_slot(slot, [handler = std::move(handler)](std::exception_ptr error,
                                                                                    auto result) mutable {
                   // Only an allocation can throw in there: fail this operation alone.
                   if (error) result = IoResult{asio::error::no_memory, 0};
                   std::apply(std::move(handler), std::move(result));
                 }));
}

// Application data OpenSSL has, after it took what was read below (when nothing was, it
// reads what `below_readable` says is there first): an empty result when the records
// carried none.
asio::awaitable<std::optional<error_code>> peek_data(std::shared_ptr<TlsStream::Core> core, bool below_readable) {
  if (core->in_begin == core->in_end && !core->below_eof) {
    if (auto ec = co_await core->fill(below_readable); ec) co_return ec;
  }
  ERR_clear_error();
  char byte;
  size_t peeked = 0;
  int result = SSL_peek_ex(core->ssl, &byte, 1, &peeked);
  int error = result > 0 ? SSL_ERROR_NONE : SSL_get_error(core->ssl, result);
  if (!core->out.empty()) {
    if (auto ec = co_await core->flush(); ec) co_return ec;
  }
  core->release_input();
  if (error == SSL_ERROR_WANT_READ && !core->below_eof) co_return std::nullopt;
  // Data, the end, or an error: the read that follows reports the last two.
  co_return error_code{};
}

void wait_below_then_peek(std::shared_ptr<TlsStream::Core> core, common::WaitHandler handler);

// Completes `handler` once OpenSSL has application data for a read, or the read would end or
// fail. Records without data (the session ticket a TLS 1.3 server sends after the handshake,
// a key update) do not complete it: an idle connection is not reported readable because of
// them, so a reader does not start a read and hold its buffer for data that is not coming.
void wait_for_data(std::shared_ptr<TlsStream::Core> core, common::WaitHandler handler, bool below_readable) {
  auto slot = asio::get_associated_cancellation_slot(handler);
  auto executor = core->below->get_executor();
  asio::co_spawn(executor, peek_data(core, below_readable),
                 asio::bind_cancellation_slot(slot, [core, handler = std::move(handler)](
                                                        std::exception_ptr error,
                                                        std::optional<error_code> ready) mutable {
                   if (error) return std::move(handler)(asio::error::no_memory);
                   if (ready) return std::move(handler)(*ready);
                   wait_below_then_peek(std::move(core), std::move(handler));
                 }));
}

// Waits below with no coroutine and no buffer held: what an idle connection costs.
void wait_below_then_peek(std::shared_ptr<TlsStream::Core> core, common::WaitHandler handler) {
  auto slot = asio::get_associated_cancellation_slot(handler);
  auto* below = core->below.get();
  below->async_wait_readable(
      asio::bind_cancellation_slot(slot, [core = std::move(core), handler = std::move(handler)](error_code ec) mutable {
        if (ec) return std::move(handler)(ec);
        wait_for_data(std::move(core), std::move(handler), true);
      }));
}

}  // namespace

TlsStream::TlsStream(StreamPtr below, SSL* ssl) : core_(std::make_shared<Core>(std::move(below), ssl)) {
  BIO* bio = BIO_new(stream_bio_method());
  BIO_set_data(bio, core_.get());
  BIO_set_init(bio, 1);
  SSL_set_bio(ssl, bio, bio);
  SSL_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE);
}

TlsStream::~TlsStream() { core_->below->close(); }

asio::awaitable<error_code> TlsStream::handshake() {
  auto core = core_;
  auto [ec, result] = co_await core->drive([ssl = core->ssl] { return SSL_do_handshake(ssl); });
  co_return ec;
}

SSL* TlsStream::ssl() { return core_->ssl; }

TlsStream::executor_type TlsStream::get_executor() { return core_->below->get_executor(); }

void TlsStream::shutdown_send() {
  SSL_shutdown(core_->ssl);
  asio::co_spawn(
      get_executor(),
      [](std::shared_ptr<Core> core) -> asio::awaitable<void> {
        if (!co_await core->flush()) core->below->shutdown_send();
      }(core_),
      [](std::exception_ptr) {});
}

void TlsStream::close() { core_->below->close(); }

std::string TlsStream::remote_address() const { return core_->below->remote_address(); }
std::string TlsStream::local_address() const { return core_->below->local_address(); }

void TlsStream::do_read_some(asio::mutable_buffer buffer, common::IoHandler handler) {
  run(core_, std::move(handler), [](std::shared_ptr<Core> core, asio::mutable_buffer into) -> asio::awaitable<IoResult> {
    if (into.size() == 0) co_return IoResult{error_code{}, 0};
    auto* data = static_cast<char*>(into.data());
    size_t total = 0;
    auto [ec, result] = co_await core->drive([&] {
      int first = SSL_read_ex(core->ssl, data, into.size(), &total);
      if (first <= 0) return first;
      // One record is at most 16 KiB: take every record already read from below, so that a
      // relay buffer leaves full and one read below feeds one write on the other side.
      while (total < into.size() && (core->in_begin < core->in_end || SSL_pending(core->ssl) > 0)) {
        size_t n = 0;
        // What came is reported; an error shows again on the next read.
        if (SSL_read_ex(core->ssl, data + total, into.size() - total, &n) <= 0) break;
        total += n;
      }
      ERR_clear_error();
      return 1;
    });
    co_return IoResult{ec, ec ? 0 : total};
  }(core_, buffer));
}

void TlsStream::do_write_some(asio::const_buffer buffer, common::IoHandler handler) {
  write_some_gathered(std::span<const asio::const_buffer>(&buffer, 1), std::move(handler));
}

void TlsStream::write_some_gathered(std::span<const asio::const_buffer> buffers, common::IoHandler handler) {
  Gathered gathered;
  for (const auto& buffer : buffers) {
    if (gathered.count == gathered.items.size()) break;
    if (buffer.size() > 0) gathered.items[gathered.count++] = buffer;
  }
  run(core_, std::move(handler), [](std::shared_ptr<Core> core, Gathered from) -> asio::awaitable<IoResult> {
    size_t total = 0;
    // Records for up to kMaxGatheredPlaintext go below in one write.
    auto [ec, result] = co_await core->drive([&] {
      for (size_t i = 0; i < from.count; ++i) {
        const char* data = static_cast<const char*>(from.items[i].data());
        size_t left = from.items[i].size();
        while (left > 0 && total < kMaxGatheredPlaintext) {
          size_t n = 0;
          int written = SSL_write_ex(core->ssl, data, std::min(left, kMaxRecordPlaintext), &n);
          // What went is reported; an error shows again on the next write.
          if (written <= 0) return total > 0 ? 1 : written;
          data += n;
          left -= n;
          total += n;
        }
      }
      return 1;
    });
    co_return IoResult{ec, ec ? 0 : total};
  }(core_, gathered));
}

void TlsStream::do_wait_readable(common::WaitHandler handler) {
  if (SSL_pending(core_->ssl) > 0 || core_->below_eof) {
    asio::post(get_executor(), [handler = std::move(handler)]() mutable { std::move(handler)(error_code{}); });
    return;
  }
  if (core_->in_begin < core_->in_end) return wait_for_data(core_, std::move(handler), false);
  wait_below_then_peek(core_, std::move(handler));
}

}  // namespace strait::agent
