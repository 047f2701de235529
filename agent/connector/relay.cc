#include "agent/connector/relay.h"

#include <memory>
#include <optional>
#include <string>
#include <tuple>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "agent/connector/connector_options.h"
#include "agent/wire/message_io.h"
#include "agent/protocol/proxy_error.h"
#include "agent/protocol/relay.h"
#include "agent/wire/relay_datagram_stream.h"
#include "common/io_operation.h"
#include "common/prefixed_stream.h"
#include "common/stream_deadline.h"
#include "common/strings.h"

namespace strait::agent {
namespace {

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::string_view kAnyAddress = ":0";
using common::IoResult;

// Reads the relay response from `tunnel`; its error, or the bytes that came behind it.
asio::awaitable<Result<std::string>> read_response(Stream& tunnel) {
  std::string buffer;
  auto response = co_await read_message(tunnel, buffer, relay_wire::parse_response);
  if (!response) co_return response.error();
  if (response->state == ParseState::kInvalid) co_return ProxyError::kBadResponse;
  switch (response->value.status) {
    case relay_wire::status::kOk:
      co_return std::move(buffer);
    case relay_wire::status::kUnauthorized:
      co_return ProxyError::kAuthRequired;
    case relay_wire::status::kForbidden:
      co_return ProxyError::kForbidden;
    default:
      co_return ProxyError::kRejected;
  }
}

// The tunnel after a request whose response has not been read yet: the first read takes
// the response off the stream and fails if it is a refusal.
class PendingResponseStream final : public Stream {
 public:
  explicit PendingResponseStream(StreamPtr tunnel) : state_(std::make_shared<State>(State{std::move(tunnel), false, {}})) {}
  ~PendingResponseStream() override { close(); }

  executor_type get_executor() override { return state_->tunnel->get_executor(); }
  void shutdown_send() override { state_->tunnel->shutdown_send(); }
  void close() override { state_->tunnel->close(); }
  std::string remote_address() const override { return state_->tunnel->remote_address(); }
  std::string local_address() const override { return state_->tunnel->local_address(); }
  // Once the response is read and nothing is left over, the relay may splice the socket.
  asio::ip::tcp::socket* plain_tcp_socket() override {
    return state_->checked && state_->early.empty() ? state_->tunnel->plain_tcp_socket() : nullptr;
  }

 protected:
  void do_read_some(asio::mutable_buffer buffer, common::IoHandler handler) override {
    if (state_->checked && state_->early.empty()) {
      state_->tunnel->async_read_some(buffer, std::move(handler));
      return;
    }
    common::complete_with(get_executor(), read(state_, buffer), std::move(handler));
  }
  void do_write_some(asio::const_buffer buffer, common::IoHandler handler) override {
    state_->tunnel->async_write_some(buffer, std::move(handler));
  }
  void do_wait_readable(common::WaitHandler handler) override {
    if (!state_->early.empty()) {
      asio::post(get_executor(), [handler = std::move(handler)]() mutable { std::move(handler)(error_code{}); });
      return;
    }
    state_->tunnel->async_wait_readable(std::move(handler));
  }

 private:
  struct State {
    StreamPtr tunnel;
    bool checked = false;
    std::string early;  // payload that came with the response
  };

  static asio::awaitable<IoResult> read(std::shared_ptr<State> state, asio::mutable_buffer out) {
    if (!state->checked) {
      auto early = co_await read_response(*state->tunnel);
      if (!early) co_return IoResult{early.error(), 0};
      state->checked = true;
      state->early = std::move(*early);
    }
    if (state->early.empty()) {
      co_return co_await state->tunnel->async_read_some(out, kUseTuple);
    }
    size_t n = asio::buffer_copy(out, asio::buffer(state->early));
    state->early.erase(0, n);
    co_return IoResult{error_code{}, n};
  }

  std::shared_ptr<State> state_;
};

class RelayConnector final : public Connector {
 public:
  RelayConnector(std::optional<relay_wire::Credentials> credentials, bool nodelay, std::chrono::nanoseconds timeout)
      : credentials_(std::move(credentials)), nodelay_(nodelay), timeout_(timeout) {}

  asio::awaitable<Result<StreamPtr>> connect(StreamPtr tunnel, Network network, const std::string& target) override {
    relay_wire::Request request;
    request.cmd = relay_wire::command::kConnect | (network == Network::kUdp ? relay_wire::command::kUdpFlag : 0);
    request.auth = credentials_;
    if (target == kAnyAddress) {
      // A forward service without targets of its own: the relay server picks (GOST sends the
      // same placeholder, an empty domain with port 0).
      request.address = common::HostPort{"", 0};
    } else if (!target.empty()) {
      auto address = common::parse_host_port(target);
      if (!address.ok()) co_return asio::error::invalid_argument;
      request.address = *address;
    }
    auto encoded = relay_wire::encode_request(request);
    if (!encoded.ok()) co_return asio::error::invalid_argument;
    StreamPtr opened;
    if (nodelay_) {
      common::StreamDeadline deadline(*tunnel);
      deadline.arm(timeout_);
      if (auto error = co_await write_message(*tunnel, *encoded)) co_return error;
      auto early = co_await read_response(*tunnel);
      deadline.disarm();
      if (!early) co_return deadline.expired() ? error_code(asio::error::timed_out) : early.error();
      opened = common::with_prefix(std::move(tunnel), std::move(*early));
    } else {
      if (auto error = co_await write_message(*tunnel, *encoded)) co_return error;
      opened = std::make_unique<PendingResponseStream>(std::move(tunnel));
    }
    if (network == Network::kUdp) opened = make_relay_datagram_stream(std::move(opened));
    co_return std::move(opened);
  }

 private:
  std::optional<relay_wire::Credentials> credentials_;
  bool nodelay_;
  std::chrono::nanoseconds timeout_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Connector>> make_relay_connector(const config::v1::NodeConfig& node) {
  std::optional<relay_wire::Credentials> credentials;
  const auto& auth = connector_auth(node);
  if (!auth.username().empty()) {
    if (auth.username().size() > 255 || auth.password().size() > 255) {
      return absl::InvalidArgumentError("relay connector: username and password are at most 255 bytes each");
    }
    credentials = relay_wire::Credentials{auth.username(), auth.password()};
  }
  const auto& metadata = node.connector().metadata();
  auto nodelay = common::metadata_bool(metadata, "nodelay");
  if (!nodelay.ok()) return nodelay.status();
  auto timeout = connector_timeout(metadata);
  if (!timeout.ok()) return timeout.status();
  return std::make_unique<RelayConnector>(std::move(credentials), nodelay->value_or(false), *timeout);
}

}  // namespace strait::agent
