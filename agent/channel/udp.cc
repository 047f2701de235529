#include "agent/channel/udp.h"

#include <sys/socket.h>

#include <deque>
#include <list>
#include <map>
#include <optional>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "agent/channel/tcp.h"
#include "agent/net/resolver.h"

namespace strait::agent {
namespace {

using asio::ip::udp;
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
constexpr size_t kMaxDatagram = 65536;
// Datagrams queued for a session whose handler has not read them yet; beyond it they are
// dropped, as a UDP socket buffer would, so one slow session cannot take the memory.
constexpr size_t kSessionQueueLimit = 256;

class UdpListenerState;

// One client of a udp listener. Lives on the listener's worker thread only.
struct UdpSession {
  udp::endpoint peer;
  std::deque<std::vector<uint8_t>> queue;  // each datagram at its own size
  std::optional<common::IoHandler> pending_read;
  asio::mutable_buffer pending_buffer;
  std::optional<common::WaitHandler> pending_wait;
  bool closed = false;
  std::list<UdpSession*>::iterator recency;  // position in the listener's LRU list

  void deliver(asio::any_io_executor executor) {
    if (queue.empty()) return;
    if (pending_wait) {
      auto handler = std::move(*pending_wait);
      pending_wait.reset();
      asio::get_associated_cancellation_slot(handler).clear();
      asio::post(executor, [handler = std::move(handler)]() mutable { std::move(handler)(error_code{}); });
    }
    if (!pending_read) return;
    auto datagram = std::move(queue.front());
    queue.pop_front();
    size_t n = asio::buffer_copy(pending_buffer, asio::buffer(datagram));
    auto handler = std::move(*pending_read);
    pending_read.reset();
    asio::get_associated_cancellation_slot(handler).clear();
    asio::post(executor, [handler = std::move(handler), n]() mutable { std::move(handler)(error_code{}, n); });
  }

  // Completes waiting operations with operation_aborted (the session or its listener closed).
  void abort_pending(asio::any_io_executor executor) {
    queue.clear();
    cancel_pending(executor);
  }

  // Completes the pending read and wait with operation_aborted; queued datagrams stay.
  void cancel_pending(asio::any_io_executor executor) {
    if (pending_read) {
      auto handler = std::move(*pending_read);
      pending_read.reset();
      asio::post(executor, [handler = std::move(handler)]() mutable {
        std::move(handler)(asio::error::operation_aborted, 0);
      });
    }
    if (pending_wait) {
      auto handler = std::move(*pending_wait);
      pending_wait.reset();
      asio::post(executor, [handler = std::move(handler)]() mutable { std::move(handler)(asio::error::operation_aborted); });
    }
  }
};

// Shared by the listener and its session streams, so sessions may outlive the listener.
// At most `max_sessions` clients are served at once; a new client then takes the place of
// the one silent for longest, whose session ends as if it had expired.
class UdpListenerState : public std::enable_shared_from_this<UdpListenerState> {
 public:
  UdpListenerState(udp::socket socket, size_t backlog, size_t max_sessions)
      : socket_(std::move(socket)), wakeup_(socket_.get_executor()), backlog_(backlog), max_sessions_(max_sessions) {}

  udp::socket& socket() { return socket_; }
  // Drops the session from the table unless another one already took its client's place.
  void forget(const std::shared_ptr<UdpSession>& session) {
    auto it = sessions_.find(session->peer);
    if (it == sessions_.end() || it->second != session) return;
    recency_.erase(session->recency);
    sessions_.erase(it);
  }

  void start() {
    asio::co_spawn(socket_.get_executor(), receive_loop(shared_from_this()), [](std::exception_ptr e) {
      if (e) spdlog::error("udp listener: receive loop failed unexpectedly");
    });
  }

  asio::awaitable<Result<StreamPtr>> accept();
  void set_limits(size_t backlog, size_t max_sessions) {
    backlog_ = backlog;
    max_sessions_ = max_sessions;
    while (sessions_.size() > max_sessions_ && !recency_.empty()) evict_least_recent();
  }
  void close() {
    open_ = false;
    error_code ignored;
    socket_.close(ignored);
    wakeup_.cancel();
    for (auto& [peer, session] : sessions_) {
      session->closed = true;
      session->abort_pending(socket_.get_executor());
    }
    sessions_.clear();
    recency_.clear();
    accept_queue_.clear();
  }

