#include "agent/channel/pht_server.h"

#include <openssl/rand.h>

#include <array>
#include <charconv>
#include <deque>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <spdlog/spdlog.h>

#include "common/log_escape.h"
#include "common/stream_deadline.h"
#include "common/strings.h"

namespace strait::agent {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using common::str_cat;
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
constexpr size_t kMaxRequestHead = 8 * 1024;
// A push body: base64 of 768 KiB and its newline. GOST's client pushes each write whole, and
// GOST relays in 32 KiB pieces; ours pushes at most 64 KiB.
constexpr size_t kMaxPushBody = 1024 * 1024;
// A connection's wait for its next request, head and body included (GOST: 30 s for a head).
constexpr auto kRequestTimeout = std::chrono::seconds(60);
// A pull answer's keepalive line after this long without data (GOST's defaultReadTimeout).
constexpr auto kKeepaliveInterval = std::chrono::seconds(10);
// A pull answer ends at its first keepalive after this long; the client then pulls again.
constexpr auto kMaxPull = std::chrono::seconds(60);
// A client that takes no bytes of an answer for this long loses its connection.
constexpr auto kWriteTimeout = std::chrono::seconds(30);
// Connections served at once by one worker's listener; more wait in the kernel's queue.
constexpr size_t kMaxConnections = 4096;
// After refusing a malformed request: how long, and how much, the rest is read and dropped.
constexpr auto kLingerTime = std::chrono::seconds(1);
constexpr size_t kMaxLingerBytes = 256 * 1024;
constexpr auto kAcceptErrorPause = std::chrono::milliseconds(100);

// Shared by a listener, its accept coroutine and its connections, all on the listener's
// worker.
struct AcceptState {
  explicit AcceptState(const asio::any_io_executor& executor)
      : ready_event(executor, PhtClock::time_point::max()), room_event(executor, PhtClock::time_point::max()) {}
  std::deque<std::shared_ptr<PhtSession>> ready;  // opened here, waiting for accept()
  bool started = false;
  bool closed = false;
  size_t connections = 0;
  uint64_t refusals = 0;
  std::string local;               // the listener's address, for the tunnels' streams
  asio::steady_timer ready_event;  // cancel(): a tunnel is ready, or the listener closed
  asio::steady_timer room_event;   // cancel(): a connection ended, or the listener closed
};

// Runs a step of `session` on the session's worker; the caller keeps the session alive.
template <typename T>
asio::awaitable<T> on_owner(PhtSession& session, asio::awaitable<T> step) {
  return asio::co_spawn(session.executor(), std::move(step), asio::use_awaitable);
}

std::string chunk(std::string_view data) {
  std::array<char, 16> size{};
  auto end = std::to_chars(size.data(), size.data() + size.size(), data.size(), 16).ptr;
  return str_cat(std::string_view(size.data(), end - size.data()), "\r\n", data, "\r\n");
}

// One HTTP/1.1 connection of a pht listener, on the listener's worker.
class HttpConnection {
 public:
  HttpConnection(std::shared_ptr<AcceptState> state, std::shared_ptr<const PhtListenerConfig> config,
                 std::shared_ptr<PhtHub> hub, StreamPtr stream, std::string peer, asio::any_io_executor executor)
      : state_(std::move(state)),
        config_(std::move(config)),
        hub_(std::move(hub)),
        stream_(std::move(stream)),
        peer_(std::move(peer)),
        executor_(std::move(executor)),
        deadline_(*stream_) {}

  asio::awaitable<void> serve() {
    beast::flat_buffer buffer;
    for (;;) {
      deadline_.arm(kRequestTimeout);
      http::request_parser<http::string_body> parser;
      parser.header_limit(kMaxRequestHead);
      parser.body_limit(kMaxPushBody);
      auto [error, n] = co_await http::async_read_header(*stream_, buffer, parser, kUseTuple);
      if (!error && !parser.is_done()) {
        // curl asks before sending a larger body; Go's client never does.
        if (common::iequals(common::to_std_view(parser.get()[http::field::expect]), "100-continue")) {
          if (!co_await write("HTTP/1.1 100 Continue\r\n\r\n")) break;
          deadline_.arm(kRequestTimeout);
        }
        std::tie(error, n) = co_await http::async_read(*stream_, buffer, parser, kUseTuple);
      }
      if (error) {
        co_await refuse(error, parser.got_some());
        break;
      }
      deadline_.disarm();
      auto request = parser.release();
      keep_alive_ = request.keep_alive();
      version_ = request.version();
      if (!co_await handle(request) || !keep_alive_) break;
    }
    stream_->close();
  }

