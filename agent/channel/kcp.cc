#include "agent/channel/kcp.h"

#include <unistd.h>

#include <array>
#include <deque>
#include <map>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include "agent/channel/kcp_session.h"
#include "agent/channel/kcp_socket.h"
#include "agent/channel/mux.h"
#include "agent/channel/tcp.h"
#include "agent/channel/udp.h"
#include "agent/channel/snappy_stream.h"
#include "common/address.h"

namespace strait::agent {
namespace {

using asio::ip::udp;
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
// Datagrams waiting for the kernel's send buffer, per socket: a listener's serves a worker's
// sessions, a dialer's one session (about a window of 1350-byte packets).
constexpr size_t kListenerSendQueue = 4096;
constexpr size_t kDialerSendQueue = 1024;

std::shared_ptr<kcp::PacketCrypt> make_crypt(const KcpConfig& config) {
  absl::Status ignored;  // the name passed parse_kcp_config
  return make_packet_crypt_with_key(config.crypt, config.derived_key, ignored, kcp::UnknownCrypt::kUseAes);
}

StreamPtr with_compression(const KcpConfig& config, StreamPtr stream) {
  return config.no_compression ? std::move(stream) : make_snappy_stream(std::move(stream));
}

// One worker's socket and its conversations. Lives on that worker only.
class KcpListenerState : public std::enable_shared_from_this<KcpListenerState> {
 public:
  KcpListenerState(std::shared_ptr<const KcpConfig> config, std::shared_ptr<KcpSocket> socket, size_t backlog)
      : config_(std::move(config)),
        socket_(std::move(socket)),
        timers_(std::make_shared<KcpTimers>(socket_->socket().get_executor())),
        crypt_(make_crypt(*config_)),
        wakeup_(socket_->socket().get_executor()),
        backlog_(backlog) {
    error_code ec;
    local_ = endpoint_to_string(socket_->socket().local_endpoint(ec));
  }

  void start() {
    socket_->start([weak = weak_from_this()](std::span<uint8_t> datagram, const udp::endpoint& from) {
      if (auto self = weak.lock()) self->on_datagram(datagram, from);
    });
  }

  asio::awaitable<Result<StreamPtr>> accept() {
    auto self = shared_from_this();
    while (accept_queue_.empty()) {
      if (!open_) co_return asio::error::operation_aborted;
      wakeup_.expires_at(asio::steady_timer::time_point::max());
      co_await wakeup_.async_wait(kUseTuple);
    }
    auto session = std::move(accept_queue_.front());
    accept_queue_.pop_front();
    co_return session->stream();
  }

  // Sessions end with the socket they use: with SO_REUSEPORT a replacement socket changes
  // which socket the kernel picks for a peer anyway.
  void close() {
    if (!open_) return;
    open_ = false;
    wakeup_.cancel();
    accept_queue_.clear();
    auto sessions = std::move(sessions_);
    sessions_.clear();
    for (auto& [peer, session] : sessions) session->close();
    socket_->close();
  }

  void set_backlog(size_t backlog) { backlog_ = backlog; }
  const KcpListenerCounters& counters() {
    counters_.sessions_open = sessions_.size();
    return counters_;
  }
  KcpSocket& socket() { return *socket_; }

 private:
  void on_datagram(std::span<uint8_t> datagram, const udp::endpoint& from) {
    if (auto it = sessions_.find(from); it != sessions_.end()) {
      if (!it->second->ended()) {
        auto session = it->second;  // the datagram may end it
        session->on_datagram(datagram);
        return;
      }
      sessions_.erase(it);
    }
    if (!open_) return;
    if (sessions_.size() >= config_->max_sessions) return refuse(counters_.over_capacity, "kcp.maxSessions", from);
    if (accept_queue_.size() >= backlog_) return refuse(counters_.over_backlog, "backlog", from);
    // Checked on a copy: the crypt opens in place, and most of these are someone's noise.
    std::memcpy(check_.data(), datagram.data(), datagram.size());
    auto conversation = first_packet_conversation(std::span(check_.data(), datagram.size()), crypt_.get(),
                                                  config_->has_fec());
    if (!conversation) {
      ++counters_.garbage;
      return;
    }
    auto sink = [weak_socket = std::weak_ptr<KcpSocket>(socket_), from](std::span<const uint8_t> packet) {
      if (auto socket = weak_socket.lock()) socket->send(packet, &from);
    };
    auto session = KcpSession::create(timers_, *config_, crypt_, *conversation, std::move(sink),
                                      endpoint_to_string(from), local_);
    session->on_end([weak = weak_from_this(), from, raw = session.get()] {
      auto self = weak.lock();
      if (!self) return;
      auto it = self->sessions_.find(from);
      if (it != self->sessions_.end() && it->second.get() == raw) self->sessions_.erase(it);
      std::erase_if(self->accept_queue_, [raw](const auto& waiting) { return waiting.get() == raw; });
    });
    ++counters_.sessions_opened;
    sessions_.emplace(from, session);
    accept_queue_.push_back(session);
    wakeup_.cancel();
    session->on_datagram(datagram);
  }

