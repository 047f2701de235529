#include "agent/handler/socks4.h"

#include <spdlog/spdlog.h>

#include "agent/handler/socks_commands.h"
#include "agent/wire/message_io.h"
#include "agent/protocol/socks4.h"
#include "agent/observe/session_log.h"
#include "common/duration.h"
#include "common/stream_deadline.h"
#include "common/strings.h"

namespace strait::agent {
namespace {

// SOCKS4 has a single failure code for every reason.
std::string encode_reply(const error_code& error, const common::HostPort& address) {
  return socks4::encode_reply(error ? socks4::reply::kRejected : socks4::reply::kGranted, address);
}

class Socks4Handler final : public Handler {
 public:
  explicit Socks4Handler(SocksOptions options) : options_(options) {}

  asio::awaitable<void> handle(StreamPtr client, const HandlerContext& ctx) const override {
    const std::string peer = client->remote_address();
    std::string buffer;
    Result<Parsed<socks4::Request>> request = asio::error::eof;
    {
      common::StreamDeadline deadline(*client);
      deadline.arm(options_.read_timeout);
      request = co_await read_message(*client, buffer, socks4::parse_request);
      deadline.disarm();
      if (deadline.expired()) {
        spdlog::info("{}: {}: socks4: no complete request within {}", ctx.service, peer,
                     common::format_duration(options_.read_timeout));
        co_return;
      }
    }
    if (!request) {
      if (!buffer.empty()) spdlog::info("{}: {}: socks4: truncated request: {}", ctx.service, peer, request.error().message());
      co_return;
    }
    if (request->state == ParseState::kInvalid) {
      spdlog::warn("{}: {}: socks4: refused request: {}", ctx.service, peer, request->reason);
      co_await write_message(*client, socks4::encode_reply(request->reply));
      co_return;
    }
    const auto& message = request->value;
    if (ctx.auther && !ctx.auther->authenticate(message.user_id, "")) {
      spdlog::warn("{}: {}: socks4: refused 93: user id \"{}\" is not allowed", ctx.service, peer, message.user_id);
      co_await write_message(*client, socks4::encode_reply(socks4::reply::kUserIdMismatch));
      co_return;
    }
    SessionLog session(ctx.service, ctx.stats.get(), *client);
    session.set_target(message.address.to_string());
    if (message.command == socks4::command::kBind) {
      if (!options_.bind) {
        spdlog::warn("{}: {}: socks4: refused: BIND is disabled (enable with bind=true)", ctx.service, peer);
        co_await write_message(*client, socks4::encode_reply(socks4::reply::kRejected));
        co_return;
      }
      co_await serve_bind(std::move(client), std::move(buffer), message.address, encode_reply, ctx, session);
      co_return;
    }
    co_await serve_connect(std::move(client), message.address, std::move(buffer), encode_reply, ctx, session);
  }

 private:
  SocksOptions options_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Handler>> make_socks4_handler(const config::v1::ServiceConfig& service) {
  auto options = parse_socks_options(service.handler().metadata());
  if (!options.ok()) return options.status();
  return std::make_unique<Socks4Handler>(*options);
}

}  // namespace strait::agent
