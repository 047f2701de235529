#include "agent/connector/socks5.h"

#include <optional>
#include <vector>


#include "agent/protocol/proxy_error.h"
#include "agent/channel/tls.h"
#include "agent/connector/connector_options.h"
#include "agent/connector/socks5_udp.h"
#include "agent/wire/message_io.h"
#include "agent/protocol/socks5.h"
#include "common/prefixed_stream.h"
#include "common/stream_deadline.h"

namespace strait::agent {
namespace {

struct Socks5ConnectorOptions {
  std::optional<socks5::Credentials> credentials;
  std::chrono::nanoseconds timeout = kDefaultHandshakeTimeout;
  bool udp_associate = false;  // GOST `relay=udp`
  size_t udp_buffer_size = 65535;  // GOST: 4096, which cuts longer datagrams
  // GOST's TLS methods 0x80/0x82, offered only with an explicit notls=false: GOST clients
  // offer them by default, but other SOCKS5 servers do not know them.
  std::shared_ptr<const ClientLayer> tls;
  std::string node_address;  // SNI default
};

// A refusal from the hop as the error the caller's own protocol can report back.
error_code error_for_reply(uint8_t code, Network network) {
  switch (code) {
    case socks5::reply::kNotAllowed: return ProxyError::kForbidden;
    case socks5::reply::kNetworkUnreachable: return asio::error::network_unreachable;
    case socks5::reply::kHostUnreachable: return asio::error::host_unreachable;
    case socks5::reply::kConnectionRefused: return asio::error::connection_refused;
    case socks5::reply::kTtlExpired: return asio::error::timed_out;
    case socks5::reply::kCommandNotSupported:
      return network == Network::kUdp ? error_code(ProxyError::kUnsupportedNetwork) : error_code(ProxyError::kRejected);
    default: return ProxyError::kRejected;
  }
}

template <typename T>
Result<T> value_or_bad_response(Result<Parsed<T>> parsed) {
  // In-place construction: Result<bool> would otherwise take an error_code as a bool.
  if (!parsed) {
    return Result<T>(boost::system::in_place_error,
                     parsed.error() == asio::error::eof ? error_code(ProxyError::kBadResponse) : parsed.error());
  }
  if (parsed->state != ParseState::kComplete) {
    return Result<T>(boost::system::in_place_error, error_code(ProxyError::kBadResponse));
  }
  return Result<T>(boost::system::in_place_value, std::move(parsed->value));
}

class Socks5Connector final : public Connector {
 public:
  explicit Socks5Connector(Socks5ConnectorOptions options) : options_(std::move(options)) {}

  asio::awaitable<Result<StreamPtr>> connect(StreamPtr tunnel, Network network, const std::string& target) override {
    auto address = common::parse_host_port(target);
    if (!address.ok()) co_return asio::error::invalid_argument;
    uint8_t command = socks5::command::kConnect;
    common::HostPort requested = *address;
    if (network == Network::kUdp) {
      command = options_.udp_associate ? socks5::command::kUdpAssociate : socks5::command::kUdpTun;
      requested = common::HostPort{"0.0.0.0", 0};  // relay mode: any client address, no bound port
    }
    std::string buffer;
    common::StreamDeadline deadline(*tunnel);
    deadline.arm(options_.timeout);
    auto method = co_await select_method(*tunnel, buffer);
    if (method && (*method == socks5::method::kTls || *method == socks5::method::kTlsUserPass)) {
      auto secured = co_await options_.tls->connect(common::with_prefix(std::move(tunnel), std::move(buffer)),
                                                    options_.node_address);
      buffer.clear();
      if (!secured) co_return deadline.expired() ? error_code(asio::error::timed_out) : secured.error();
      tunnel = std::move(*secured);
      *method = *method == socks5::method::kTls ? socks5::method::kNoAuth : socks5::method::kUserPass;
    }
    if (!method) co_return deadline.expired() ? error_code(asio::error::timed_out) : method.error();
    auto reply = co_await negotiate(*tunnel, buffer, *method, command, requested, network);
    deadline.disarm();
    if (deadline.expired()) co_return asio::error::timed_out;
    if (!reply) co_return reply.error();
    if (network == Network::kTcp) co_return common::with_prefix(std::move(tunnel), std::move(buffer));
    if (command == socks5::command::kUdpTun) {
      co_return make_udp_tun_client_stream(common::with_prefix(std::move(tunnel), std::move(buffer)), *address);
    }
    co_return co_await make_udp_associate_client_stream(std::move(tunnel), reply->address, *address,
                                                        options_.udp_buffer_size);
  }

