#include "agent/handler/http.h"

#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <spdlog/spdlog.h>

#include "agent/protocol/proxy_error.h"
#include "agent/handler/handler_options.h"
#include "agent/handler/http_request.h"
#include "agent/observe/session_log.h"
#include "common/duration.h"
#include "common/metadata.h"
#include "common/stream_deadline.h"
#include "common/strings.h"

namespace strait::agent {
namespace {

namespace beast = boost::beast;
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
constexpr size_t kBodyChunk = 16 * 1024;
constexpr std::string_view kProxyAgent = "strait";

struct HttpOptions {
  std::chrono::nanoseconds read_timeout;
  std::string realm = "strait";
};

// Hop-by-hop fields (RFC 9110 §7.6.1) plus the proxy-only ones; Transfer-Encoding stays
// because the body is re-sent with the same framing.
void remove_hop_by_hop(http::fields& fields, bool keep_upgrade) {
  std::vector<std::string> listed;
  for (std::string_view token : common::split(std::string_view(fields[http::field::connection]), ',', true)) {
    std::string name = common::to_lower(common::strip_whitespace(token));
    if (!name.empty() && name != "close" && name != "keep-alive" && !(keep_upgrade && name == "upgrade")) {
      listed.push_back(name);
    }
  }
  for (const auto& name : listed) fields.erase(name);
  fields.erase(http::field::keep_alive);
  fields.erase(http::field::proxy_connection);
  fields.erase(http::field::proxy_authorization);
  fields.erase(http::field::proxy_authenticate);
  fields.erase(http::field::te);
  fields.erase(http::field::trailer);
  fields.erase(http::field::connection);
  if (!keep_upgrade) fields.erase(http::field::upgrade);
}

int status_for_dial_error(const error_code& ec) {
  if (ec == asio::error::timed_out) return 504;
  if (ec == ProxyError::kUnsupportedNetwork) return 501;
  if (ec == ProxyError::kForbidden) return 403;
  return 502;
}

asio::awaitable<void> write_refusal(Stream& client, int status, std::string_view reason, std::string_view extra_headers) {
  std::string body = common::str_cat("strait: ", reason, "\n");
  std::string response = common::str_cat("HTTP/1.1 ", status, " ", std::string_view(http::obsolete_reason(static_cast<http::status>(status))),
                                      "\r\nProxy-Agent: ", kProxyAgent, "\r\n", extra_headers,
                                      "Content-Type: text/plain\r\nContent-Length: ", body.size(),
                                      "\r\nConnection: close\r\n\r\n", body);
  co_await asio::async_write(client, asio::buffer(response), kUseTuple);
}

// Streams one message (head already read into `parser`) from `input` to `output`, following
// Beast's buffer_body relay pattern so a body of any size passes through a fixed buffer.
// Each read of the body must make progress within `idle` (as Beast's per-operation
// expires_after), so a peer that stops sending mid-body does not hold the connection.
template <bool kIsRequest>
asio::awaitable<error_code> transfer_message(Stream& input, beast::flat_buffer& input_buffer,
                                             http::parser<kIsRequest, http::buffer_body>& parser, Stream& output,
                                             std::chrono::nanoseconds idle) {
  http::serializer<kIsRequest, http::buffer_body> serializer(parser.get());
  std::vector<char> chunk(kBodyChunk);
  common::StreamDeadline deadline(input);
  do {
    if (!parser.is_done()) {
      parser.get().body().data = chunk.data();
      parser.get().body().size = chunk.size();
      if (idle.count() > 0) deadline.arm(idle);
      auto [read_error, unused] = co_await http::async_read(input, input_buffer, parser, kUseTuple);
      deadline.disarm();
      if (deadline.expired()) co_return asio::error::timed_out;
      if (read_error && read_error != http::error::need_buffer) co_return read_error;
      parser.get().body().size = chunk.size() - parser.get().body().size;
      parser.get().body().data = chunk.data();
      parser.get().body().more = !parser.is_done();
    } else {
      parser.get().body().data = nullptr;
      parser.get().body().size = 0;
      parser.get().body().more = false;
    }
    auto [write_error, written] = co_await http::async_write(output, serializer, kUseTuple);
    if (write_error && write_error != http::error::need_buffer) co_return write_error;
  } while (!serializer.is_done());
  co_return error_code{};
}

// An upstream connection kept between requests of one client connection (keep-alive).
struct KeptUpstream {
  StreamPtr stream;
  std::string authority;