 private:
  static asio::awaitable<void> receive_loop(std::shared_ptr<UdpListenerState> self);
  std::shared_ptr<UdpSession>* session_for(const udp::endpoint& peer);
  // A flood of new clients must not flood the log: one line a second, with the count.
  void note_backlog_drop(const udp::endpoint& peer) {
    ++backlog_drops_;
    auto now = std::chrono::steady_clock::now();
    if (now < next_drop_report_) return;
    error_code ec;
    spdlog::warn("udp {}: {} sessions waiting to be served, the backlog: dropped {} datagrams from new clients (last "
                 "from {})",
                 socket_.local_endpoint(ec).port(), backlog_, backlog_drops_, endpoint_to_string(peer));
    backlog_drops_ = 0;
    next_drop_report_ = now + std::chrono::seconds(1);
  }
  void evict_least_recent();

  udp::socket socket_;
  asio::steady_timer wakeup_;
  std::map<udp::endpoint, std::shared_ptr<UdpSession>> sessions_;
  std::list<UdpSession*> recency_;  // most recently heard from first
  std::deque<std::shared_ptr<UdpSession>> accept_queue_;
  size_t backlog_;
  size_t max_sessions_;
  size_t evictions_ = 0;
  size_t backlog_drops_ = 0;
  std::chrono::steady_clock::time_point next_drop_report_{};
  bool open_ = true;
};

class UdpSessionStream final : public Stream {
 public:
  UdpSessionStream(std::shared_ptr<UdpListenerState> listener, std::shared_ptr<UdpSession> session)
      : listener_(std::move(listener)), session_(std::move(session)) {}
  ~UdpSessionStream() override { close(); }

  executor_type get_executor() override { return listener_->socket().get_executor(); }
  void shutdown_send() override {}
  void close() override {
    if (released_) return;
    released_ = true;
    session_->closed = true;
    listener_->forget(session_);
    session_->abort_pending(get_executor());
  }
  std::string remote_address() const override { return endpoint_to_string(session_->peer); }
  std::string local_address() const override {
    error_code ec;
    auto endpoint = listener_->socket().local_endpoint(ec);
    return ec ? std::string("?") : endpoint_to_string(endpoint);
  }
  bool is_datagram() const override { return true; }

 protected:
  void do_read_some(asio::mutable_buffer buffer, common::IoHandler handler) override {
    if (session_->closed) {
      asio::post(get_executor(), [handler = std::move(handler)]() mutable {
        std::move(handler)(asio::error::operation_aborted, 0);
      });
      return;
    }
    cancel_on_signal(handler);
    session_->pending_read.emplace(std::move(handler));
    session_->pending_buffer = buffer;
    session_->deliver(get_executor());
  }
  void do_write_some(asio::const_buffer buffer, common::IoHandler handler) override {
    listener_->socket().async_send_to(buffer, session_->peer, std::move(handler));
  }
  void do_wait_readable(common::WaitHandler handler) override {
    if (session_->closed || !session_->queue.empty()) {
      error_code ec = session_->closed ? error_code(asio::error::operation_aborted) : error_code();
      asio::post(get_executor(), [handler = std::move(handler), ec]() mutable { std::move(handler)(ec); });
      return;
    }
    cancel_on_signal(handler);
    session_->pending_wait.emplace(std::move(handler));
  }

 private:
  // The operation's own cancellation (`co_await (read || timer)`) completes it with
  // operation_aborted and leaves the session and its queued datagrams as they were.
  template <typename Handler>
  void cancel_on_signal(Handler& handler) {
    auto slot = asio::get_associated_cancellation_slot(handler);
    if (!slot.is_connected()) return;
    slot.assign([session = std::weak_ptr<UdpSession>(session_), executor = get_executor()](asio::cancellation_type) {
      if (auto alive = session.lock()) alive->cancel_pending(executor);
    });
  }

