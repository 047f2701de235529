#include "agent/wire/ss_stream.h"

#include <algorithm>
#include <memory>
#include <tuple>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include "agent/net/buffers.h"
#include "agent/protocol/proxy_error.h"
#include "common/io_operation.h"

namespace strait::agent {
namespace {

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
// As large as a relay buffer, both ways: a relay read of a full buffer is sealed into one
// write (four SIP004 chunks, one 2022 chunk) and its peer takes them in one read. Each
// system call here is a wake-up of the process on the other end of loopback; 16 KiB at a
// time spent half of the CPU on them.
constexpr size_t kReadChunk = StreamBuffers::kBufferSize;
constexpr size_t kMaxWrite = StreamBuffers::kBufferSize;

using common::IoResult;

std::span<const uint8_t> bytes_of(const std::string& text) {
  return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

class SsStream final : public Stream {
 public:
  SsStream(StreamPtr inner, SsStreamParts parts) {
    auto executor = inner->get_executor();
    state_ = std::make_shared<State>(std::move(inner), std::move(parts), executor);
    // SIP004: the target header; SIP022: the request header chunks (with padding if alone).
    if (state_->encryptor.first_seal_due() && state_->header_wait.count() > 0) {
      asio::co_spawn(executor, flush_header_later(state_), [](std::exception_ptr failure) {
        if (failure) spdlog::error("ss: sending the target header ended by an unexpected exception");
      });
    }
  }
  ~SsStream() override { close(); }

  executor_type get_executor() override { return state_->inner->get_executor(); }
  void shutdown_send() override { state_->inner->shutdown_send(); }
  void close() override {
    state_->closed = true;
    state_->header_timer.cancel();
    state_->inner->close();
  }
  std::string remote_address() const override { return state_->inner->remote_address(); }
  std::string local_address() const override { return state_->inner->local_address(); }

 protected:
  void do_read_some(asio::mutable_buffer buffer, common::IoHandler handler) override {
    common::complete_with(get_executor(), read(state_, buffer), std::move(handler));
  }
  void do_write_some(asio::const_buffer buffer, common::IoHandler handler) override {
    common::complete_with(get_executor(), write(state_, buffer), std::move(handler));
  }
  void do_wait_readable(common::WaitHandler handler) override {
    // Bytes already taken off the socket (a whole unit of the next chunk) make it readable
    // as much as the socket would.
    if (state_->plain.size() > state_->plain_offset ||
        (!state_->received.empty() && state_->received.size() >= state_->decryptor.next_unit_size())) {
      asio::post(get_executor(), [handler = std::move(handler)]() mutable { std::move(handler)(error_code{}); });
      return;
    }
    state_->inner->async_wait_readable(std::move(handler));
  }

 private:
  // Shared with pending operations, so that they finish safely if the stream goes first.
  struct State {
    State(StreamPtr stream, SsStreamParts parts, asio::any_io_executor executor)
        : inner(std::move(stream)),
          encryptor(std::move(parts.encryptor)),
          decryptor(std::move(parts.decryptor)),
          received(std::move(parts.received)),
          plain(std::move(parts.plain)),
          header(std::move(parts.header)),
          header_wait(parts.header_wait),
          header_timer(executor),
          header_sent(executor) {}

    StreamPtr inner;
    ss_wire::StreamEncryptor encryptor;
    ss_wire::StreamDecryptor decryptor;
    std::string received;
    std::string plain;
    size_t plain_offset = 0;
    std::string header;
    std::chrono::nanoseconds header_wait;
    asio::steady_timer header_timer;
    asio::steady_timer header_sent;  // a writer waits on it while the header goes alone
    bool header_in_flight = false;
    bool closed = false;
  };

  static asio::awaitable<IoResult> read(std::shared_ptr<State> state, asio::mutable_buffer out) {
    for (;;) {
      if (state->plain.size() > state->plain_offset) {
        size_t n = asio::buffer_copy(out, asio::buffer(state->plain.data() + state->plain_offset,
                                                       state->plain.size() - state->plain_offset));
        state->plain_offset += n;
        if (state->plain_offset == state->plain.size()) {
          std::string().swap(state->plain);
          state->plain_offset = 0;
        }
        co_return IoResult{error_code{}, n};
      }
      // Straight into the reader's buffer while chunks fit in it; a chunk larger than what
      // the reader asked for goes through `plain`.
      auto target = std::span(static_cast<uint8_t*>(out.data()), out.size());
      auto decoded = state->decryptor.decode(bytes_of(state->received), target);
      size_t consumed = decoded.consumed;
      if (!decoded.invalid && decoded.produced == 0 &&
          state->received.size() - consumed >= state->decryptor.next_unit_size()) {
        auto larger = state->decryptor.decode(bytes_of(state->received).subspan(consumed), state->plain);
        consumed += larger.consumed;
        decoded.invalid = larger.invalid;
      }
      state->received.erase(0, consumed);
      if (decoded.invalid) co_return IoResult{ProxyError::kBadResponse, 0};
      if (decoded.produced > 0) co_return IoResult{error_code{}, decoded.produced};
      if (!state->plain.empty()) continue;
      // Room for the rest of the next unit, and for a good read beyond it.
      size_t held = state->received.size();
      size_t room = std::max(kReadChunk, state->decryptor.next_unit_size() - std::min(held, state->decryptor.next_unit_size()));
      state->received.resize(held + room);
      auto [error, n] =
          co_await state->inner->async_read_some(asio::buffer(state->received.data() + held, room), kUseTuple);
      state->received.resize(held + n);
      if (state->received.empty()) std::string().swap(state->received);
      if (error) co_return IoResult{error, 0};
    }
  }

  static asio::awaitable<IoResult> write(std::shared_ptr<State> state, asio::const_buffer in) {
    while (state->header_in_flight && !state->closed) {
      state->header_sent.expires_at(asio::steady_timer::time_point::max());
      co_await state->header_sent.async_wait(kUseTuple);
    }
    size_t size = std::min(in.size(), kMaxWrite);
    std::span<const uint8_t> plain(static_cast<const uint8_t*>(in.data()), size);
    std::string sealed;
    if (state->encryptor.first_seal_due()) state->header_timer.cancel();
    if (!state->header.empty()) {
      std::string first = std::move(state->header);
      state->header.clear();
      first.append(reinterpret_cast<const char*>(plain.data()), plain.size());
      state->encryptor.seal(bytes_of(first), sealed);
    } else {
      state->encryptor.seal(plain, sealed);
    }
    auto [error, unused] = co_await asio::async_write(*state->inner, asio::buffer(sealed), kUseTuple);
    co_return IoResult{error, error ? 0 : size};
  }

  // The connector's target header, alone, once no payload came to go with it in time: a
  // target that speaks first (SSH, SMTP) must not wait for the client forever.
  static asio::awaitable<void> flush_header_later(std::shared_ptr<State> state) {
    state->header_timer.expires_after(state->header_wait);
    co_await state->header_timer.async_wait(kUseTuple);
    if (state->closed || !state->encryptor.first_seal_due()) co_return;
    std::string sealed;
    state->encryptor.seal(bytes_of(state->header), sealed);
    state->header.clear();
    state->header_in_flight = true;
    co_await asio::async_write(*state->inner, asio::buffer(sealed), kUseTuple);
    state->header_in_flight = false;
    state->header_sent.cancel();
  }

  std::shared_ptr<State> state_;
};

}  // namespace

StreamPtr make_ss_stream(StreamPtr inner, SsStreamParts parts) {
  return std::make_unique<SsStream>(std::move(inner), std::move(parts));
}

}  // namespace strait::agent
