#include "agent/handler/http2.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <spdlog/spdlog.h>

#include "agent/channel/h2_stream.h"
#include "agent/handler/handler_options.h"
#include "agent/handler/http_request.h"
#include "agent/observe/session_log.h"
#include "agent/protocol/proxy_error.h"
#include "common/log_escape.h"
#include "common/metadata.h"
#include "common/stream_deadline.h"
#include "common/strings.h"

namespace strait::agent {
namespace {

namespace beast = boost::beast;
using common::str_cat;
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
constexpr size_t kBodyChunk = 16 * 1024;
constexpr std::string_view kProxyAgent = "strait";

struct Http2Options {
  std::chrono::nanoseconds read_timeout;
  std::string realm = "gost";  // GOST's http2 handler answers 407 with this realm
};

// Fields of one connection (RFC 9113 §8.2.2, RFC 9110 §7.6.1) or of the proxy hop: passed on
// in neither direction. Host is set from the target.
bool hop_by_hop(std::string_view name) {
  for (std::string_view field : {"connection", "keep-alive", "proxy-connection", "proxy-authorization",
                                 "proxy-authenticate", "te", "trailer", "transfer-encoding", "upgrade", "host",
                                 "http2-settings"}) {
    if (common::iequals(name, field)) return true;
  }
  return false;
}

int status_for_dial_error(const error_code& ec) {
  if (ec == asio::error::timed_out) return 504;
  if (ec == ProxyError::kUnsupportedNetwork) return 501;
  if (ec == ProxyError::kForbidden) return 403;
  return 502;
}

// The request as the HTTP/1 proxy's checks see it: CONNECT authority, or an absolute URI.
http::request_header<> proxy_head(const h2::Head& request) {
  http::request_header<> head;
  head.method_string(request.method);
  head.target(request.method == "CONNECT" ? request.authority
                                          : str_cat(request.scheme, "://", request.authority, request.path));
  return head;
}

// A short text answer that ends the stream.
asio::awaitable<void> answer(H2Stream& stream, int status, std::string_view reason, h2::Fields fields = {}) {
  std::string body = str_cat("strait: ", reason, "\n");
  fields.emplace_back("proxy-agent", kProxyAgent);
  fields.emplace_back("content-type", "text/plain");
  fields.emplace_back("content-length", std::to_string(body.size()));
  if (stream.respond(status, fields)) co_return;
  co_await asio::async_write(stream, asio::buffer(body), kUseTuple);
  stream.shutdown_send();
}

// Reads once from `stream` within `idle` (zero: no limit).
asio::awaitable<std::pair<error_code, size_t>> read_within(Stream& stream, asio::mutable_buffer buffer,
                                                           std::chrono::nanoseconds idle) {
  common::StreamDeadline deadline(stream);
  if (idle.count() > 0) deadline.arm(idle);
  auto [error, n] = co_await stream.async_read_some(buffer, kUseTuple);
  if (deadline.expired()) error = asio::error::timed_out;
  co_return std::pair{error, n};
}

class Http2Handler final : public Handler {
 public:
  explicit Http2Handler(Http2Options options) : options_(std::move(options)) {}

  asio::awaitable<void> handle(StreamPtr client, const HandlerContext& ctx) const override {
    auto* stream = dynamic_cast<H2Stream*>(client.get());
    if (stream == nullptr) {
      spdlog::error("{}: the http2 handler serves the streams of the http2 listener only", ctx.service);
      co_return;
    }
    const h2::Head& request = stream->head();
    const std::string peer = client->remote_address();
    auto target = proxy_target(proxy_head(request));
    if (auto* refusal = std::get_if<HttpRefusal>(&target)) {
      spdlog::warn("{}: {}: refused {}: {}", ctx.service, peer, refusal->status, common::text_escaped(refusal->reason));
      co_await answer(*stream, refusal->status, refusal->reason);
      co_return;
    }
    const auto& proxy = std::get<ProxyTarget>(target);
    if (ctx.auther && !authorized(request, *ctx.auther)) {
      spdlog::warn("{}: {}: refused 407: missing or wrong proxy credentials for {}", ctx.service, peer,
                   proxy.authority);
      h2::Fields challenge;
      challenge.emplace_back("proxy-authenticate", str_cat("Basic realm=\"", options_.realm, "\""));
      co_await answer(*stream, 407, "proxy authentication required", std::move(challenge));
      co_return;
    }
    if (proxy.tunnel) {
      co_await tunnel(*stream, proxy.authority, ctx);
    } else {
      co_await forward(*stream, request, proxy, ctx, peer);
    }
  }

