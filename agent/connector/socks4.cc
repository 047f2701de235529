#include "agent/connector/socks4.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "agent/protocol/proxy_error.h"
#include "agent/connector/connector_options.h"
#include "agent/net/resolver.h"
#include "agent/wire/message_io.h"
#include "agent/protocol/socks4.h"
#include "common/prefixed_stream.h"
#include "common/stream_deadline.h"

namespace strait::agent {
namespace {

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

struct Socks4ConnectorOptions {
  std::string user_id;
  std::chrono::nanoseconds timeout = kDefaultHandshakeTimeout;
  bool resolve_locally = false;  // GOST `disable4a`
};

error_code error_for_reply(uint8_t code) {
  if (code == socks4::reply::kNoIdentd || code == socks4::reply::kUserIdMismatch) return ProxyError::kAuthRequired;
  return ProxyError::kRejected;
}

// The first IPv4 address of `host`: SOCKS4 without 4a can carry nothing else.
asio::awaitable<Result<std::string>> resolve_ipv4(const std::string& host, std::chrono::nanoseconds timeout) {
  auto addresses =
      co_await Resolver::shared().resolve(host, AddressFamily::kIpv4, std::chrono::steady_clock::now() + timeout);
  if (!addresses) co_return addresses.error();
  co_return addresses->front().to_string();
}

class Socks4Connector final : public Connector {
 public:
  explicit Socks4Connector(Socks4ConnectorOptions options) : options_(std::move(options)) {}

  asio::awaitable<Result<StreamPtr>> connect(StreamPtr tunnel, Network network, const std::string& target) override {
    if (network != Network::kTcp) co_return ProxyError::kUnsupportedNetwork;
    auto address = common::parse_host_port(target);
    if (!address.ok()) co_return asio::error::invalid_argument;
    if (common::is_ipv6_literal(address->host)) co_return asio::error::address_family_not_supported;
    error_code literal_error;
    asio::ip::make_address_v4(address->host, literal_error);
    if (literal_error && options_.resolve_locally) {
      auto resolved = co_await resolve_ipv4(address->host, options_.timeout);
      if (!resolved) co_return resolved.error();
      address->host = *resolved;
    }
    auto request = socks4::encode_request(socks4::command::kConnect, *address, options_.user_id);
    if (!request.ok()) co_return asio::error::invalid_argument;

    std::string buffer;
    common::StreamDeadline deadline(*tunnel);
    deadline.arm(options_.timeout);
    auto code = co_await exchange(*tunnel, *request, buffer);
    deadline.disarm();
    if (deadline.expired()) co_return asio::error::timed_out;
    if (!code) co_return code.error();
    if (*code != socks4::reply::kGranted) co_return error_for_reply(*code);
    co_return common::with_prefix(std::move(tunnel), std::move(buffer));
  }

 private:
  static asio::awaitable<Result<uint8_t>> exchange(Stream& tunnel, const std::string& request, std::string& buffer) {
    if (auto error = co_await write_message(tunnel, request)) co_return error;
    auto reply = co_await read_message(tunnel, buffer, socks4::parse_reply);
    if (!reply) co_return reply.error() == asio::error::eof ? error_code(ProxyError::kBadResponse) : reply.error();
    if (reply->state != ParseState::kComplete) co_return ProxyError::kBadResponse;
    co_return reply->value;
  }

  Socks4ConnectorOptions options_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Connector>> make_socks4_connector(const config::v1::NodeConfig& node) {
  Socks4ConnectorOptions options;
  options.user_id = connector_auth(node).username();
  if (options.user_id.size() > socks4::kMaxUserId || options.user_id.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError("socks4 connector: the user id must be at most 255 bytes without NUL");
  }
  const auto& metadata = node.connector().metadata();
  auto timeout = connector_timeout(metadata);
  if (!timeout.ok()) return timeout.status();
  options.timeout = *timeout;
  auto disable4a = common::metadata_bool(metadata, "disable4a");
  if (!disable4a.ok()) return disable4a.status();
  options.resolve_locally = disable4a->value_or(false);
  return std::make_unique<Socks4Connector>(std::move(options));
}

}  // namespace strait::agent
