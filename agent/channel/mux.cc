#include "agent/channel/mux.h"

#include <algorithm>
#include <deque>
#include <unordered_map>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "agent/channel/layered.h"
#include "agent/channel/smux_session.h"
#include "agent/channel/tcp.h"
#include "agent/channel/tls.h"
#include "agent/channel/ws.h"
#include "agent/net/worker_local.h"
#include "common/metadata.h"
#include "common/strings.h"

namespace strait::agent {
namespace {

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
// Sessions one listener (one worker's socket) serves at once; more connections are closed.
constexpr size_t kMaxSessionsPerListener = 4096;
// Streams opened by clients and not yet taken by the service (it takes them at once unless
// it is at its connection limit): beyond this a session waits before accepting more.
constexpr size_t kMaxReadyStreams = 1024;
constexpr auto kFirstAcceptBackoff = std::chrono::milliseconds(10);
constexpr auto kLastAcceptBackoff = std::chrono::seconds(1);

// The state a mux listener shares with the coroutines serving its sessions, so that they
// end safely when the listener goes first. Lives on one worker.
struct MuxListenerState {
  MuxListenerState(std::unique_ptr<Listener> base_listener, smux::Config session_config,
                   asio::any_io_executor worker)
      : base(std::move(base_listener)), config(session_config), executor(worker), changed(worker) {
    changed.expires_at(asio::steady_timer::time_point::max());
  }

  void notify() { changed.cancel(); }

  std::unique_ptr<Listener> base;
  smux::Config config;
  asio::any_io_executor executor;
  std::deque<StreamPtr> ready;
  error_code accept_error;  // the base listener's last failure, reported once by accept()
  asio::steady_timer changed;  // cancelled when `ready`, `accept_error` or `closed` change
  size_t sessions = 0;
  bool started = false;
  bool closed = false;
};

asio::awaitable<void> serve_session(std::shared_ptr<MuxListenerState> state, StreamPtr connection) {
  auto opened = co_await state->base->handshake(std::move(connection));
  if (!opened) co_return;
  auto session = SmuxSession::start(std::move(*opened), false, state->config);
  ++state->sessions;
  asio::steady_timer room(state->executor);
  while (!state->closed) {
    if (state->ready.size() >= kMaxReadyStreams) {
      room.expires_after(std::chrono::milliseconds(20));
      co_await room.async_wait(kUseTuple);
      continue;
    }
    auto stream = co_await session->accept_stream();
    if (!stream) break;
    if (state->closed) break;
    state->ready.push_back(std::move(*stream));
    state->notify();
  }
  --state->sessions;
}

asio::awaitable<void> accept_connections(std::shared_ptr<MuxListenerState> state) {
  asio::steady_timer pause(state->executor);
  auto backoff = kFirstAcceptBackoff;
  while (!state->closed) {
    auto connection = co_await state->base->accept();
    if (!connection) {
      if (state->closed) break;
      state->accept_error = connection.error();
      state->notify();
      pause.expires_after(backoff);
      co_await pause.async_wait(kUseTuple);
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, kLastAcceptBackoff);
      continue;
    }
    backoff = kFirstAcceptBackoff;
    if (state->sessions >= kMaxSessionsPerListener) {
      spdlog::warn("mux listener {}: {} sessions open, closing the connection from {}",
                   state->base->bound_address().to_string(), state->sessions, (*connection)->remote_address());
      continue;
    }
    asio::co_spawn(state->executor, serve_session(state, std::move(*connection)), [](std::exception_ptr e) {
      if (e) spdlog::error("mux listener: a session ended by an unexpected exception");
    });
  }
}

class MuxListener final : public Listener {
 public:
  explicit MuxListener(std::shared_ptr<MuxListenerState> state) : state_(std::move(state)) {}
  ~MuxListener() override { close(); }

  asio::awaitable<Result<StreamPtr>> accept() override {
    if (!state_->started) {
      state_->started = true;
      asio::co_spawn(state_->executor, accept_connections(state_), [](std::exception_ptr e) {
        if (e) spdlog::error("mux listener: accept loop ended by an unexpected exception");
      });
    }
    auto state = state_;
    for (;;) {
      if (!state->ready.empty()) {
        StreamPtr stream = std::move(state->ready.front());
        state->ready.pop_front();
        co_return std::move(stream);
      }
      if (state->closed) co_return asio::error::operation_aborted;
      if (auto error = std::exchange(state->accept_error, {}); error) co_return error;
      state->changed.expires_at(asio::steady_timer::time_point::max());
      co_await state->changed.async_wait(kUseTuple);
    }
  }

  std::vector<StreamPtr> take_pending() override {
    std::vector<StreamPtr> pending;
    for (auto& stream : state_->ready) pending.push_back(std::move(stream));
    state_->ready.clear();
    return pending;
  }
  void update(const ListenOptions& options) override { state_->base->update(options); }
  // Sessions already open go on serving their streams; new streams are not taken.
  void close() override {
    if (state_->closed) return;
    state_->closed = true;
    state_->base->close();
    state_->notify();
  }
  common::HostPort bound_address() const override { return state_->base->bound_address(); }
  int native_handle() override { return state_->base->native_handle(); }