 private:
  // The greeting; the method the server chose.
  asio::awaitable<Result<uint8_t>> select_method(Stream& tunnel, std::string& buffer) const {
    std::vector<uint8_t> methods = {socks5::method::kNoAuth};
    if (options_.credentials) methods.push_back(socks5::method::kUserPass);
    if (options_.tls) {
      methods.push_back(socks5::method::kTls);
      if (options_.credentials) methods.push_back(socks5::method::kTlsUserPass);
    }
    if (auto error = co_await write_message(tunnel, socks5::encode_greeting(methods))) co_return error;
    co_return value_or_bad_response(co_await read_message(tunnel, buffer, socks5::parse_method_selection));
  }

  // Optional RFC 1929 auth for `method`, then one request; the server's reply.
  asio::awaitable<Result<socks5::Reply>> negotiate(Stream& tunnel, std::string& buffer, uint8_t method,
                                                   uint8_t command, const common::HostPort& address,
                                                   Network network) const {
    if (method == socks5::method::kUserPass && options_.credentials) {
      auto request = socks5::encode_user_pass(options_.credentials->username, options_.credentials->password);
      if (auto error = co_await write_message(tunnel, *request)) co_return error;
      auto accepted = value_or_bad_response(co_await read_message(tunnel, buffer, socks5::parse_user_pass_status));
      if (!accepted) co_return accepted.error();
      if (!*accepted) co_return ProxyError::kAuthRequired;
    } else if (method != socks5::method::kNoAuth) {
      co_return method == socks5::method::kNoAcceptable || method == socks5::method::kUserPass
          ? error_code(ProxyError::kAuthRequired)
          : error_code(ProxyError::kBadResponse);
    }
    auto request = socks5::encode_request(command, address);
    if (!request.ok()) co_return error_code(asio::error::invalid_argument);
    if (auto error = co_await write_message(tunnel, *request)) co_return error;
    auto reply = value_or_bad_response(co_await read_message(tunnel, buffer, socks5::parse_reply));
    if (!reply) co_return reply.error();
    if (reply->code != socks5::reply::kSucceeded) co_return error_for_reply(reply->code, network);
    co_return reply;
  }

  Socks5ConnectorOptions options_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Connector>> make_socks5_connector(const config::v1::NodeConfig& node) {
  Socks5ConnectorOptions options;
  const auto& auth = connector_auth(node);
  if (!auth.username().empty()) {
    if (auth.username().size() > 255 || auth.password().size() > 255) {
      return absl::InvalidArgumentError("socks5 connector: username and password are limited to 255 bytes each");
    }
    options.credentials = socks5::Credentials{auth.username(), auth.password()};
  }
  const auto& metadata = node.connector().metadata();
  auto timeout = connector_timeout(metadata);
  if (!timeout.ok()) return timeout.status();
  options.timeout = *timeout;
  auto relay = common::metadata_string(metadata, "relay");
  if (relay && !relay->empty() && *relay != "udp") {
    return absl::InvalidArgumentError("socks5 connector: metadata relay: only \"udp\" (standard UDP ASSOCIATE) is known");
  }
  options.udp_associate = relay == "udp";
  auto notls = common::metadata_bool(metadata, "notls");
  if (!notls.ok()) return notls.status();
  if (*notls && !**notls) {
    auto tls = make_tls_client_layer(node);
    if (!tls.ok()) return tls.status();
    options.tls = *std::move(tls);
    options.node_address = node.addr();
  }
  auto buffer_size = common::metadata_int(metadata, "udpBufferSize");
  if (!buffer_size.ok()) return buffer_size.status();
  if (*buffer_size) options.udp_buffer_size = static_cast<size_t>(std::clamp<int64_t>(**buffer_size, 512, 65536));
  return std::make_unique<Socks5Connector>(std::move(options));
}

}  // namespace strait::agent
