#include "agent/handler/socks5.h"

#include <algorithm>
#include <optional>

#include <spdlog/spdlog.h>

#include "agent/protocol/proxy_error.h"
#include "agent/channel/tls.h"
#include "agent/handler/handler_options.h"
#include "agent/handler/socks5_udp.h"
#include "agent/handler/socks_commands.h"
#include "agent/wire/message_io.h"
#include "agent/protocol/socks5.h"
#include "agent/observe/session_log.h"
#include "common/duration.h"
#include "common/prefixed_stream.h"
#include "common/stream_deadline.h"
#include "common/strings.h"

namespace strait::agent {
namespace {

struct Socks5Options : SocksOptions {
  bool udp = false;
  UdpAssociation::Limits udp_limits;
  std::shared_ptr<const ServerLayer> tls;  // null with notls
};

// The reply code that tells a SOCKS5 client why its target could not be reached.
uint8_t reply_for(const error_code& error) {
  if (error == asio::error::connection_refused) return socks5::reply::kConnectionRefused;
  if (error == asio::error::network_unreachable) return socks5::reply::kNetworkUnreachable;
  if (error == asio::error::host_unreachable || error == asio::error::host_not_found ||
      error == asio::error::host_not_found_try_again || error == asio::error::timed_out) {
    return socks5::reply::kHostUnreachable;
  }
  if (error == ProxyError::kForbidden) return socks5::reply::kNotAllowed;
  if (error == ProxyError::kUnsupportedNetwork) return socks5::reply::kCommandNotSupported;
  return socks5::reply::kGeneralFailure;
}

std::string encode_reply(const error_code& error, const common::HostPort& address) {
  return socks5::encode_reply(error ? reply_for(error) : socks5::reply::kSucceeded, address);
}

// Why a handshake ended without a request; empty when the client just went away.
struct Refusal {
  std::string reason;
};

class Socks5Handler final : public Handler {
 public:
  explicit Socks5Handler(Socks5Options options) : options_(std::move(options)) {}

  asio::awaitable<void> handle(StreamPtr client, const HandlerContext& ctx) const override {
    const std::string peer = client->remote_address();
    std::string buffer;  // bytes read past the current message
    std::variant<socks5::Request, Refusal> outcome;
    {
      common::StreamDeadline deadline(*client);
      deadline.arm(options_.read_timeout);
      outcome = co_await negotiate(client, buffer, ctx);
      deadline.disarm();
      if (deadline.expired()) {
        spdlog::info("{}: {}: socks5: no complete handshake within {}", ctx.service, peer,
                     common::format_duration(options_.read_timeout));
        co_return;
      }
    }
    if (auto* refusal = std::get_if<Refusal>(&outcome)) {
      if (!refusal->reason.empty()) spdlog::warn("{}: {}: socks5: {}", ctx.service, peer, refusal->reason);
      co_return;
    }
    const auto& request = std::get<socks5::Request>(outcome);
    SessionLog session(ctx.service, ctx.stats.get(), *client);
    session.set_target(request.address.to_string());
    switch (request.command) {
      case socks5::command::kConnect:
        co_await serve_connect(std::move(client), request.address, std::move(buffer), encode_reply, ctx, session);
        break;
      case socks5::command::kBind:
        if (!co_await allowed(*client, options_.bind, "BIND is disabled (enable with bind=true)", ctx, peer)) break;
        co_await serve_bind(std::move(client), std::move(buffer), request.address, encode_reply, ctx, session);
        break;
      case socks5::command::kUdpAssociate:
        if (!co_await allowed(*client, options_.udp, "UDP relay is disabled (enable with udp=true)", ctx, peer)) break;
        co_await serve_udp_associate(std::move(client), request, ctx, options_.udp_limits, session);
        break;
      case socks5::command::kUdpTun:
        if (request.address.port != 0) {
          // GOST's UDPTun with a port binds it for remote UDP forwarding (rudp).
          spdlog::warn("{}: {}: socks5: refused UDP tunnel bind to port {}: remote UDP forwarding is not supported",
                       ctx.service, peer, request.address.port);
          co_await write_message(*client, socks5::encode_reply(socks5::reply::kCommandNotSupported));
          break;
        }
        if (!co_await allowed(*client, options_.udp, "UDP relay is disabled (enable with udp=true)", ctx, peer)) break;
        co_await serve_udp_tun(std::move(client), std::move(buffer), ctx, options_.udp_limits, session);
        break;
    }
  }

