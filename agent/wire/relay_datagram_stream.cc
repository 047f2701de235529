#include "agent/wire/relay_datagram_stream.h"

#include <memory>
#include <string>
#include <tuple>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "agent/protocol/proxy_error.h"
#include "agent/protocol/relay.h"
#include "common/io_operation.h"

namespace strait::agent {
namespace {

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
constexpr size_t kReadChunk = 16 * 1024;

using common::IoResult;

class RelayDatagramStream final : public Stream {
 public:
  explicit RelayDatagramStream(StreamPtr tunnel) : state_(std::make_shared<State>(State{std::move(tunnel), {}})) {}
  ~RelayDatagramStream() override { close(); }

  executor_type get_executor() override { return state_->tunnel->get_executor(); }
  void shutdown_send() override { state_->tunnel->shutdown_send(); }
  void close() override { state_->tunnel->close(); }
  std::string remote_address() const override { return state_->tunnel->remote_address(); }
  std::string local_address() const override { return state_->tunnel->local_address(); }
  bool is_datagram() const override { return true; }

 protected:
  void do_read_some(asio::mutable_buffer buffer, common::IoHandler handler) override {
    common::complete_with(get_executor(), read_datagram(state_, buffer), std::move(handler));
  }
  void do_write_some(asio::const_buffer buffer, common::IoHandler handler) override {
    common::complete_with(get_executor(), write_datagram(state_, buffer), std::move(handler));
  }
  void do_wait_readable(common::WaitHandler handler) override {
    if (!state_->received.empty()) {
      asio::post(get_executor(), [handler = std::move(handler)]() mutable { std::move(handler)(error_code{}); });
      return;
    }
    state_->tunnel->async_wait_readable(std::move(handler));
  }

 private:
  // Shared with pending operations, so that they finish safely if the stream goes first.
  struct State {
    StreamPtr tunnel;
    std::string received;  // bytes of frames not returned yet: at most one frame and a chunk
  };

  static asio::awaitable<IoResult> read_datagram(std::shared_ptr<State> state, asio::mutable_buffer out) {
    for (;;) {
      auto bytes = std::span(reinterpret_cast<const uint8_t*>(state->received.data()), state->received.size());
      auto frame = relay_wire::parse_datagram(bytes);
      if (frame.state == ParseState::kComplete) {
        size_t n = asio::buffer_copy(out, asio::buffer(frame.value.data(), frame.value.size()));
        state->received.erase(0, frame.size);
        if (state->received.empty()) std::string().swap(state->received);
        co_return IoResult{error_code{}, n};
      }
      if (frame.state == ParseState::kInvalid) co_return IoResult{ProxyError::kBadResponse, 0};
      size_t held = state->received.size();
      state->received.resize(held + kReadChunk);
      auto [error, n] = co_await state->tunnel->async_read_some(asio::buffer(state->received.data() + held, kReadChunk),
                                                                kUseTuple);
      state->received.resize(held + n);
      if (error) co_return IoResult{error, 0};
    }
  }

  static asio::awaitable<IoResult> write_datagram(std::shared_ptr<State> state, asio::const_buffer payload) {
    auto frame = relay_wire::frame_datagram(std::span(static_cast<const uint8_t*>(payload.data()), payload.size()));
    if (!frame.ok()) co_return IoResult{asio::error::message_size, 0};
    auto [error, unused] = co_await asio::async_write(*state->tunnel, asio::buffer(*frame), kUseTuple);
    co_return IoResult{error, error ? 0 : payload.size()};
  }

  std::shared_ptr<State> state_;
};

}  // namespace

StreamPtr make_relay_datagram_stream(StreamPtr tunnel) { return std::make_unique<RelayDatagramStream>(std::move(tunnel)); }

}  // namespace strait::agent