  // A flood of new addresses must not flood the log: one line a second, with the count.
  void refuse(uint64_t& counter, const char* limit, const udp::endpoint& from) {
    ++counter;
    ++refused_since_report_;
    auto now = std::chrono::steady_clock::now();
    if (now < next_report_) return;
    spdlog::warn("kcp {}: {} reached ({} conversations, {} waiting): dropped {} datagrams from new peers (last {})",
                 local_, limit, sessions_.size(), accept_queue_.size(), refused_since_report_, endpoint_to_string(from));
    refused_since_report_ = 0;
    next_report_ = now + std::chrono::seconds(1);
  }

  std::shared_ptr<const KcpConfig> config_;
  std::shared_ptr<KcpSocket> socket_;
  std::shared_ptr<KcpTimers> timers_;
  std::shared_ptr<kcp::PacketCrypt> crypt_;  // shared by this socket's sessions: same thread
  asio::steady_timer wakeup_;
  size_t backlog_;
  std::string local_;
  std::map<udp::endpoint, std::shared_ptr<KcpSession>> sessions_;
  std::deque<std::shared_ptr<KcpSession>> accept_queue_;
  std::array<uint8_t, kKcpMaxDatagram> check_{};
  KcpListenerCounters counters_;
  uint64_t refused_since_report_ = 0;
  std::chrono::steady_clock::time_point next_report_{};
  bool open_ = true;
};

class KcpListener final : public Listener {
 public:
  explicit KcpListener(std::shared_ptr<KcpListenerState> state, std::shared_ptr<const KcpConfig> config)
      : state_(std::move(state)), config_(std::move(config)) {}
  ~KcpListener() override { close(); }

  asio::awaitable<Result<StreamPtr>> accept() override { return state_->accept(); }
  asio::awaitable<Result<StreamPtr>> handshake(StreamPtr accepted) override {
    co_return with_compression(*config_, std::move(accepted));
  }
  void update(const ListenOptions& options) override { state_->set_backlog(options.udp_backlog); }
  void close() override { state_->close(); }
  common::HostPort bound_address() const override {
    error_code ec;
    auto endpoint = state_->socket().socket().local_endpoint(ec);
    return {endpoint.address().to_string(), endpoint.port()};
  }
  int native_handle() override { return state_->socket().is_open() ? state_->socket().socket().native_handle() : -1; }
  const KcpListenerCounters& counters() const { return state_->counters(); }

 private:
  std::shared_ptr<KcpListenerState> state_;
  std::shared_ptr<const KcpConfig> config_;
};

class KcpListenerFactory final : public ListenerFactory {
 public:
  explicit KcpListenerFactory(KcpConfig config) : config_(std::make_shared<const KcpConfig>(std::move(config))) {}

  Result<std::unique_ptr<Listener>> listen(asio::any_io_executor executor, const ListenOptions& options) override {
    // The udp listener binds (address forms, SO_REUSEPORT, an inherited socket); we take a
    // duplicate of its socket and let it go before it has read anything.
    auto bound = make_udp_listener_factory()->listen(executor, options);
    if (!bound) return bound.error();
    int fd = ::dup((*bound)->native_handle());
    (*bound)->close();
    if (fd < 0) return error_code(errno, boost::system::system_category());
    auto v6 = is_ipv6_socket(fd);
    if (!v6) {
      ::close(fd);
      return v6.error();
    }
    udp::socket socket(executor);
    error_code ec;
    socket.assign(*v6 ? udp::v6() : udp::v4(), fd, ec);
    if (ec) {
      ::close(fd);
      return ec;
    }
    KcpSocket::tune(socket, config_->socket_buffer, config_->dscp);
    auto state = std::make_shared<KcpListenerState>(
        config_, std::make_shared<KcpSocket>(std::move(socket), kListenerSendQueue), options.udp_backlog);
    state->start();
    return std::unique_ptr<Listener>(std::make_unique<KcpListener>(std::move(state), config_));
  }

