#include "agent/connector/ssu.h"

#include <memory>
#include <tuple>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "agent/connector/connector_options.h"
#include "agent/connector/ss_options.h"
#include "agent/net/buffers.h"
#include "agent/protocol/proxy_error.h"
#include "agent/protocol/socks5.h"
#include "common/io_operation.h"

namespace strait::agent {
namespace {

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
using common::IoResult;

// Datagrams to one target through an ssu server, over a datagram channel to it.
class SsuPacketStream final : public Stream {
 public:
  SsuPacketStream(StreamPtr tunnel, const SsKey& key, std::string header)
      : state_(std::make_shared<State>(State{std::move(tunnel), make_ss_packet_codec(key, false), std::move(header)})) {}
  ~SsuPacketStream() override { close(); }

  executor_type get_executor() override { return state_->tunnel->get_executor(); }
  void shutdown_send() override {}
  void close() override { state_->tunnel->close(); }
  std::string remote_address() const override { return state_->tunnel->remote_address(); }
  std::string local_address() const override { return state_->tunnel->local_address(); }
  bool is_datagram() const override { return true; }

 protected:
  void do_read_some(asio::mutable_buffer buffer, common::IoHandler handler) override {
    common::complete_with(get_executor(), read(state_, buffer), std::move(handler));
  }
  void do_write_some(asio::const_buffer buffer, common::IoHandler handler) override {
    common::complete_with(get_executor(), write(state_, buffer), std::move(handler));
  }
  void do_wait_readable(common::WaitHandler handler) override { state_->tunnel->async_wait_readable(std::move(handler)); }

 private:
  struct State {
    StreamPtr tunnel;
    std::unique_ptr<ss_wire::PacketCodec> codec;  // reads and writes run on one executor
    std::string header;  // the target, SOCKS5 form
  };

  static asio::awaitable<IoResult> read(std::shared_ptr<State> state, asio::mutable_buffer out) {
    for (;;) {
      auto& buffers = DatagramBuffers::this_thread();
      auto buffer = buffers.take();
      auto [error, n] = co_await state->tunnel->async_read_some(asio::buffer(buffer.get(), DatagramBuffers::kBufferSize),
                                                                kUseTuple);
      std::optional<std::string> plain;
      if (!error) plain = state->codec->open(std::span(buffer.get(), n));
      buffers.give_back(std::move(buffer));
      if (error) co_return IoResult{error, 0};
      if (!plain) continue;  // not from our server, or corrupted: dropped as UDP would
      auto bytes = std::span(reinterpret_cast<const uint8_t*>(plain->data()), plain->size());
      auto address = socks5::parse_address(bytes);
      if (address.state != ParseState::kComplete) continue;
      auto payload = bytes.subspan(address.size);
      size_t copied = asio::buffer_copy(out, asio::buffer(payload.data(), payload.size()));
      co_return IoResult{error_code{}, copied};
    }
  }

  static asio::awaitable<IoResult> write(std::shared_ptr<State> state, asio::const_buffer payload) {
    std::string plain = state->header;
    plain.append(static_cast<const char*>(payload.data()), payload.size());
    std::string packet = state->codec->seal(std::span(reinterpret_cast<const uint8_t*>(plain.data()), plain.size()));
    auto [error, unused] = co_await state->tunnel->async_write_some(asio::buffer(packet), kUseTuple);
    co_return IoResult{error, error ? 0 : payload.size()};
  }

  std::shared_ptr<State> state_;
};

class SsuConnector final : public Connector {
 public:
  explicit SsuConnector(SsKey key) : key_(std::move(key)) {}

  asio::awaitable<Result<StreamPtr>> connect(StreamPtr tunnel, Network network, const std::string& target) override {
    if (network != Network::kUdp || !tunnel->is_datagram()) co_return ProxyError::kUnsupportedNetwork;
    auto address = common::parse_host_port(target);
    if (!address.ok() || address->host.empty()) co_return ProxyError::kNoTarget;
    auto header = socks5::encode_address(*address);
    if (!header.ok()) co_return asio::error::invalid_argument;
    co_return StreamPtr(std::make_unique<SsuPacketStream>(std::move(tunnel), key_, *std::move(header)));
  }

 private:
  SsKey key_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Connector>> make_ssu_connector(const config::v1::NodeConfig& node) {
  auto key = parse_ss_key("ssu connector", connector_auth(node), node.connector().metadata());
  if (!key.ok()) return key.status();
  if (auto refused = check_ssu_key("ssu connector", *key); !refused.ok()) return refused;
  return std::make_unique<SsuConnector>(*std::move(key));
}

}  // namespace strait::agent