 private:
  asio::awaitable<bool> handle(http::request<http::string_body>& request) {
    const std::string_view target = common::to_std_view(request.target());
    const std::string_view path = pht::path_of_target(target);
    if (path == config_->authorize_path) co_return co_await authorize();
    if (path == config_->push_path) co_return co_await push(request, target);
    if (path == config_->pull_path) co_return co_await pull(request, target);
    spdlog::info("{}: client {}: 404 {} {}", config_->name, peer_,
                 common::text_escaped(common::to_std_view(request.method_string())), common::text_escaped(target));
    co_return co_await respond(404, "404 page not found\n");  // Go's ServeMux
  }

  asio::awaitable<bool> authorize() {
    std::array<uint8_t, pht::kTokenSize> random{};
    if (RAND_bytes(random.data(), static_cast<int>(random.size())) != 1) {
      spdlog::error("{}: no random bytes for a token", config_->name);
      co_return co_await respond(503);
    }
    const std::string token = pht::token_from_random(random);
    int refusal = 0;
    if (!open_session(token, &refusal)) co_return co_await respond(refusal);
    co_return co_await respond(200, str_cat(pht::kTokenPrefix, token));
  }

  asio::awaitable<bool> push(http::request<http::string_body>& request, std::string_view target) {
    auto token = pht::token_of_target(target);
    if (request.method() != http::verb::post || !token) co_return co_await respond(400);
    auto body = pht::parse_push_body(request.body());
    auto found = hub_->find(*token);
    auto session = found.session;
    if (!session) {
      if (found.retired || !pht::is_xid_token(*token)) co_return co_await respond(403);
      if (body.kind == pht::PushKind::kClose) co_return co_await respond(200);  // nothing to close
      int refusal = 0;
      session = open_session(*token, &refusal);
      if (!session) co_return co_await respond(refusal);
    }
    int status = 200;
    switch (body.kind) {
      case pht::PushKind::kClose:
        status = co_await on_owner(*session, session->close_by_client());
        break;
      case pht::PushKind::kInvalid:
        spdlog::info("{}: client {}: a push body is not base64; tunnel closed", config_->name, peer_);
        co_await on_owner(*session, session->fail(make_error_code(boost::system::errc::bad_message)));
        status = 400;
        break;
      case pht::PushKind::kData:
        status = co_await on_owner(*session, session->push(std::move(body.data)));
        break;
    }
    co_return co_await respond(status);
  }

  asio::awaitable<bool> pull(http::request<http::string_body>& request, std::string_view target) {
    auto token = pht::token_of_target(target);
    if (request.method() != http::verb::get || !token) co_return co_await respond(400);
    int status = 403;
    auto session = find_or_open(*token, &status);
    if (!session) co_return co_await respond(status);
    auto poll = co_await on_owner(*session, session->begin_pull());
    if (!poll) co_return co_await respond(403);
    // HTTP/1.0 has no chunks: the answer ends with the connection.
    const bool chunked = version_ >= 11;
    if (!chunked) keep_alive_ = false;
    bool healthy = co_await write(str_cat("HTTP/1.1 200 OK\r\nX-Accel-Buffering: no\r\n",
                                          chunked ? "Transfer-Encoding: chunked\r\n" : "",
                                          keep_alive_ ? "" : "Connection: close\r\n", "\r\n"));
    const auto started = PhtClock::now();
    std::string line;
    while (healthy) {
      auto step = co_await on_owner(*session, session->pull(*poll, PhtClock::now() + kKeepaliveInterval));
      if (step.kind == PhtSession::Pulled::kEnd) break;
      line.clear();
      pht::append_line(line, step.data);  // a keepalive is the empty line
      if (chunked) line = chunk(line);
      healthy = co_await write(line);
      if (!healthy && step.kind == PhtSession::Pulled::kData) {
        // The bytes taken for this answer are lost: the tunnel cannot go on.
        spdlog::info("{}: client {}: a pull answer failed with bytes in it; tunnel closed", config_->name, peer_);
        co_await on_owner(*session, session->fail(asio::error::connection_reset));
      }
      if (step.kind == PhtSession::Pulled::kIdle && PhtClock::now() - started >= kMaxPull) break;
    }
    co_await on_owner(*session, session->end_pull());
    if (healthy && chunked) healthy = co_await write("0\r\n\r\n");
    const bool go_on = healthy && keep_alive_;
    co_return go_on;
  }

  std::shared_ptr<PhtSession> find_or_open(const std::string& token, int* refusal) {
    auto found = hub_->find(token);
    if (found.session) return found.session;
    // A GOST >= 3.2 client's own token opens its tunnel; a token that ended stays refused.
    if (found.retired || !pht::is_xid_token(token)) {
      *refusal = 403;
      return nullptr;
    }
    return open_session(token, refusal);
  }

