#include "agent/connector/socks5_udp.h"

#include <array>
#include <memory>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "agent/protocol/proxy_error.h"
#include "agent/channel/tcp.h"
#include "agent/net/resolver.h"
#include "agent/protocol/socks5.h"
#include "common/io_operation.h"

namespace strait::agent {
namespace {

using asio::ip::udp;
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
constexpr size_t kReadChunk = 16 * 1024;
// The relay a SOCKS5 server names is normally an IP; a name gets the usual dial budget.
constexpr auto kRelayLookupTimeout = std::chrono::seconds(10);

using common::complete_with;
using common::IoResult;

class UdpTunClientStream final : public Stream {
 public:
  UdpTunClientStream(StreamPtr tunnel, common::HostPort target)
      : state_(std::make_shared<State>(State{std::move(tunnel), std::move(target), {}})) {}
  ~UdpTunClientStream() override { close(); }

  executor_type get_executor() override { return state_->tunnel->get_executor(); }
  void shutdown_send() override {}
  void close() override { state_->tunnel->close(); }
  std::string remote_address() const override { return state_->tunnel->remote_address(); }
  std::string local_address() const override { return state_->tunnel->local_address(); }
  bool is_datagram() const override { return true; }

 protected:
  void do_read_some(asio::mutable_buffer buffer, common::IoHandler handler) override {
    complete_with(get_executor(), read_datagram(state_, buffer), std::move(handler));
  }
  void do_write_some(asio::const_buffer buffer, common::IoHandler handler) override {
    complete_with(get_executor(), write_datagram(state_, buffer), std::move(handler));
  }

 private:
  // Shared with pending operations, so that they finish safely if the stream goes first.
  struct State {
    StreamPtr tunnel;
    common::HostPort target;
    std::string received;  // bytes of frames not yet returned
  };

  static asio::awaitable<IoResult> read_datagram(std::shared_ptr<State> state, asio::mutable_buffer out) {
    for (;;) {
      auto bytes = std::span(reinterpret_cast<const uint8_t*>(state->received.data()), state->received.size());
      auto frame = socks5::parse_udp_tun_frame(bytes);
      if (frame.state == ParseState::kInvalid) co_return IoResult{ProxyError::kBadResponse, 0};
      if (frame.state == ParseState::kComplete) {
        // A datagram larger than the reader's buffer is cut, as a UDP socket would.
        size_t n = asio::buffer_copy(out, asio::buffer(bytes.data() + frame.value.payload_offset,
                                                        frame.value.payload_size));
        state->received.erase(0, frame.size);
        co_return IoResult{error_code{}, n};
      }
      size_t held = state->received.size();
      state->received.resize(held + kReadChunk);
      auto [error, n] = co_await state->tunnel->async_read_some(asio::buffer(state->received.data() + held, kReadChunk),
                                                                kUseTuple);
      state->received.resize(held + n);
      if (error) co_return IoResult{error, 0};
    }
  }

  static asio::awaitable<IoResult> write_datagram(std::shared_ptr<State> state, asio::const_buffer payload) {
    auto frame = socks5::encode_udp_tun_frame(
        state->target, std::span(static_cast<const uint8_t*>(payload.data()), payload.size()));
    if (!frame.ok()) co_return IoResult{asio::error::message_size, 0};
    auto [error, unused] = co_await asio::async_write(*state->tunnel, asio::buffer(*frame), kUseTuple);
    co_return IoResult{error, error ? 0 : payload.size()};
  }

  std::shared_ptr<State> state_;
};

class UdpAssociateClientStream final : public Stream {
 public:
  UdpAssociateClientStream(StreamPtr control, udp::socket socket, std::string header, size_t buffer_size)
      : state_(std::make_shared<State>(State{std::move(control), std::move(socket), std::move(header),
                                              std::vector<uint8_t>(buffer_size + kMaxHeader)})) {}
  ~UdpAssociateClientStream() override { close(); }