 private:
  // Greeting, method selection, optional RFC 1929 auth and the request. Every refusal is
  // answered in the protocol before it is returned.
  // `client` becomes the TLS stream when a TLS method is chosen.
  asio::awaitable<std::variant<socks5::Request, Refusal>> negotiate(StreamPtr& client_stream, std::string& buffer,
                                                                    const HandlerContext& ctx) const {
    auto greeting = co_await read_message(*client_stream, buffer, socks5::parse_greeting);
    if (!greeting) co_return Refusal{truncation(greeting.error(), buffer, "greeting")};
    if (greeting->state == ParseState::kInvalid) {
      co_await write_message(*client_stream, socks5::encode_method_selection(socks5::method::kNoAcceptable));
      co_return Refusal{common::str_cat("bad greeting: ", greeting->reason)};
    }
    const auto& offered = greeting->value;
    auto offers = [&](uint8_t method) { return std::find(offered.begin(), offered.end(), method) != offered.end(); };
    uint8_t method = socks5::method::kNoAcceptable;
    if (ctx.auther) {
      if (offers(socks5::method::kUserPass)) method = socks5::method::kUserPass;
    } else if (offers(socks5::method::kNoAuth)) {
      method = socks5::method::kNoAuth;
    } else if (offers(socks5::method::kUserPass)) {
      method = socks5::method::kUserPass;  // no auther: any credentials are accepted
    }
    if (options_.tls && (offers(socks5::method::kTls) || offers(socks5::method::kTlsUserPass))) {
      method = ctx.auther ? socks5::method::kTlsUserPass : socks5::method::kTls;
    }
    if (auto error = co_await write_message(*client_stream, socks5::encode_method_selection(method))) {
      co_return Refusal{};
    }
    if (method == socks5::method::kTls || method == socks5::method::kTlsUserPass) {
      auto secured = co_await options_.tls->accept(common::with_prefix(std::move(client_stream), std::move(buffer)));
      buffer.clear();
      if (!secured) co_return Refusal{common::str_cat("TLS handshake failed: ", secured.error().message())};
      client_stream = std::move(*secured);
      if (method == socks5::method::kTlsUserPass) method = socks5::method::kUserPass;
    }
    Stream& client = *client_stream;
    if (method == socks5::method::kNoAcceptable) {
      co_return Refusal{ctx.auther ? "refused: the client does not offer username/password authentication"
                                   : "refused: the client offers no method this server supports"};
    }
    if (method == socks5::method::kUserPass) {
      auto credentials = co_await read_message(client, buffer, socks5::parse_user_pass);
      if (!credentials) co_return Refusal{truncation(credentials.error(), buffer, "authentication")};
      if (credentials->state == ParseState::kInvalid) {
        co_await write_message(client, socks5::encode_user_pass_status(false));
        co_return Refusal{common::str_cat("bad authentication request: ", credentials->reason)};
      }
      bool ok = !ctx.auther || ctx.auther->authenticate(credentials->value.username, credentials->value.password);
      co_await write_message(client, socks5::encode_user_pass_status(ok));
      if (!ok) co_return Refusal{common::str_cat("refused: wrong credentials for user \"", credentials->value.username, "\"")};
    }
    auto request = co_await read_message(client, buffer, socks5::parse_request);
    if (!request) co_return Refusal{truncation(request.error(), buffer, "request")};
    if (request->state == ParseState::kInvalid) {
      co_await write_message(client, socks5::encode_reply(request->reply));
      co_return Refusal{common::str_cat("refused request (reply ", int{request->reply}, "): ", request->reason)};
    }
    co_return request->value;
  }

  // A client that closes between messages just left; one that stops inside a message is
  // worth a line.
  static std::string truncation(const error_code& error, const std::string& buffer, std::string_view what) {
    if (buffer.empty() && error == asio::error::eof) return "";
    return common::str_cat("truncated ", what, ": ", error.message());
  }

  static asio::awaitable<bool> allowed(Stream& client, bool enabled, std::string_view why, const HandlerContext& ctx,
                                       const std::string& peer) {
    if (enabled) co_return true;
    spdlog::warn("{}: {}: socks5: refused: {}", ctx.service, peer, why);
    co_await write_message(client, socks5::encode_reply(socks5::reply::kNotAllowed));
    co_return false;
  }

  Socks5Options options_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Handler>> make_socks5_handler(const config::v1::ServiceConfig& service) {
  return make_socks5_handler(service, config::v1::Config{});
}

absl::StatusOr<std::unique_ptr<Handler>> make_socks5_handler(const config::v1::ServiceConfig& service,
                                                             const config::v1::Config& config) {
  const auto& metadata = service.handler().metadata();
  auto common_options = parse_socks_options(metadata);
  if (!common_options.ok()) return common_options.status();
  Socks5Options options;
  static_cast<SocksOptions&>(options) = *common_options;
  auto udp = handler_flag(metadata, "udp");
  if (!udp.ok()) return udp.status();
  options.udp = *udp;
  auto buffer_size = common::metadata_int(metadata, "udpBufferSize");
  if (!buffer_size.ok()) return buffer_size.status();
  if (!*buffer_size) {
    buffer_size = common::metadata_int(metadata, "udp.bufferSize");
    if (!buffer_size.ok()) return buffer_size.status();
  }
  // GOST clamps the size into 512..65536.
  if (*buffer_size) options.udp_limits.buffer_size = static_cast<size_t>(std::clamp<int64_t>(**buffer_size, 512, 65536));
  auto flow_ttl = common::metadata_duration(metadata, "udp.ttl");
  if (!flow_ttl.ok()) return flow_ttl.status();
  if (*flow_ttl && (*flow_ttl)->count() > 0) options.udp_limits.flow_ttl = **flow_ttl;
  auto max_associations = common::metadata_int(metadata, "udp.maxAssociations");
  if (!max_associations.ok()) return max_associations.status();
  if (*max_associations) options.udp_limits.max_associations = static_cast<size_t>(**max_associations);
  auto notls = handler_flag(metadata, "notls");
  if (!notls.ok()) return notls.status();
  if (!*notls) {
    // The handler's own certificate, else the listener's, else the agent's default.
    config::v1::ServiceConfig tls_source = service;
    if (!service.handler().tls().cert_file().empty()) *tls_source.mutable_listener()->mutable_tls() = service.handler().tls();
    auto tls = make_tls_server_layer(tls_source, config);
    if (!tls.ok()) return tls.status();
    options.tls = *std::move(tls);
  }
  return std::make_unique<Socks5Handler>(std::move(options));
}

}  // namespace strait::agent