  // A new tunnel under `token`, owned by this worker and queued for its accept(); or the one
  // another request opened first.
  std::shared_ptr<PhtSession> open_session(const std::string& token, int* refusal) {
    *refusal = 429;  // GOST's answer when its accept queue is full
    if (state_->closed) {
      *refusal = 503;
      return nullptr;
    }
    bool created = false;
    std::shared_ptr<PhtSession> session;
    if (state_->ready.size() < config_->backlog) {
      session = hub_->create(token, executor_, peer_, state_->local, &created);
    }
    if (!session) {
      if (state_->refusals++ % 1000 == 0) {
        spdlog::warn("{}: client {}: refused a tunnel (429): {}; {} refused so far", config_->name, peer_,
                     state_->ready.size() >= config_->backlog ? "the accept backlog is full"
                                                              : "pht.maxSessions tunnels are open",
                     state_->refusals);
      }
      return nullptr;
    }
    if (created) {
      session->start();
      state_->ready.push_back(session);
      state_->ready_event.cancel();
    }
    return session;
  }

  asio::awaitable<void> refuse(error_code error, bool got_some) {
    if (deadline_.expired()) {
      if (got_some) spdlog::info("{}: client {}: request not complete", config_->name, peer_);
      co_return;
    }
    // A transport error, or the client left between requests: nothing to tell anyone.
    if (error.category() != make_error_code(http::error::end_of_stream).category()) co_return;
    if (!got_some && error == http::error::end_of_stream) co_return;
    spdlog::info("{}: client {}: malformed request: {}; connection closed", config_->name, peer_,
                 common::text_escaped(error.message()));
    if (error == http::error::partial_message || error == http::error::end_of_stream) co_return;  // nobody to answer
    keep_alive_ = false;
    co_await respond(error == http::error::header_limit ? 431 : error == http::error::body_limit ? 413 : 400);
    // As Go's server does: stop sending, then take what the client still sends for a moment,
    // so that closing with unread bytes does not reset the connection under the refusal.
    stream_->shutdown_send();
    deadline_.arm(kLingerTime);
    std::array<char, 4096> sink{};
    for (size_t drained = 0; drained < kMaxLingerBytes;) {
      auto [read_error, n] = co_await stream_->async_read_some(asio::buffer(sink), kUseTuple);
      if (read_error) break;
      drained += n;
    }
    deadline_.disarm();
  }

  // A whole answer; false when the connection cannot go on.
  asio::awaitable<bool> respond(int status, std::string_view body = {}) {
    auto reason = http::obsolete_reason(http::int_to_status(static_cast<unsigned>(status)));
    std::string out = str_cat("HTTP/1.1 ", status, " ", common::to_std_view(reason), "\r\n");
    if (!body.empty()) out += "Content-Type: text/plain; charset=utf-8\r\n";
    if (status == 404) out += "X-Content-Type-Options: nosniff\r\n";
    out += str_cat("Content-Length: ", body.size(), "\r\n", keep_alive_ ? "" : "Connection: close\r\n", "\r\n", body);
    co_return co_await write(out) && keep_alive_;
  }

  asio::awaitable<bool> write(std::string_view bytes) {
    deadline_.arm(kWriteTimeout);
    auto [error, n] = co_await asio::async_write(*stream_, asio::buffer(bytes.data(), bytes.size()), kUseTuple);
    deadline_.disarm();
    co_return !error;
  }