 private:
  static bool authorized(const h2::Head& request, const Auther& auther) {
    auto credentials = parse_basic_credentials(request.field("proxy-authorization"));
    return credentials && auther.authenticate(credentials->username, credentials->password);
  }

  static asio::awaitable<void> tunnel(H2Stream& client, const std::string& authority, const HandlerContext& ctx) {
    SessionLog session(ctx.service, ctx.stats.get(), client);
    session.set_target(authority);
    auto upstream = co_await ctx.router->dial(client.get_executor(), Network::kTcp, authority, authority);
    if (!upstream) {
      session.finish(upstream.error());
      co_await answer(client, status_for_dial_error(upstream.error()),
                      str_cat("cannot reach ", authority, ": ", upstream.error().message()));
      co_return;
    }
    h2::Fields fields;
    fields.emplace_back("proxy-agent", kProxyAgent);
    if (auto error = client.respond(200, fields); error) {
      session.finish(error);
      co_return;
    }
    session.finish(co_await relay(client, **upstream, ctx.relay));
  }

  // Sends the request on as HTTP/1.1 (the body streamed, chunked when its length is not
  // known) and streams the response back.
  asio::awaitable<void> forward(H2Stream& client, const h2::Head& request, const ProxyTarget& proxy,
                                const HandlerContext& ctx, const std::string& peer) const {
    SessionLog session(ctx.service, ctx.stats.get(), client);
    session.set_target(proxy.authority);
    auto upstream = co_await ctx.router->dial(client.get_executor(), Network::kTcp, proxy.authority, proxy.authority);
    if (!upstream) {
      session.finish(upstream.error());
      co_await answer(client, status_for_dial_error(upstream.error()),
                      str_cat("cannot reach ", proxy.authority, ": ", upstream.error().message()));
      co_return;
    }
    if (auto error = co_await send_request(client, request, proxy, **upstream, ctx.relay.idle_timeout); error) {
      session.finish(error);
      co_await answer(client, 502, str_cat("cannot send the request to ", proxy.authority));
      co_return;
    }
    beast::flat_buffer buffer;
    std::unique_ptr<http::response_parser<http::buffer_body>> parser;
    if (auto error = co_await read_response_head(**upstream, buffer, parser, request.method == "HEAD"); error) {
      session.finish(error);
      bool late = error == asio::error::timed_out;
      co_await answer(client, late ? 504 : 502,
                      late ? str_cat(proxy.authority, " sent no response in time")
                           : str_cat("bad response from ", proxy.authority));
      co_return;
    }
    auto& response = parser->get();
    std::vector<std::string> listed;  // fields the upstream's Connection names are its own
    for (auto token : common::split(common::to_std_view(response[http::field::connection]), ',', true)) {
      listed.push_back(common::to_lower(common::strip_whitespace(token)));
    }
    h2::Fields fields;
    for (const auto& field : response) {
      std::string name = common::to_lower(common::to_std_view(field.name_string()));
      if (hop_by_hop(name) || std::find(listed.begin(), listed.end(), name) != listed.end()) continue;
      fields.emplace_back(std::move(name), std::string(field.value()));
    }
    const int status = response.result_int();
    const bool no_body = request.method == "HEAD" || status == 204 || status == 304 || parser->is_done();
    if (auto error = client.respond(status, fields, no_body); error) {
      session.finish(error);
      co_return;
    }
    std::vector<char> chunk(kBodyChunk);
    while (!parser->is_done()) {
      response.body().data = chunk.data();
      response.body().size = chunk.size();
      common::StreamDeadline deadline(**upstream);
      if (ctx.relay.idle_timeout.count() > 0) deadline.arm(ctx.relay.idle_timeout);
      auto [read_error, unused] = co_await http::async_read(**upstream, buffer, *parser, kUseTuple);
      if (read_error == http::error::need_buffer) read_error = {};
      size_t n = chunk.size() - response.body().size;
      if (n > 0) {
        auto [write_error, written] = co_await asio::async_write(client, asio::buffer(chunk.data(), n), kUseTuple);
        if (write_error) read_error = write_error;
      }
      if (read_error) {
        session.finish(deadline.expired() ? error_code(asio::error::timed_out) : read_error);
        client.reset(h2::kCancel);  // the client must not take a cut body for a whole one
        co_return;
      }
    }
    client.shutdown_send();
    spdlog::info("{}: {} {} http://{}{} -> {}", ctx.service, peer, common::text_escaped(request.method),
                 proxy.authority, common::text_escaped(proxy.origin_form), status);
  }