 private:
  std::shared_ptr<const KcpConfig> config_;
};

uint32_t random_conversation() {
  uint32_t value = 0;
  while (value == 0) {
    if (RAND_bytes(reinterpret_cast<unsigned char*>(&value), sizeof(value)) != 1) {
      value = static_cast<uint32_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    }
  }
  return value;
}

class KcpConversationDialer final : public Dialer {
 public:
  explicit KcpConversationDialer(KcpConfig config) : config_(std::move(config)) {}

  asio::awaitable<Result<StreamPtr>> dial(asio::any_io_executor executor, const std::string& address,
                                          Network /*network*/, const DialOptions& options) override {
    auto connected = co_await connect_udp_socket(executor, address, options.timeout);
    if (!connected) co_return connected.error();
    udp::socket udp_socket = std::move(*connected);
    KcpSocket::tune(udp_socket, config_.socket_buffer, config_.dscp);
    error_code ec;
    udp::endpoint endpoint = udp_socket.remote_endpoint(ec);
    std::string local = endpoint_to_string(udp_socket.local_endpoint(ec));
    auto socket = std::make_shared<KcpSocket>(std::move(udp_socket), kDialerSendQueue);
    auto sink = [weak = std::weak_ptr<KcpSocket>(socket)](std::span<const uint8_t> packet) {
      if (auto alive = weak.lock()) alive->send(packet, nullptr);
    };
    auto session = KcpSession::create(std::make_shared<KcpTimers>(executor), config_, make_crypt(config_),
                                      random_conversation(), std::move(sink), endpoint_to_string(endpoint), local);
    // The session owns its socket: it closes when the session ends.
    session->on_end([socket] { socket->close(); });
    socket->start([weak = std::weak_ptr<KcpSession>(session)](std::span<uint8_t> datagram, const udp::endpoint&) {
      if (auto alive = weak.lock()) alive->on_datagram(datagram);
    });
    co_return with_compression(config_, session->stream());
  }

  // KCP needs datagrams: it cannot run over a stream a previous hop opened.
  asio::awaitable<Result<StreamPtr>> handshake(StreamPtr /*stream*/, const std::string& /*address*/) override {
    co_return asio::error::operation_not_supported;
  }

 private:
  KcpConfig config_;
};

}  // namespace

std::unique_ptr<ListenerFactory> make_kcp_conversation_listener_factory(KcpConfig config) {
  return std::make_unique<KcpListenerFactory>(std::move(config));
}

std::unique_ptr<Dialer> make_kcp_conversation_dialer(KcpConfig config) {
  return std::make_unique<KcpConversationDialer>(std::move(config));
}

const KcpListenerCounters* kcp_listener_counters(const Listener& listener) {
  const auto* kcp = dynamic_cast<const KcpListener*>(&listener);
  return kcp != nullptr ? &kcp->counters() : nullptr;
}

absl::StatusOr<std::unique_ptr<ListenerFactory>> make_kcp_listener_factory(const config::v1::ServiceConfig& service,
                                                                           const config::v1::Config& /*config*/) {
  auto kcp = parse_kcp_config(service.listener().metadata());
  if (!kcp.ok()) return kcp.status();
  auto smux = kcp->smux_config();
  return make_mux_listener_factory(make_kcp_conversation_listener_factory(*std::move(kcp)), smux);
}

absl::StatusOr<std::unique_ptr<Dialer>> make_kcp_dialer(const config::v1::NodeConfig& node) {
  auto kcp = parse_kcp_config(node.dialer().metadata());
  if (!kcp.ok()) return kcp.status();
  auto smux = kcp->smux_config();
  return make_mux_dialer(make_kcp_conversation_dialer(*std::move(kcp)), smux);
}

}  // namespace strait::agent