 private:
  std::shared_ptr<MuxListenerState> state_;
};

class MuxListenerFactory final : public ListenerFactory {
 public:
  MuxListenerFactory(std::unique_ptr<ListenerFactory> base, smux::Config config)
      : base_(std::move(base)), config_(config) {}

  Result<std::unique_ptr<Listener>> listen(asio::any_io_executor executor, const ListenOptions& options) override {
    auto base = base_->listen(executor, options);
    if (!base) return base.error();
    return std::unique_ptr<Listener>(
        std::make_unique<MuxListener>(std::make_shared<MuxListenerState>(std::move(*base), config_, executor)));
  }

 private:
  std::unique_ptr<ListenerFactory> base_;
  smux::Config config_;
};

// A stream of a session made for it alone (over a previous hop's tunnel): the session ends
// with it, where a pooled session would live on.
class SessionOwningStream final : public Stream {
 public:
  SessionOwningStream(StreamPtr stream, std::shared_ptr<SmuxSession> session)
      : stream_(std::move(stream)), session_(std::move(session)) {}
  ~SessionOwningStream() override {
    stream_.reset();
    session_->close();
  }
  executor_type get_executor() override { return stream_->get_executor(); }
  void shutdown_send() override { stream_->shutdown_send(); }
  void close() override { stream_->close(); }
  std::string remote_address() const override { return stream_->remote_address(); }
  std::string local_address() const override { return stream_->local_address(); }

 protected:
  void do_read_some(asio::mutable_buffer buffer, common::IoHandler handler) override {
    stream_->async_read_some(buffer, std::move(handler));
  }
  void do_write_some(asio::const_buffer buffer, common::IoHandler handler) override {
    stream_->async_write_some(buffer, std::move(handler));
  }
  void do_wait_readable(common::WaitHandler handler) override { stream_->async_wait_readable(std::move(handler)); }

 private:
  StreamPtr stream_;
  std::shared_ptr<SmuxSession> session_;
};

// One worker's client sessions, by node address. While a session is being dialed, other
// dials to that address wait for it instead of dialing their own.
struct SessionPool {
  struct Entry {
    std::shared_ptr<SmuxSession> session;
    std::shared_ptr<asio::steady_timer> dialing;  // cancelled when the dial ends
  };
  ~SessionPool() {
    // The dialer is gone with the config that made it: its sessions end on their worker.
    for (auto& [address, entry] : entries) {
      if (auto session = entry.session) asio::post(session->get_executor(), [session] { session->close(); });
    }
  }
  std::unordered_map<std::string, Entry> entries;
};

class MuxDialer final : public Dialer {
 public:
  MuxDialer(std::unique_ptr<Dialer> base, smux::Config config) : base_(std::move(base)), config_(config) {}

  asio::awaitable<Result<StreamPtr>> dial(asio::any_io_executor executor, const std::string& address, Network network,
                                          const DialOptions& options) override {
    auto& entries = pools_.get().entries;  // the map outlives this call; entries are looked up again after waits
    for (;;) {
      auto session = entries[address].session;
      if (session && !session->closed()) {
        auto stream = co_await session->open_stream();
        if (stream) co_return stream;
        if (entries[address].session == session) entries[address].session.reset();
        continue;
      }
      auto dialing = entries[address].dialing;
      if (!dialing) break;
      co_await dialing->async_wait(kUseTuple);
    }
    auto dialing = std::make_shared<asio::steady_timer>(executor, asio::steady_timer::time_point::max());
    entries[address].dialing = dialing;
    auto connection = co_await base_->dial(executor, address, network, options);
    entries[address].dialing.reset();
    dialing->cancel();
    if (!connection) co_return connection.error();
    auto session = SmuxSession::start(std::move(*connection), true, config_);
    entries[address].session = session;
    co_return co_await session->open_stream();
  }

  asio::awaitable<Result<StreamPtr>> handshake(StreamPtr stream, const std::string& address) override {
    auto below = co_await base_->handshake(std::move(stream), address);
    if (!below) co_return below.error();
    auto session = SmuxSession::start(std::move(*below), true, config_);
    auto opened = co_await session->open_stream();
    if (!opened) {
      session->close();
      co_return opened.error();
    }
    co_return StreamPtr(std::make_unique<SessionOwningStream>(std::move(*opened), std::move(session)));
  }