  static asio::awaitable<error_code> send_request(H2Stream& client, const h2::Head& request, const ProxyTarget& proxy,
                                                  Stream& upstream, std::chrono::nanoseconds idle) {
    http::request<http::buffer_body> out;
    out.method_string(request.method);
    out.target(proxy.origin_form);
    out.version(11);
    for (const auto& [name, value] : request.fields) {
      if (!hop_by_hop(name)) out.insert(name, value);
    }
    out.set(http::field::host, proxy.host_header);
    const bool body = !client.peer_done() || out.has_content_length();
    if (body && !out.has_content_length()) out.chunked(true);
    out.body().data = nullptr;
    out.body().size = 0;
    out.body().more = body;
    http::serializer<true, http::buffer_body> serializer(out);
    std::vector<char> chunk(kBodyChunk);
    for (;;) {
      auto [write_error, unused] = co_await http::async_write(upstream, serializer, kUseTuple);
      if (write_error && write_error != http::error::need_buffer) co_return write_error;
      if (serializer.is_done()) co_return error_code{};
      auto [read_error, n] = co_await read_within(client, asio::buffer(chunk), idle);
      if (read_error && read_error != asio::error::eof) co_return read_error;
      out.body().data = n > 0 ? chunk.data() : nullptr;
      out.body().size = n;
      out.body().more = !read_error;
    }
  }

  // The final response head (interim 1xx skipped) within the read timeout, as GOST's
  // readTimeout bounds its upstream response header.
  asio::awaitable<error_code> read_response_head(Stream& upstream, beast::flat_buffer& buffer,
                                                 std::unique_ptr<http::response_parser<http::buffer_body>>& parser,
                                                 bool head_request) const {
    common::StreamDeadline deadline(upstream);
    deadline.arm(options_.read_timeout);
    for (;;) {
      parser = std::make_unique<http::response_parser<http::buffer_body>>();
      parser->body_limit(boost::none);
      parser->header_limit(kMaxRequestHead);
      if (head_request) parser->skip(true);
      auto [error, unused] = co_await http::async_read_header(upstream, buffer, *parser, kUseTuple);
      if (deadline.expired()) co_return asio::error::timed_out;
      if (error) co_return error;
      int code = parser->get().result_int();
      if (code == 101) co_return ProxyError::kBadResponse;  // no upgrades through HTTP/2
      if (code / 100 != 1) co_return error_code{};
    }
  }

  Http2Options options_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Handler>> make_http2_handler(const config::v1::ServiceConfig& service) {
  Http2Options options;
  const auto& metadata = service.handler().metadata();
  auto timeout = handler_read_timeout(metadata);
  if (!timeout.ok()) return timeout.status();
  options.read_timeout = *timeout;
  options.realm = common::metadata_string(metadata, "authBasicRealm").value_or(options.realm);
  return std::make_unique<Http2Handler>(std::move(options));
}

}  // namespace strait::agent