  void drop() {
    if (stream) stream->close();
    stream.reset();
    authority.clear();
  }
};

// False when the kept upstream was closed by its server while idle (it reads EOF or has
// unexpected bytes), so the next request is not written into a dead connection.
bool still_open(Stream& stream) {
  auto* socket = stream.plain_tcp_socket();
  if (socket == nullptr) return true;
  char byte;
  ssize_t n = ::recv(socket->native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

// Reads the final response head, skipping interim 1xx responses other than 101, within
// `timeout` (GOST's readTimeout is its upstream response header timeout too).
asio::awaitable<error_code> read_final_response_head(Stream& upstream, beast::flat_buffer& buffer,
                                                     std::unique_ptr<http::response_parser<http::buffer_body>>& parser,
                                                     bool head_request, std::chrono::nanoseconds timeout) {
  common::StreamDeadline deadline(upstream);
  deadline.arm(timeout);
  for (;;) {
    parser = std::make_unique<http::response_parser<http::buffer_body>>();
    parser->body_limit(boost::none);
    parser->header_limit(kMaxRequestHead);
    if (head_request) parser->skip(true);
    auto [ec, unused] = co_await http::async_read_header(upstream, buffer, *parser, kUseTuple);
    if (deadline.expired()) co_return asio::error::timed_out;
    if (ec) co_return ec;
    int code = parser->get().result_int();
    if (code / 100 != 1 || code == 101) co_return error_code{};
  }
}

class HttpHandler final : public Handler {
 public:
  explicit HttpHandler(HttpOptions options) : options_(std::move(options)) {}

  asio::awaitable<void> handle(StreamPtr client, const HandlerContext& ctx) const override {
    beast::flat_buffer buffer;
    KeptUpstream upstream;
    const std::string peer = client->remote_address();
    common::StreamDeadline deadline(*client);
    for (bool first = true;; first = false) {
      ProxyRequestParser parser;
      configure_request_parser(parser);
      deadline.arm(options_.read_timeout);
      auto [read_error, unused] = co_await http::async_read_header(*client, buffer, parser, kUseTuple);
      deadline.disarm();
      if (read_error) {
        co_await refuse_unreadable(*client, read_error, deadline.expired(), first, buffer.size() > 0, peer, ctx);
        co_return;
      }
      auto& request = parser.get();
      auto target = proxy_target(request.base());
      if (auto* refusal = std::get_if<HttpRefusal>(&target)) {
        spdlog::warn("{}: {}: refused {}: {}", ctx.service, peer, refusal->status, refusal->reason);
        co_await write_refusal(*client, refusal->status, refusal->reason, "");
        co_return;
      }
      auto& proxy = std::get<ProxyTarget>(target);
      if (ctx.auther && !authorized(request, *ctx.auther)) {
        spdlog::warn("{}: {}: refused 407: missing or wrong proxy credentials for {}", ctx.service, peer,
                     proxy.authority);
        co_await write_refusal(*client, 407, "proxy authentication required",
                               common::str_cat("Proxy-Authenticate: Basic realm=\"", options_.realm, "\"\r\n"));
        co_return;
      }
      if (proxy.tunnel) {
        co_await tunnel(std::move(client), buffer, proxy.authority, ctx);
        co_return;
      }
      bool keep_going = co_await forward_request(*client, buffer, parser, proxy, upstream, ctx, peer);
      if (!keep_going) co_return;
    }
  }

 private:
  static bool authorized(const http::request<http::buffer_body>& request, const Auther& auther) {
    auto header = request.find(http::field::proxy_authorization);
    if (header == request.end()) return false;
    auto credentials = parse_basic_credentials(std::string_view(header->value().data(), header->value().size()));
    return credentials && auther.authenticate(credentials->username, credentials->password);
  }

  // Says why a request head could not be read: a log line with the peer, and a protocol
  // refusal where the client is still listening.
  asio::awaitable<void> refuse_unreadable(Stream& client, const error_code& error, bool timed_out, bool first,
                                          bool partial, const std::string& peer, const HandlerContext& ctx) const {
    if (timed_out) {
      if (first || partial) {
        spdlog::info("{}: {}: no complete request within {}", ctx.service, peer,
                     common::format_duration(options_.read_timeout));
      }
    } else if (error == http::error::end_of_stream || error == http::error::partial_message ||
               error == asio::error::eof) {
      if (partial) spdlog::info("{}: {}: truncated request head, client closed", ctx.service, peer);
    } else if (error == http::error::header_limit) {
      spdlog::warn("{}: {}: refused 431: request head larger than {} bytes", ctx.service, peer, kMaxRequestHead);
      co_await write_refusal(client, 431, "request head too large", "");
    } else if (error.category() == http::make_error_code(http::error::bad_method).category()) {
      spdlog::warn("{}: {}: refused 400: malformed request: {}", ctx.service, peer, error.message());
      co_await write_refusal(client, 400, "malformed request", "");
    }
  }

  // Sends one absolute-form request upstream and its response back. Returns whether the
  // client connection stays open for another request.
  asio::awaitable<bool> forward_request(Stream& client, beast::flat_buffer& buffer, ProxyRequestParser& parser,
                                        const ProxyTarget& proxy, KeptUpstream& upstream,
                                        const HandlerContext& ctx, const std::string& peer) const {
    auto& request = parser.get();
    SessionLog session(ctx.service, ctx.stats.get(), client);
    session.set_target(proxy.authority);
    bool upgrade = request.count(http::field::upgrade) > 0;
    bool client_keep_alive = request.keep_alive();
    bool head_request = request.method() == http::verb::head;
    // Answering 100 Continue here lets the client send its body at once; the upstream then
    // gets the body without waiting (RFC 9110 §10.1.1 lets a proxy do either).
    if (common::iequals(common::to_std_view(request[http::field::expect]), "100-continue")) {
      request.erase(http::field::expect);
      std::string_view interim = "HTTP/1.1 100 Continue\r\n\r\n";
      auto [ec, unused] = co_await asio::async_write(client, asio::buffer(interim), kUseTuple);
      if (ec) co_return false;
    }
    request.target(proxy.origin_form);
    remove_hop_by_hop(request.base(), upgrade);
    if (upgrade) request.set(http::field::connection, "upgrade");
    // RFC 9112 §3.2.2: the URI's authority wins over any Host the client sent, so the origin
    // is never told a different name from the one that was dialled.
    request.set(http::field::host, proxy.host_header);
    if (request.version() == 10 && !upgrade) request.set(http::field::connection, "close");
    // A request without a body can be sent again on a fresh connection when a kept one
    // turns out to be dead; one with a body cannot, it has been consumed.
    const bool resendable = parser.is_done();

    beast::flat_buffer upstream_buffer;
    std::unique_ptr<http::response_parser<http::buffer_body>> response_parser;
    for (int attempt = 0;; ++attempt) {
      bool reused = upstream.stream && upstream.authority == proxy.authority && still_open(*upstream.stream);
      if (!reused) {
        upstream.drop();
        auto dialed = co_await ctx.router->dial(client.get_executor(), Network::kTcp, proxy.authority, proxy.authority);
        if (!dialed) {
          session.finish(dialed.error());
          co_await write_refusal(client, status_for_dial_error(dialed.error()),
                                 common::str_cat("cannot reach ", proxy.authority, ": ", dialed.error().message()), "");
          co_return false;
        }
        upstream.stream = std::move(*dialed);
        upstream.authority = proxy.authority;
      }
      error_code ec = co_await transfer_message<true>(client, buffer, parser, *upstream.stream, ctx.relay.idle_timeout);
      if (!ec) {
        ec = co_await read_final_response_head(*upstream.stream, upstream_buffer, response_parser, head_request,
                                               options_.read_timeout);
      }
      if (!ec) break;
      upstream.drop();
      if (reused && resendable && attempt == 0 && upstream_buffer.size() == 0 && ec != asio::error::timed_out) continue;
      session.finish(ec);
      if (ec == asio::error::timed_out) {
        co_await write_refusal(client, 504,
                               common::str_cat(proxy.authority, " sent no response within ",
                                               common::format_duration(options_.read_timeout)),
                               "");
      } else {
        co_await write_refusal(client, 502, common::str_cat("bad response from ", proxy.authority), "");
      }
      co_return false;
    }

    auto& response = response_parser->get();
    bool switching = response.result() == http::status::switching_protocols && upgrade;
    bool upstream_keep_alive = response.keep_alive();
    remove_hop_by_hop(response.base(), switching);
    if (switching) {
      response.set(http::field::connection, "upgrade");
    } else {
      // A response with explicit framing ends without closing the upstream, so the client
      // connection can stay open even when the upstream one does not.
      int code = response.result_int();
      bool framed = response.has_content_length() || response.chunked() || head_request || code == 204 ||
                    code == 304;
      response.keep_alive(client_keep_alive && (upstream_keep_alive || framed));
    }
    response.set("Proxy-Agent", kProxyAgent);
    if (auto ec = co_await transfer_message<false>(*upstream.stream, upstream_buffer, *response_parser, client,
                                                   ctx.relay.idle_timeout);
        ec) {
      session.finish(ec);
      co_return false;
    }
    if (switching) {
      co_await asio::async_write(client, upstream_buffer.data(), kUseTuple);
      co_await asio::async_write(*upstream.stream, buffer.data(), kUseTuple);
      session.finish(co_await relay(client, *upstream.stream, ctx.relay));
      co_return false;
    }
    spdlog::info("{}: {} {} http://{}{} -> {}", ctx.service, peer, std::string(request.method_string()),
                 proxy.authority, proxy.origin_form, response.result_int());
    if (!upstream_keep_alive) upstream.drop();
    co_return client_keep_alive && response.keep_alive();
  }

  asio::awaitable<void> tunnel(StreamPtr client, beast::flat_buffer& buffer, const std::string& authority,
                               const HandlerContext& ctx) const {
    SessionLog session(ctx.service, ctx.stats.get(), *client);
    session.set_target(authority);
    auto upstream = co_await ctx.router->dial(client->get_executor(), Network::kTcp, authority, authority);
    if (!upstream) {
      session.finish(upstream.error());
      co_await write_refusal(*client, status_for_dial_error(upstream.error()),
                             common::str_cat("cannot reach ", authority, ": ", upstream.error().message()), "");
      co_return;
    }
    std::string established =
        common::str_cat("HTTP/1.1 200 Connection established\r\nProxy-Agent: ", kProxyAgent, "\r\n\r\n");
    auto [write_error, unused] = co_await asio::async_write(*client, asio::buffer(established), kUseTuple);
    if (write_error) {
      session.finish(write_error);
      co_return;
    }
    // Bytes the client sent right after its CONNECT head (e.g. a TLS ClientHello) go first.
    if (buffer.size() > 0) {
      auto [early_error, early] = co_await asio::async_write(**upstream, buffer.data(), kUseTuple);
      if (early_error) {
        session.finish(early_error);
        co_return;
      }
    }
    relay_then_log(std::move(client), std::move(*upstream), ctx.relay, std::move(session));
  }

  HttpOptions options_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Handler>> make_http_handler(const config::v1::ServiceConfig& service) {
  HttpOptions options;
  const auto& metadata = service.handler().metadata();
  auto timeout = handler_read_timeout(metadata);
  if (!timeout.ok()) return timeout.status();
  options.read_timeout = *timeout;
  options.realm = common::metadata_string(metadata, "authBasicRealm").value_or(options.realm);
  return std::make_unique<HttpHandler>(std::move(options));
}

}  // namespace strait::agent