 private:
  std::unique_ptr<Dialer> base_;
  smux::Config config_;
  WorkerLocal<SessionPool> pools_;
};

template <typename Make, typename... Args>
auto mux_over(Make make_base, const google::protobuf::Struct& metadata, Args&&... args)
    -> decltype(make_base(std::forward<Args>(args)...)) {
  auto config = parse_mux_config(metadata);
  if (!config.ok()) return config.status();
  auto base = make_base(std::forward<Args>(args)...);
  if (!base.ok()) return base.status();
  using Made = typename decltype(make_base(std::forward<Args>(args)...))::value_type;
  if constexpr (std::is_same_v<Made, std::unique_ptr<Dialer>>) {
    return make_mux_dialer(*std::move(base), *config);
  } else {
    return make_mux_listener_factory(*std::move(base), *config);
  }
}

absl::StatusOr<std::unique_ptr<ListenerFactory>> plain_tcp_listener(const config::v1::ServiceConfig&,
                                                                    const config::v1::Config&) {
  return make_tcp_listener_factory();
}
absl::StatusOr<std::unique_ptr<Dialer>> plain_tcp_dialer(const config::v1::NodeConfig&) { return make_tcp_dialer(); }

}  // namespace

absl::StatusOr<smux::Config> parse_mux_config(const google::protobuf::Struct& metadata) {
  smux::Config config;
  auto version = common::metadata_int(metadata, "mux.version");
  if (!version.ok()) return version.status();
  if (*version) config.version = static_cast<int>(**version);
  for (auto [key, field] : {std::pair{"mux.keepaliveInterval", &config.keepalive_interval},
                            std::pair{"mux.keepaliveTimeout", &config.keepalive_timeout}}) {
    auto value = common::metadata_duration(metadata, key);
    if (!value.ok()) return value.status();
    if (*value && (*value)->count() > 0) *field = **value;
  }
  auto disabled = common::metadata_bool(metadata, "mux.keepaliveDisabled");
  if (!disabled.ok()) return disabled.status();
  config.keepalive_disabled = disabled->value_or(false);
  for (auto [key, field] : {std::pair{"mux.maxFrameSize", &config.max_frame_size},
                            std::pair{"mux.maxReceiveBuffer", &config.max_receive_buffer},
                            std::pair{"mux.maxStreamBuffer", &config.max_stream_buffer}}) {
    auto value = common::metadata_int(metadata, key);
    if (!value.ok()) return value.status();
    if (*value) *field = static_cast<uint32_t>(**value);
  }
  auto streams = common::metadata_int(metadata, "mux.maxStreams");
  if (!streams.ok()) return streams.status();
  if (*streams) config.max_streams = static_cast<size_t>(**streams);
  // The keys' own ranges are checked where they are read; what is left relates two of them.
  if (auto status = smux::validate(config); !status.ok()) {
    return absl::InvalidArgumentError(common::str_cat("mux.keepaliveInterval/mux.keepaliveTimeout: ", status.message()));
  }
  return config;
}

std::unique_ptr<ListenerFactory> make_mux_listener_factory(std::unique_ptr<ListenerFactory> base, smux::Config config) {
  return std::make_unique<MuxListenerFactory>(std::move(base), config);
}

std::unique_ptr<Dialer> make_mux_dialer(std::unique_ptr<Dialer> base, smux::Config config) {
  return std::make_unique<MuxDialer>(std::move(base), config);
}

absl::StatusOr<std::unique_ptr<ListenerFactory>> make_mtcp_listener_factory(const config::v1::ServiceConfig& service,
                                                                            const config::v1::Config& config) {
  return mux_over(plain_tcp_listener, service.listener().metadata(), service, config);
}
absl::StatusOr<std::unique_ptr<ListenerFactory>> make_mtls_listener_factory(const config::v1::ServiceConfig& service,
                                                                            const config::v1::Config& config) {
  return mux_over(make_tls_listener_factory, service.listener().metadata(), service, config);
}
absl::StatusOr<std::unique_ptr<ListenerFactory>> make_mws_listener_factory(const config::v1::ServiceConfig& service,
                                                                           const config::v1::Config& config) {
  return mux_over(make_ws_listener_factory, service.listener().metadata(), service, config);
}
absl::StatusOr<std::unique_ptr<ListenerFactory>> make_mwss_listener_factory(const config::v1::ServiceConfig& service,
                                                                            const config::v1::Config& config) {
  return mux_over(make_wss_listener_factory, service.listener().metadata(), service, config);
}
absl::StatusOr<std::unique_ptr<Dialer>> make_mtcp_dialer(const config::v1::NodeConfig& node) {
  return mux_over(plain_tcp_dialer, node.dialer().metadata(), node);
}
absl::StatusOr<std::unique_ptr<Dialer>> make_mtls_dialer(const config::v1::NodeConfig& node) {
  return mux_over(make_tls_dialer, node.dialer().metadata(), node);
}
absl::StatusOr<std::unique_ptr<Dialer>> make_mws_dialer(const config::v1::NodeConfig& node) {
  return mux_over(make_ws_dialer, node.dialer().metadata(), node);
}
absl::StatusOr<std::unique_ptr<Dialer>> make_mwss_dialer(const config::v1::NodeConfig& node) {
  return mux_over(make_wss_dialer, node.dialer().metadata(), node);
}

}  // namespace strait::agent