  std::shared_ptr<UdpListenerState> listener_;
  std::shared_ptr<UdpSession> session_;
  bool released_ = false;
};

asio::awaitable<Result<StreamPtr>> UdpListenerState::accept() {
  while (accept_queue_.empty()) {
    if (!open_) co_return asio::error::operation_aborted;
    wakeup_.expires_at(asio::steady_timer::time_point::max());
    co_await wakeup_.async_wait(kUseTuple);
  }
  auto session = std::move(accept_queue_.front());
  accept_queue_.pop_front();
  co_return StreamPtr(std::make_unique<UdpSessionStream>(shared_from_this(), std::move(session)));
}

void UdpListenerState::evict_least_recent() {
  UdpSession* oldest = recency_.back();
  auto it = sessions_.find(oldest->peer);
  auto session = it->second;
  recency_.pop_back();
  sessions_.erase(it);
  session->closed = true;
  session->abort_pending(socket_.get_executor());
  std::erase(accept_queue_, session);
  if (evictions_++ % 1000 == 0) {
    error_code ec;
    spdlog::warn("udp {}: {} sessions, the limit: closing the one silent for longest ({} closed so far)",
                 socket_.local_endpoint(ec).port(), max_sessions_, evictions_);
  }
}

// The session of a client, a new one when it is new and there is room; null when the
// accept queue is full.
std::shared_ptr<UdpSession>* UdpListenerState::session_for(const udp::endpoint& peer) {
  if (auto it = sessions_.find(peer); it != sessions_.end()) {
    recency_.splice(recency_.begin(), recency_, it->second->recency);
    return &it->second;
  }
  if (accept_queue_.size() >= backlog_) return nullptr;
  if (sessions_.size() >= max_sessions_ && !recency_.empty()) evict_least_recent();
  auto session = std::make_shared<UdpSession>();
  session->peer = peer;
  recency_.push_front(session.get());
  session->recency = recency_.begin();
  accept_queue_.push_back(session);
  wakeup_.cancel();
  return &sessions_.emplace(peer, std::move(session)).first->second;
}

asio::awaitable<void> UdpListenerState::receive_loop(std::shared_ptr<UdpListenerState> self) {
  // One buffer per listener socket (that is, per worker); each datagram is queued at its size.
  std::vector<uint8_t> buffer(kMaxDatagram);
  for (;;) {
    udp::endpoint peer;
    auto [ec, n] = co_await self->socket_.async_receive_from(asio::buffer(buffer), peer, kUseTuple);
    if (ec == asio::error::operation_aborted || !self->open_) co_return;
    if (ec) continue;  // ICMP errors surface here on Linux; they concern one peer only
    auto* session = self->session_for(peer);
    if (session == nullptr) {
      self->note_backlog_drop(peer);
      continue;
    }
    if ((*session)->queue.size() >= kSessionQueueLimit) continue;
    (*session)->queue.emplace_back(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(n));
    (*session)->deliver(self->socket_.get_executor());
  }
}

class UdpListener final : public Listener {
 public:
  explicit UdpListener(std::shared_ptr<UdpListenerState> state) : state_(std::move(state)) {}
  ~UdpListener() override { close(); }
  asio::awaitable<Result<StreamPtr>> accept() override { return state_->accept(); }
  void update(const ListenOptions& options) override { state_->set_limits(options.udp_backlog, options.max_udp_sessions); }
  void close() override { state_->close(); }
  common::HostPort bound_address() const override {
    error_code ec;
    auto endpoint = state_->socket().local_endpoint(ec);
    return {endpoint.address().to_string(), endpoint.port()};
  }
  int native_handle() override { return state_->socket().is_open() ? state_->socket().native_handle() : -1; }