  executor_type get_executor() override { return state_->socket.get_executor(); }
  void shutdown_send() override {}
  void close() override {
    error_code ignored;
    state_->socket.close(ignored);
    state_->control->close();
  }
  std::string remote_address() const override { return state_->control->remote_address(); }
  std::string local_address() const override { return state_->control->local_address(); }
  bool is_datagram() const override { return true; }

 protected:
  void do_read_some(asio::mutable_buffer buffer, common::IoHandler handler) override {
    receive(state_, buffer, std::move(handler));
  }
  void do_write_some(asio::const_buffer buffer, common::IoHandler handler) override {
    std::array<asio::const_buffer, 2> datagram = {asio::buffer(state_->header), buffer};
    size_t header_size = state_->header.size();
    state_->socket.async_send(datagram, [state = state_, header_size, handler = std::move(handler)](
                                            error_code error, size_t n) mutable {
      std::move(handler)(error, n >= header_size ? n - header_size : 0);
    });
  }

 private:
  static constexpr size_t kMaxHeader = 3 + 1 + 1 + 255 + 2;

  struct State {
    StreamPtr control;
    udp::socket socket;
    std::string header;  // the UDP request header naming the target, the same for every datagram
    std::vector<uint8_t> datagram;
  };

  // Receives until a datagram with a valid header arrives; others are skipped.
  static void receive(std::shared_ptr<State> state, asio::mutable_buffer out, common::IoHandler handler) {
    // Taken before `state` moves into the callback: argument evaluation order is unspecified.
    auto& socket = state->socket;
    auto datagram = asio::buffer(state->datagram);
    socket.async_receive(datagram, [state = std::move(state), out, handler = std::move(handler)](error_code error,
                                                                                               size_t n) mutable {
      if (error) return std::move(handler)(error, 0);
      auto header = socks5::parse_udp_header(std::span(state->datagram.data(), n));
      if (header.state != ParseState::kComplete || header.value.fragment != 0) {
        return receive(std::move(state), out, std::move(handler));
      }
      size_t copied = asio::buffer_copy(out, asio::buffer(state->datagram.data() + header.size, n - header.size));
      std::move(handler)(error_code{}, copied);
    });
  }

  std::shared_ptr<State> state_;
};

bool is_unspecified(const std::string& host) {
  error_code ec;
  auto address = asio::ip::make_address(host, ec);
  return !ec && address.is_unspecified();
}

}  // namespace

StreamPtr make_udp_tun_client_stream(StreamPtr tunnel, common::HostPort target) {
  return std::make_unique<UdpTunClientStream>(std::move(tunnel), std::move(target));
}

asio::awaitable<Result<StreamPtr>> make_udp_associate_client_stream(StreamPtr control,
                                                                    const common::HostPort& relay_address,
                                                                    const common::HostPort& target, size_t buffer_size) {
  // Servers that bind their relay socket to every interface reply 0.0.0.0: the relay is
  // then on the host the control connection reached. (A local copy: GCC 12 mishandles
  // class-type coroutine parameters that the body modifies.)
  common::HostPort relay = relay_address;
  if (is_unspecified(relay.host)) relay.host = socks5::host_port_or_any(control->remote_address()).host;
  auto header = socks5::encode_udp_header(target);
  if (!header.ok()) co_return asio::error::invalid_argument;
  auto executor = control->get_executor();
  auto addresses = co_await Resolver::shared().resolve(relay.host, AddressFamily::kAny,
                                                       std::chrono::steady_clock::now() + kRelayLookupTimeout);
  if (!addresses) co_return addresses.error();
  udp::socket socket(executor);
  error_code error;
  udp::endpoint endpoint(addresses->front(), relay.port);
  socket.open(endpoint.protocol(), error);
  if (!error) socket.connect(endpoint, error);
  if (error) co_return error;
  co_return StreamPtr(
      std::make_unique<UdpAssociateClientStream>(std::move(control), std::move(socket), *std::move(header), buffer_size));
}

}  // namespace strait::agent
