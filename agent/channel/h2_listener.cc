#include "agent/channel/h2_listener.h"

#include <deque>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <spdlog/spdlog.h>

#include "absl/strings/escaping.h"
#include "agent/channel/h2_pool.h"
#include "common/log_escape.h"
#include "common/prefixed_stream.h"
#include "common/stream_deadline.h"
#include "common/strings.h"

namespace strait::agent {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using Clock = asio::steady_timer::clock_type;
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
// RFC 9113 §3.4: what a client speaking HTTP/2 with prior knowledge sends first.
constexpr std::string_view kClientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
constexpr size_t kMaxUpgradeHead = 8 * 1024;
// Connections served at once by one worker's listener; more wait in the kernel's queue.
constexpr size_t kMaxSessions = 4096;
constexpr auto kAcceptErrorPause = std::chrono::milliseconds(100);

// Shared by a listener, its accept coroutine and its sessions, all on the listener's worker.
struct AcceptState {
  explicit AcceptState(const asio::any_io_executor& executor)
      : ready_event(executor, Clock::time_point::max()), room_event(executor, Clock::time_point::max()) {}
  std::deque<StreamPtr> ready;
  bool started = false;
  bool closed = false;
  size_t sessions = 0;
  std::vector<std::weak_ptr<H2Session>> live;  // told GOAWAY when the listener closes
  uint64_t refusals = 0;
  asio::steady_timer ready_event;  // cancel(): a stream is ready, or the listener closed
  asio::steady_timer room_event;   // cancel(): a session ended, or the listener closed
};

void on_request(AcceptState& state, const H2ListenerConfig& config, std::unique_ptr<H2Stream> stream) {
  const h2::Head& request = stream->head();
  if (config.tunnel) {
    if (int status = h2::tunnel_request_status(request, config.path); status != 200) {
      spdlog::info("{}: {}: refused {} {} {}", config.name, stream->remote_address(), status,
                   common::text_escaped(request.method),
                   common::text_escaped(request.path.empty() ? request.authority : request.path));
      stream->respond(status, {}, true);
      return;
    }
  }
  if (state.closed || state.ready.size() >= config.backlog) {
    if (state.refusals++ % 1000 == 0) {
      spdlog::warn("{}: {}: refused a stream (REFUSED_STREAM): {}; {} refused so far", config.name,
                   stream->remote_address(), state.closed ? "the listener is closed" : "the accept backlog is full",
                   state.refusals);
    }
    stream->reset(h2::kRefusedStream);
    return;
  }
  if (config.tunnel && stream->respond(200)) return;
  state.ready.push_back(std::move(stream));
  state.ready_event.cancel();
}

H2Session::RequestHandler request_handler(std::shared_ptr<AcceptState> state,
                                          std::shared_ptr<const H2ListenerConfig> config) {
  return [state = std::move(state), config = std::move(config)](std::unique_ptr<H2Stream> stream) {
    on_request(*state, *config, std::move(stream));
  };
}

// Answers an HTTP/1.1 request on a cleartext listener: `Upgrade: h2c` starts the session
// with the request as stream 1; anything else is refused. Returns null when refused.
asio::awaitable<std::shared_ptr<H2Session>> upgrade(StreamPtr stream, beast::flat_buffer& buffer,
                                                     std::shared_ptr<AcceptState> state,
                                                     std::shared_ptr<const H2ListenerConfig> config) {
  const std::string peer = stream->remote_address();
  http::request_parser<http::empty_body> parser;
  parser.header_limit(kMaxUpgradeHead);
  auto [read_error, unused] = co_await http::async_read_header(*stream, buffer, parser, kUseTuple);
  if (read_error) {
    spdlog::info("{}: client {}: neither HTTP/2 nor an HTTP/1.1 request: {}", config->name, peer, read_error.message());
    co_return nullptr;
  }
  const auto& request = parser.get();
  auto has_token = [&](http::field name, std::string_view token) {
    for (auto part : common::split(common::to_std_view(request[name]), ',', true)) {
      if (common::iequals(common::strip_whitespace(part), token)) return true;
    }
    return false;
  };
  std::string settings;
  bool upgrade = has_token(http::field::upgrade, "h2c") && has_token(http::field::connection, "upgrade") &&
                 request.count("HTTP2-Settings") == 1 &&
                 absl::WebSafeBase64Unescape(std::string(request["HTTP2-Settings"]), &settings);
  // A request body would have to be read here and passed on; GOST's clients send none.
  if (!upgrade || parser.content_length().value_or(0) > 0 || parser.chunked()) {
    spdlog::info("{}: client {}: refused 505: HTTP/1.1 request without a usable Upgrade: h2c", config->name, peer);
    std::string_view refusal =
        "HTTP/1.1 505 HTTP Version Not Supported\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
    co_await asio::async_write(*stream, asio::buffer(refusal), kUseTuple);
    co_return nullptr;
  }
  std::string_view switching = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n";
  if (auto [write_error, n] = co_await asio::async_write(*stream, asio::buffer(switching), kUseTuple); write_error) {
    co_return nullptr;
  }
  h2::Head head;
  head.method = std::string(request.method_string());
  head.scheme = "http";
  head.path = std::string(request.target());
  head.authority = std::string(request[http::field::host]);
  for (const auto& field : request) {
    auto name = common::to_lower(common::to_std_view(field.name_string()));
    if (name == "host" || name == "connection" || name == "upgrade" || name == "http2-settings") continue;
    head.fields.emplace_back(std::move(name), std::string(field.value()));
  }
  std::string leftover(static_cast<const char*>(buffer.data().data()), buffer.size());
  auto settings_bytes = std::span(reinterpret_cast<const uint8_t*>(settings.data()), settings.size());
  co_return H2Session::start_upgraded_server(common::with_prefix(std::move(stream), std::move(leftover)),
                                             config->session, request_handler(state, config), settings_bytes,
                                             std::move(head), request.method() == http::verb::head);
}

// Tells a cleartext client speaking HTTP/2 from one sending HTTP/1.1 (for the upgrade).
asio::awaitable<std::shared_ptr<H2Session>> start_cleartext(StreamPtr stream, std::shared_ptr<AcceptState> state,
                                                            std::shared_ptr<const H2ListenerConfig> config) {
  common::StreamDeadline deadline(*stream);
  deadline.arm(config->handshake_timeout);
  beast::flat_buffer buffer(kMaxUpgradeHead);
  auto [error, n] = co_await stream->async_read_some(buffer.prepare(kMaxUpgradeHead), kUseTuple);
  if (error) co_return nullptr;
  buffer.commit(n);
  std::string_view first(static_cast<const char*>(buffer.data().data()), buffer.size());
  if (kClientPreface.starts_with(first.substr(0, kClientPreface.size()))) {
    deadline.disarm();
    co_return H2Session::start_server(common::with_prefix(std::move(stream), std::string(first)), config->session,
                                      request_handler(state, config));
  }
  auto session = co_await upgrade(std::move(stream), buffer, state, config);
  deadline.disarm();
  co_return session;
}

asio::awaitable<void> serve_connection(std::shared_ptr<AcceptState> state, std::shared_ptr<Listener> base,
                                       std::shared_ptr<const H2ListenerConfig> config, StreamPtr client) {
  const std::string peer = client->remote_address();
  ++state->sessions;  // counted from here, so that slow handshakes are bounded too
  // Gives the place back when the last holder (this coroutine or the session) lets go.
  std::shared_ptr<void> leave(nullptr, [state](void*) {
    --state->sessions;
    state->room_event.cancel();
  });
  auto opened = co_await base->handshake(std::move(client));  // TLS for h2/http2; it logs failures
  if (!opened || state->closed) co_return;
  if (config->tls && !tls_negotiated_h2(**opened)) {
    spdlog::info("{}: client {}: refused: the TLS client did not ask for HTTP/2 (ALPN h2)", config->name, peer);
    (*opened)->close();
    co_return;
  }
  std::shared_ptr<H2Session> session;
  if (config->accept_upgrade) {
    session = co_await start_cleartext(std::move(*opened), state, config);
  } else {
    session = H2Session::start_server(std::move(*opened), config->session, request_handler(state, config));
  }
  if (!session) co_return;
  session->on_end([leave] {});  // the session's end gives its place back
  std::erase_if(state->live, [](const auto& weak) { return weak.expired(); });
  state->live.push_back(session);
  if (state->closed) session->shutdown("the listener closed");
}

asio::awaitable<void> accept_connections(std::shared_ptr<AcceptState> state, std::shared_ptr<Listener> base,
                                         std::shared_ptr<const H2ListenerConfig> config) {
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer pause(executor);
  while (!state->closed) {
    if (state->sessions >= kMaxSessions) {
      co_await state->room_event.async_wait(kUseTuple);
      continue;
    }
    auto client = co_await base->accept();
    if (state->closed) break;
    if (!client) {
      spdlog::warn("{}: cannot accept: {}", config->name, client.error().message());
      pause.expires_after(kAcceptErrorPause);
      co_await pause.async_wait(kUseTuple);
      continue;
    }
    asio::co_spawn(executor, serve_connection(state, base, config, std::move(*client)),
                   [name = config->name](std::exception_ptr e) {
                     if (e) spdlog::error("{}: a connection's handshake ended by an unexpected exception", name);
                   });
  }
}

class H2Listener final : public Listener {
 public:
  H2Listener(asio::any_io_executor executor, std::shared_ptr<Listener> base,
             std::shared_ptr<const H2ListenerConfig> config)
      : executor_(std::move(executor)),
        base_(std::move(base)),
        config_(std::move(config)),
        state_(std::make_shared<AcceptState>(executor_)) {}
  ~H2Listener() override { close(); }

