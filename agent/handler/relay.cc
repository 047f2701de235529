#include "agent/handler/relay.h"

#include <spdlog/spdlog.h>

#include "agent/channel/mux.h"
#include "agent/handler/forward_target.h"
#include "agent/handler/handler_options.h"
#include "agent/handler/relay_bind.h"
#include "agent/observe/session_log.h"
#include "agent/wire/message_io.h"
#include "agent/protocol/proxy_error.h"
#include "agent/protocol/relay.h"
#include "agent/wire/relay_datagram_stream.h"
#include "common/duration.h"
#include "common/log_escape.h"
#include "common/metadata.h"
#include "common/prefixed_stream.h"
#include "common/stream_deadline.h"
#include "common/strings.h"

namespace strait::agent {
namespace {

std::string status_response(uint8_t status) {
  // A response without features always encodes.
  return *relay_wire::encode_response(relay_wire::Response{.status = status});
}

uint8_t status_for(const error_code& error, bool forward_mode) {
  if (error == ProxyError::kNoTarget) return relay_wire::status::kServiceUnavailable;
  if (error == ProxyError::kForbidden) return relay_wire::status::kForbidden;
  if (error == asio::error::timed_out) return relay_wire::status::kTimeout;
  return forward_mode ? relay_wire::status::kHostUnreachable : relay_wire::status::kNetworkUnreachable;
}

struct RelayHandlerOptions {
  std::chrono::nanoseconds read_timeout;
  bool bind = false;  // GOST's `bind`: BIND is refused unless it is on
  smux::Config mux;   // the session a TCP BIND runs (GOST's mux.* keys)
};

class RelayHandler final : public Handler {
 public:
  explicit RelayHandler(RelayHandlerOptions options) : options_(std::move(options)) {}

  asio::awaitable<void> handle(StreamPtr client, const HandlerContext& ctx) const override {
    std::string peer = client->remote_address();
    std::string buffer;
    Result<Parsed<relay_wire::Request>> request = asio::error::eof;
    {
      common::StreamDeadline deadline(*client);
      deadline.arm(options_.read_timeout);
      request = co_await read_message(*client, buffer, relay_wire::parse_request);
      deadline.disarm();
      if (deadline.expired()) {
        spdlog::info("{}: {}: relay: no complete request within {}", ctx.service, peer,
                     common::format_duration(options_.read_timeout));
        co_return;
      }
    }
    if (!request) {
      if (!buffer.empty() || request.error() != asio::error::eof) {
        spdlog::info("{}: {}: relay: truncated request: {}", ctx.service, peer, request.error().message());
      }
      co_return;
    }
    if (request->state == ParseState::kInvalid) {
      spdlog::warn("{}: {}: relay: bad request: {}", ctx.service, peer, request->reason);
      co_await write_message(*client, status_response(relay_wire::status::kBadRequest));
      co_return;
    }
    const relay_wire::Request& fields = request->value;
    if (ctx.auther) {
      bool ok = fields.auth && ctx.auther->authenticate(fields.auth->username, fields.auth->password);
      if (!ok) {
        spdlog::warn("{}: {}: relay: refused: {}", ctx.service, peer,
                     fields.auth ? common::str_cat("wrong credentials for user \"",
                                                   common::text_escaped(fields.auth->username), "\"")
                                 : std::string("no credentials"));
        co_await write_message(*client, status_response(relay_wire::status::kUnauthorized));
        co_return;
      }
    }
    switch (fields.command()) {
      case 0:
      case relay_wire::command::kConnect:
        co_await serve_connect(std::move(client), fields, std::move(buffer), ctx);
        break;
      case relay_wire::command::kBind:
        co_await serve_bind(std::move(client), fields, std::move(buffer), ctx);
        break;
      default:
        spdlog::warn("{}: {}: relay: refused command {:#04x}", ctx.service, peer, int{fields.cmd});
        co_await write_message(*client, status_response(relay_wire::status::kBadRequest));
        break;
    }
  }

 private:
  static asio::awaitable<void> serve_connect(StreamPtr client, const relay_wire::Request& request, std::string early,
                                             const HandlerContext& ctx) {
    const Network network = request.udp() ? Network::kUdp : Network::kTcp;
    SessionLog session(ctx.service, ctx.stats.get(), *client);
    const bool forward_mode = ctx.forwarder != nullptr;
    Result<StreamPtr> upstream = ProxyError::kNoTarget;
    if (forward_mode) {
      upstream = co_await dial_forward_target(*client, ctx, network, session);
    } else if (!request.address || request.address->host.empty()) {
      spdlog::warn("{}: {}: relay: refused CONNECT without a target address", ctx.service, client->remote_address());
      co_await write_message(*client, status_response(relay_wire::status::kBadRequest));
      co_return;
    } else {
      std::string target = request.address->to_string();
      session.set_target(target);
      upstream = co_await ctx.router->dial(client->get_executor(), network, target, request.address->host);
    }
    if (!upstream) {
      co_await write_message(*client, status_response(status_for(upstream.error(), forward_mode)));
      session.finish(upstream.error());
      co_return;
    }
    if (auto error = co_await write_message(*client, status_response(relay_wire::status::kOk))) {
      session.finish(error);
      co_return;
    }
    // Bytes the client sent behind its request (GOST clients send the request with the
    // first data) are read first.
    StreamPtr tunnel = common::with_prefix(std::move(client), std::move(early));
    if (network == Network::kUdp) tunnel = make_relay_datagram_stream(std::move(tunnel));
    relay_then_log(std::move(tunnel), std::move(*upstream), ctx.relay, std::move(session));
  }

  asio::awaitable<void> serve_bind(StreamPtr client, const relay_wire::Request& request, std::string early,
                                   const HandlerContext& ctx) const {
    if (!options_.bind) {
      spdlog::warn("{}: {}: relay: refused BIND: the handler's `bind` option is off", ctx.service,
                   client->remote_address());
      co_await write_message(*client, status_response(relay_wire::status::kForbidden));
      co_return;
    }
    // No Addr feature is GOST's empty address: any interface, any port.
    common::HostPort address = request.address.value_or(common::HostPort{"", 0});
    if (request.udp()) {
      co_await serve_relay_bind_udp(std::move(client), std::move(address), std::move(early), ctx);
    } else {
      co_await serve_relay_bind_tcp(std::move(client), std::move(address), std::move(early), options_.mux, ctx);
    }
  }

  RelayHandlerOptions options_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Handler>> make_relay_handler(const config::v1::ServiceConfig& service) {
  const auto& metadata = service.handler().metadata();
  RelayHandlerOptions options;
  auto read_timeout = handler_read_timeout(metadata);
  if (!read_timeout.ok()) return read_timeout.status();
  options.read_timeout = *read_timeout;
  auto bind = handler_flag(metadata, "bind");
  if (!bind.ok()) return bind.status();
  options.bind = *bind;
  auto mux = parse_mux_config(metadata);
  if (!mux.ok()) return mux.status();
  options.mux = *mux;
  return std::make_unique<RelayHandler>(std::move(options));
}

}  // namespace strait::agent