  std::shared_ptr<AcceptState> state_;
  std::shared_ptr<const PhtListenerConfig> config_;
  std::shared_ptr<PhtHub> hub_;
  StreamPtr stream_;
  const std::string peer_;
  asio::any_io_executor executor_;
  common::StreamDeadline deadline_;
  bool keep_alive_ = true;
  unsigned version_ = 11;
};

asio::awaitable<void> serve_connection(std::shared_ptr<AcceptState> state, std::shared_ptr<Listener> base,
                                       std::shared_ptr<const PhtListenerConfig> config, std::shared_ptr<PhtHub> hub,
                                       StreamPtr client) {
  const std::string peer = client->remote_address();
  ++state->connections;  // counted from here, so that slow handshakes are bounded too
  std::shared_ptr<void> leave(nullptr, [state](void*) {
    --state->connections;
    state->room_event.cancel();
  });
  auto opened = co_await base->handshake(std::move(client));  // TLS for phts; it logs failures
  if (!opened) co_return;
  HttpConnection connection(state, config, std::move(hub), std::move(*opened), peer,
                            co_await asio::this_coro::executor);
  co_await connection.serve();
}

asio::awaitable<void> accept_connections(std::shared_ptr<AcceptState> state, std::shared_ptr<Listener> base,
                                         std::shared_ptr<const PhtListenerConfig> config, std::shared_ptr<PhtHub> hub) {
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer pause(executor);
  while (!state->closed) {
    if (state->connections >= kMaxConnections) {
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
    asio::co_spawn(executor, serve_connection(state, base, config, hub, std::move(*client)),
                   [name = config->name](std::exception_ptr e) {
                     if (e) spdlog::error("{}: a connection ended by an unexpected exception", name);
                   });
  }
}

class PhtListener final : public Listener {
 public:
  PhtListener(asio::any_io_executor executor, std::shared_ptr<Listener> base,
              std::shared_ptr<const PhtListenerConfig> config, std::shared_ptr<PhtHub> hub)
      : executor_(std::move(executor)),
        base_(std::move(base)),
        config_(std::move(config)),
        hub_(std::move(hub)),
        state_(std::make_shared<AcceptState>(executor_)) {
    state_->local = base_->bound_address().to_string();
  }
  ~PhtListener() override { close(); }

  asio::awaitable<Result<StreamPtr>> accept() override {
    auto state = state_;
    if (!state->started && !state->closed) {
      state->started = true;
      asio::co_spawn(executor_, accept_connections(state, base_, config_, hub_),
                     [name = config_->name](std::exception_ptr e) {
                       if (e) spdlog::error("{}: accept loop ended by an unexpected exception", name);
                     });
    }
    for (;;) {
      while (!state->ready.empty()) {
        auto session = std::move(state->ready.front());
        state->ready.pop_front();
        if (!session->dead()) co_return session->open_stream();
      }
      if (state->closed) co_return asio::error::operation_aborted;
      co_await state->ready_event.async_wait(kUseTuple);
      auto cancellation = co_await asio::this_coro::cancellation_state;
      if (cancellation.cancelled() != asio::cancellation_type::none) co_return asio::error::operation_aborted;
    }
  }
  std::vector<StreamPtr> take_pending() override {
    std::vector<StreamPtr> pending;
    for (auto& session : state_->ready) {
      if (!session->dead()) pending.push_back(session->open_stream());
    }
    state_->ready.clear();
    return pending;
  }
  void update(const ListenOptions& options) override { base_->update(options); }
  void close() override {
    if (state_->closed) return;
    state_->closed = true;
    base_->close();
    state_->ready_event.cancel();
    state_->room_event.cancel();
    // Tunnels nobody will accept (take_pending() did not take them) end now, not when idle.
    for (auto& session : state_->ready) {
      asio::co_spawn(session->executor(), session->fail(asio::error::operation_aborted),
                     [name = config_->name](std::exception_ptr e) {
                       if (e) spdlog::error("{}: ending a tunnel failed by an unexpected exception", name);
                     });
    }
    state_->ready.clear();
  }
  common::HostPort bound_address() const override { return base_->bound_address(); }
  int native_handle() override { return base_->native_handle(); }

 private:
  asio::any_io_executor executor_;
  std::shared_ptr<Listener> base_;
  std::shared_ptr<const PhtListenerConfig> config_;
  std::shared_ptr<PhtHub> hub_;
  std::shared_ptr<AcceptState> state_;
};

// One hub per factory, that is per service: every worker's listener shares it. Rather than
// a tunnel per worker (which a client's requests, spread by SO_REUSEPORT, would miss) or a
// lock around each tunnel's bytes, only the token map is locked; the bytes stay on the
// tunnel's worker and other workers hop there for the step they need (PhtSession).
class PhtListenerFactory final : public ListenerFactory {
 public:
  PhtListenerFactory(std::unique_ptr<ListenerFactory> base, PhtListenerConfig config)
      : base_(std::move(base)),
        config_(std::make_shared<const PhtListenerConfig>(std::move(config))),
        hub_(std::make_shared<PhtHub>(config_->limits)) {}

  Result<std::unique_ptr<Listener>> listen(asio::any_io_executor executor, const ListenOptions& options) override {
    auto base = base_->listen(executor, options);
    if (!base) return base.error();
    return std::unique_ptr<Listener>(
        std::make_unique<PhtListener>(std::move(executor), std::shared_ptr<Listener>(std::move(*base)), config_, hub_));
  }

 private:
  std::unique_ptr<ListenerFactory> base_;
  std::shared_ptr<const PhtListenerConfig> config_;
  std::shared_ptr<PhtHub> hub_;
};

}  // namespace

std::unique_ptr<ListenerFactory> make_pht_session_listener_factory(std::unique_ptr<ListenerFactory> base,
                                                                   PhtListenerConfig config) {
  return std::make_unique<PhtListenerFactory>(std::move(base), std::move(config));
}

}  // namespace strait::agent
