#include "agent/channel/snappy_stream.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "agent/protocol/snappy_frames.h"
#include "common/io_operation.h"

namespace strait::agent {
namespace {

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
constexpr size_t kReadChunk = 16 * 1024;
// Data compressed per write: four chunks, so a large write costs one write below.
constexpr size_t kMaxWrite = 4 * kcp::kSnappyMaxBlock;

using common::IoResult;

class SnappyStream final : public Stream {
 public:
  explicit SnappyStream(StreamPtr inner) : state_(std::make_shared<State>(std::move(inner))) {}
  ~SnappyStream() override { close(); }

  executor_type get_executor() override { return state_->inner->get_executor(); }
  void shutdown_send() override { state_->inner->shutdown_send(); }
  void close() override { state_->inner->close(); }
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
    if (state_->plain.size() > state_->offset || state_->decoder.failed()) {
      asio::post(get_executor(), [handler = std::move(handler)]() mutable { std::move(handler)(error_code{}); });
      return;
    }
    // Bytes below may turn out to be a part of a chunk only; the read then waits for more.
    state_->inner->async_wait_readable(std::move(handler));
  }

 private:
  // Shared with pending operations, so that they finish safely if the stream goes first.
  struct State {
    explicit State(StreamPtr stream) : inner(std::move(stream)) {}
    StreamPtr inner;
    kcp::SnappyFrameEncoder encoder;
    kcp::SnappyFrameDecoder decoder;
    std::vector<uint8_t> received;
    std::vector<uint8_t> plain;
    size_t offset = 0;
  };

  static asio::awaitable<IoResult> read(std::shared_ptr<State> state, asio::mutable_buffer out) {
    for (;;) {
      if (state->plain.size() > state->offset) {
        size_t n = std::min(out.size(), state->plain.size() - state->offset);
        std::memcpy(out.data(), state->plain.data() + state->offset, n);
        state->offset += n;
        if (state->offset == state->plain.size()) {
          std::vector<uint8_t>().swap(state->plain);
          state->offset = 0;
        }
        co_return IoResult{error_code{}, n};
      }
      if (state->decoder.failed()) co_return IoResult{asio::error::invalid_argument, 0};
      state->received.resize(kReadChunk);
      auto [error, n] = co_await state->inner->async_read_some(asio::buffer(state->received), kUseTuple);
      if (error) {
        std::vector<uint8_t>().swap(state->received);
        co_return IoResult{error, 0};
      }
      auto status = state->decoder.feed(std::span(state->received.data(), n), state->plain);
      std::vector<uint8_t>().swap(state->received);
      if (!status.ok() && state->plain.empty()) co_return IoResult{asio::error::invalid_argument, 0};
    }
  }

  static asio::awaitable<IoResult> write(std::shared_ptr<State> state, asio::const_buffer in) {
    size_t size = std::min(in.size(), kMaxWrite);
    if (size == 0) co_return IoResult{error_code{}, 0};
    std::vector<uint8_t> encoded;
    state->encoder.encode(std::span(static_cast<const uint8_t*>(in.data()), size), encoded);
    auto [error, unused] = co_await asio::async_write(*state->inner, asio::buffer(encoded), kUseTuple);
    co_return IoResult{error, error ? 0 : size};
  }

  std::shared_ptr<State> state_;
};

}  // namespace

StreamPtr make_snappy_stream(StreamPtr inner) { return std::make_unique<SnappyStream>(std::move(inner)); }

}  // namespace strait::agent