  asio::awaitable<Result<StreamPtr>> accept() override {
    auto state = state_;
    if (!state->started && !state->closed) {
      state->started = true;
      asio::co_spawn(executor_, accept_connections(state, base_, config_),
                     [name = config_->name](std::exception_ptr e) {
                       if (e) spdlog::error("{}: accept loop ended by an unexpected exception", name);
                     });
    }
    for (;;) {
      if (!state->ready.empty()) {
        StreamPtr stream = std::move(state->ready.front());
        state->ready.pop_front();
        co_return std::move(stream);
      }
      if (state->closed) co_return asio::error::operation_aborted;
      co_await state->ready_event.async_wait(kUseTuple);
      auto cancellation = co_await asio::this_coro::cancellation_state;
      if (cancellation.cancelled() != asio::cancellation_type::none) co_return asio::error::operation_aborted;
    }
  }
  std::vector<StreamPtr> take_pending() override {
    std::vector<StreamPtr> pending;
    for (auto& stream : state_->ready) pending.push_back(std::move(stream));
    state_->ready.clear();
    return pending;
  }
  void update(const ListenOptions& options) override { base_->update(options); }
  void close() override {
    if (state_->closed) return;
    state_->closed = true;
    base_->close();
    // Clients move their new streams to another connection (the listener that replaces this
    // one); streams already open finish.
    for (auto& weak : state_->live) {
      if (auto session = weak.lock()) session->shutdown("the listener closed");
    }
    // Streams nobody took (take_pending() comes first) are reset; each holds its session,
    // which holds this state.
    state_->ready.clear();
    state_->ready_event.cancel();
    state_->room_event.cancel();
  }
  common::HostPort bound_address() const override { return base_->bound_address(); }
  int native_handle() override { return base_->native_handle(); }

