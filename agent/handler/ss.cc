#include "agent/handler/ss.h"

#include <algorithm>
#include <optional>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "agent/connector/ss_options.h"
#include "agent/handler/ss_salt_filter.h"
#include "agent/observe/session_log.h"
#include "agent/protocol/shadowsocks2022.h"
#include "agent/protocol/socks5.h"
#include "agent/wire/ss_stream.h"
#include "common/duration.h"
#include "common/stream_deadline.h"

namespace strait::agent {
namespace {

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
// The target header must come within this from the connection's start; bad input is held
// as long. shadowsocks-libev waits about as long before it drops a silent client.
constexpr std::chrono::nanoseconds kDefaultReadTimeout = std::chrono::seconds(30);
constexpr size_t kReadChunk = 4096;

std::span<const uint8_t> bytes_of(const std::string& text) {
  return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

struct SsHandlerOptions {
  SsKey key;
  std::chrono::nanoseconds read_timeout = kDefaultReadTimeout;
};

// How reading the first chunk ended: the target, or why not.
struct TargetRead {
  std::optional<common::HostPort> target;
  std::string reason;
  bool probe = false;  // bytes that are not our protocol: held, not answered
};

class SsHandler final : public Handler {
 public:
  explicit SsHandler(SsHandlerOptions options)
      : options_(std::move(options)),
        salts_(std::make_shared<SaltFilter>()),
        recent_salts_(std::make_shared<RecentSaltFilter>()) {}

  asio::awaitable<void> handle(StreamPtr client, const HandlerContext& ctx) const override {
    const std::string peer = client->remote_address();
    std::optional<SsStreamParts> parts;
    TargetRead read;
    {
      common::StreamDeadline deadline(*client);
      deadline.arm(options_.read_timeout);
      if (options_.key.method.edition_2022) {
        read = co_await read_request_2022(*client, parts);
      } else {
        parts.emplace(ss_wire::StreamEncryptor(options_.key.method, options_.key.master_key),
                      ss_wire::StreamDecryptor(options_.key.method, options_.key.master_key));
        read = co_await read_target(*client, *parts);
      }
      if (read.probe) {
        spdlog::debug("{}: {}: ss: {}; holding the connection until the client closes it or readTimeout", ctx.service,
                      peer, read.reason);
        co_await drain(*client);
        co_return;
      }
      deadline.disarm();
      if (!read.target) {
        if (deadline.expired()) read.reason = "no target header within " + common::format_duration(options_.read_timeout);
        if (!read.reason.empty()) spdlog::debug("{}: {}: ss: {}", ctx.service, peer, read.reason);
        co_return;
      }
    }
    SessionLog session(ctx.service, ctx.stats.get(), *client);
    std::string target = read.target->to_string();
    session.set_target(target);
    auto upstream = co_await ctx.router->dial(client->get_executor(), Network::kTcp, target, read.target->host);
    if (!upstream) {
      // Shadowsocks has no error reply: the client sees its connection end.
      session.finish(upstream.error());
      co_return;
    }
    StreamPtr tunnel = make_ss_stream(std::move(client), *std::move(parts));
    relay_then_log(std::move(tunnel), std::move(*upstream), ctx.relay, std::move(session));
  }

 private:
  // Reads until the first chunk's plaintext holds the whole target address.
  asio::awaitable<TargetRead> read_target(Stream& client, SsStreamParts& parts) const {
    TargetRead result;
    bool salt_recorded = false;
    for (;;) {
      auto decoded = parts.decryptor.decode(bytes_of(parts.received), parts.plain);
      parts.received.erase(0, decoded.consumed);
      if (decoded.invalid) {
        result.reason = std::string(decoded.reason);
        result.probe = true;
        co_return result;
      }
      if (!parts.plain.empty()) {
        // Only a salt whose chunk authenticated is remembered: random bytes fill nothing.
        if (!salt_recorded && !salts_->insert(parts.decryptor.salt())) {
          result.reason = "replayed salt";
          result.probe = true;
          co_return result;
        }
        salt_recorded = true;
        auto address = socks5::parse_address(bytes_of(parts.plain));
        if (address.state == ParseState::kComplete) {
          parts.plain.erase(0, address.size);
          result.target = std::move(address.value);
          co_return result;
        }
        if (address.state == ParseState::kInvalid) {
          result.reason = "bad target address: " + address.reason;
          result.probe = true;
          co_return result;
        }
      }
      size_t held = parts.received.size();
      size_t room = std::max(kReadChunk, parts.decryptor.next_unit_size() - std::min(held, parts.decryptor.next_unit_size()));
      parts.received.resize(held + room);
      auto [error, n] = co_await client.async_read_some(asio::buffer(parts.received.data() + held, room), kUseTuple);
      parts.received.resize(held + n);
      if (error) {
        // A client that closes before sending a whole header is not worth a line, unless it
        // sent something.
        if (held + n > 0 || !parts.plain.empty()) result.reason = "closed inside the header: " + error.message();
        co_return result;
      }
    }
  }

  // SIP022: reads salt, identity header and the two header chunks; on success `parts` holds
  // the stream's ciphers (the response answers the user's PSK) and the initial payload.
  asio::awaitable<TargetRead> read_request_2022(Stream& client, std::optional<SsStreamParts>& parts) const {
    TargetRead result;
    const ss_wire::Method& method = options_.key.method;
    std::string received;
    for (;;) {
      auto head = ss2022::parse_request_head(method, options_.key.master_key, options_.key.users.get(),
                                             bytes_of(received), ss2022::unix_now());
      if (head.state == ParseState::kInvalid) {
        result.reason = head.reason;
        result.probe = true;
        co_return result;
      }
      if (head.state == ParseState::kComplete) {
        // Checked only once the header authenticated and its timestamp is fresh (§3.1.4).
        auto salt = recent_salts_->insert(head.value.salt);
        if (salt != RecentSaltFilter::Outcome::kNew) {
          result.reason = salt == RecentSaltFilter::Outcome::kReplayed ? "replayed salt" : "salt store full; refused";
          result.probe = true;
          co_return result;
        }
        ss_wire::StreamEncryptor encryptor(method, head.value.key);
        encryptor.set_opening(ss_wire::Opening2022{false, {}, {}, head.value.salt});
        parts.emplace(std::move(encryptor),
                      ss_wire::StreamDecryptor(method, head.value.salt, *std::move(head.value.aead)));
        parts->received = received.substr(head.size);
        parts->plain = std::move(head.value.payload);
        if (head.value.user) spdlog::debug("ss: 2022 request from user {}", head.value.user->name);
        result.target = std::move(head.value.target);
        co_return result;
      }
      size_t held = received.size();
      received.resize(held + kReadChunk);
      auto [error, n] = co_await client.async_read_some(asio::buffer(received.data() + held, kReadChunk), kUseTuple);
      received.resize(held + n);
      if (error) {
        if (held + n > 0) result.reason = "closed inside the header: " + error.message();
        co_return result;
      }
    }
  }

  // Reads and drops everything until the client closes or the deadline closes the stream.
  static asio::awaitable<void> drain(Stream& client) {
    char sink[kReadChunk];
    for (;;) {
      auto [error, n] = co_await client.async_read_some(asio::buffer(sink), kUseTuple);
      if (error) co_return;
    }
  }

  SsHandlerOptions options_;
  std::shared_ptr<SaltFilter> salts_;
  std::shared_ptr<RecentSaltFilter> recent_salts_;  // 2022 methods
};

}  // namespace

absl::StatusOr<std::unique_ptr<Handler>> make_ss_handler(const config::v1::ServiceConfig& service) {
  const auto& metadata = service.handler().metadata();
  auto key = parse_ss_key("ss handler", service.handler().auth(), metadata);
  if (!key.ok()) return key.status();
  if (!key->identity_keys.empty()) {
    return absl::InvalidArgumentError("ss handler: the password is one base64 PSK (the iPSK when users are set)");
  }
  SsHandlerOptions options{*std::move(key)};
  auto timeout = common::metadata_duration(metadata, "readTimeout");
  if (!timeout.ok()) return timeout.status();
  if (*timeout && (*timeout)->count() > 0) options.read_timeout = **timeout;
  return std::make_unique<SsHandler>(std::move(options));
}

}  // namespace strait::agent