 private:
  std::shared_ptr<UdpListenerState> state_;
};

class UdpListenerFactory final : public ListenerFactory {
 public:
  Result<std::unique_ptr<Listener>> listen(asio::any_io_executor executor, const ListenOptions& options) override {
    if (options.inherited_fd >= 0) {
      auto v6 = is_ipv6_socket(options.inherited_fd);
      if (!v6) return v6.error();
      error_code ec;
      udp::socket socket(executor);
      socket.assign(*v6 ? udp::v6() : udp::v4(), options.inherited_fd, ec);
      if (ec) return ec;
      return start_listener(std::move(socket), options);
    }
    udp::endpoint endpoint(udp::v6(), options.address.port);
    error_code ec;
    bool any = options.address.host.empty();
    if (!any) {
      auto ip = asio::ip::make_address(options.address.host, ec);
      if (ec) {
        udp::resolver resolver(executor);
        auto results = resolver.resolve(options.address.host, std::to_string(options.address.port), ec);
        if (ec) return ec;
        endpoint = results.begin()->endpoint();
      } else {
        endpoint = udp::endpoint(ip, options.address.port);
      }
    }
    udp::socket socket(executor);
    socket.open(endpoint.protocol(), ec);
    if (ec && any) {
      endpoint = udp::endpoint(udp::v4(), options.address.port);
      socket.open(endpoint.protocol(), ec);
    }
    if (ec) return ec;
    if (any && endpoint.protocol() == udp::v6()) socket.set_option(asio::ip::v6_only(false), ec);
    int one = 1;
    // SO_REUSEPORT hashes each client's 4-tuple to one worker's socket, so a session stays
    // on one thread.
    if (::setsockopt(socket.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
      return error_code(errno, boost::system::system_category());
    }
    socket.bind(endpoint, ec);
    if (ec) return ec;
    return start_listener(std::move(socket), options);
  }

 private:
  static Result<std::unique_ptr<Listener>> start_listener(udp::socket socket, const ListenOptions& options) {
    auto state = std::make_shared<UdpListenerState>(std::move(socket), options.udp_backlog, options.max_udp_sessions);
    state->start();
    return std::unique_ptr<Listener>(std::make_unique<UdpListener>(std::move(state)));
  }
};

class UdpStream final : public Stream {
 public:
  explicit UdpStream(udp::socket socket) : socket_(std::move(socket)) {}
  executor_type get_executor() override { return socket_.get_executor(); }
  void shutdown_send() override {}
  void close() override {
    error_code ignored;
    socket_.close(ignored);
  }
  std::string remote_address() const override {
    error_code ec;
    auto endpoint = socket_.remote_endpoint(ec);
    return ec ? std::string("?") : endpoint_to_string(endpoint);
  }
  std::string local_address() const override {
    error_code ec;
    auto endpoint = socket_.local_endpoint(ec);
    return ec ? std::string("?") : endpoint_to_string(endpoint);
  }
  bool is_datagram() const override { return true; }

 protected:
  void do_read_some(asio::mutable_buffer buffer, common::IoHandler handler) override {
    socket_.async_receive(buffer, std::move(handler));
  }
  void do_write_some(asio::const_buffer buffer, common::IoHandler handler) override {
    socket_.async_send(buffer, std::move(handler));
  }
  void do_wait_readable(common::WaitHandler handler) override {
    socket_.async_wait(udp::socket::wait_read, std::move(handler));
  }

 private:
  udp::socket socket_;
};

class UdpDialer final : public Dialer {
 public:
  // Always datagrams, whatever `network`: a udp node (an ssu hop) is dialed as a chain's first
  // hop, which the router dials with Network::kTcp whatever the target's network.
  asio::awaitable<Result<StreamPtr>> dial(asio::any_io_executor executor, const std::string& address,
                                          Network /*network*/, const DialOptions& options) override {
    auto socket = co_await connect_udp_socket(std::move(executor), address, options.timeout);
    if (!socket) co_return socket.error();
    co_return StreamPtr(std::make_unique<UdpStream>(std::move(*socket)));
  }
};

}  // namespace

std::string endpoint_to_string(const udp::endpoint& endpoint) {
  return endpoint_to_string(asio::ip::tcp::endpoint(endpoint.address(), endpoint.port()));
}

asio::awaitable<Result<udp::socket>> connect_udp_socket(asio::any_io_executor executor, const std::string& address,
                                                        std::chrono::nanoseconds timeout) {
  auto target = common::parse_host_port(address);
  if (!target.ok()) co_return asio::error::invalid_argument;
  auto addresses = co_await Resolver::shared().resolve(target->host, AddressFamily::kAny,
                                                       std::chrono::steady_clock::now() + timeout);
  if (!addresses) co_return addresses.error();
  udp::endpoint endpoint(addresses->front(), target->port);
  udp::socket socket(executor);
  error_code ec;
  socket.open(endpoint.protocol(), ec);
  if (!ec) socket.connect(endpoint, ec);
  if (ec) co_return ec;
  co_return socket;
}

std::unique_ptr<ListenerFactory> make_udp_listener_factory() { return std::make_unique<UdpListenerFactory>(); }
std::unique_ptr<Dialer> make_udp_dialer() { return std::make_unique<UdpDialer>(); }

}  // namespace strait::agent