 private:
  asio::any_io_executor executor_;
  std::shared_ptr<Listener> base_;
  std::shared_ptr<const H2ListenerConfig> config_;
  std::shared_ptr<AcceptState> state_;
};

class H2ListenerFactory final : public ListenerFactory {
 public:
  H2ListenerFactory(std::unique_ptr<ListenerFactory> base, H2ListenerConfig config)
      : base_(std::move(base)), config_(std::make_shared<const H2ListenerConfig>(std::move(config))) {}

  Result<std::unique_ptr<Listener>> listen(asio::any_io_executor executor, const ListenOptions& options) override {
    auto base = base_->listen(executor, options);
    if (!base) return base.error();
    return std::unique_ptr<Listener>(
        std::make_unique<H2Listener>(std::move(executor), std::shared_ptr<Listener>(std::move(*base)), config_));
  }

 private:
  std::unique_ptr<ListenerFactory> base_;
  std::shared_ptr<const H2ListenerConfig> config_;
};

}  // namespace

std::unique_ptr<ListenerFactory> make_h2_session_listener_factory(std::unique_ptr<ListenerFactory> base,
                                                                  H2ListenerConfig config) {
  return std::make_unique<H2ListenerFactory>(std::move(base), std::move(config));
}

}  // namespace strait::agent
