#include "agent/channel/pht_session.h"

#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "common/io_operation.h"

namespace strait::agent {
namespace {

using namespace asio::experimental::awaitable_operators;
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
// How long the token of an ended tunnel is refused rather than taken for a new tunnel.
constexpr auto kRetiredMemory = std::chrono::minutes(5);
// Tokens remembered at least, however few tunnels may be open at once.
constexpr size_t kMinRetiredTokens = 1024;

}  // namespace

// The stream of a tunnel, on its session's worker.
class PhtServerStream final : public Stream {
 public:
  explicit PhtServerStream(std::shared_ptr<PhtSession> session) : session_(std::move(session)) {}
  ~PhtServerStream() override { session_->close_stream(); }

  executor_type get_executor() override { return session_->executor(); }
  void shutdown_send() override { session_->shutdown_send(); }
  void close() override { session_->close_stream(); }
  std::string remote_address() const override { return session_->peer_; }
  std::string local_address() const override { return session_->local_; }

 protected:
  void do_read_some(asio::mutable_buffer buffer, common::IoHandler handler) override {
    common::complete_with(get_executor(), read(session_, buffer), std::move(handler));
  }
  void do_write_some(asio::const_buffer buffer, common::IoHandler handler) override {
    common::complete_with(get_executor(), write(session_, buffer), std::move(handler));
  }
  void do_wait_readable(common::WaitHandler handler) override {
    asio::co_spawn(get_executor(), session_->wait_readable(),
                   [handler = std::move(handler)](std::exception_ptr failure, error_code ec) mutable {
                     std::move(handler)(failure ? asio::error::no_memory : ec);
                   });
  }

 private:
  // The operations keep the session alive, whatever happens to the stream meanwhile.
  static asio::awaitable<common::IoResult> read(std::shared_ptr<PhtSession> session, asio::mutable_buffer buffer) {
    co_return co_await session->read(buffer);
  }
  static asio::awaitable<common::IoResult> write(std::shared_ptr<PhtSession> session, asio::const_buffer buffer) {
    co_return co_await session->write(buffer);
  }

  std::shared_ptr<PhtSession> session_;
};

PhtSession::PhtSession(std::weak_ptr<PhtHub> hub, std::string token, asio::any_io_executor executor, std::string peer,
                       std::string local, const PhtLimits& limits)
    : hub_(std::move(hub)),
      token_(std::move(token)),
      executor_(std::move(executor)),
      peer_(std::move(peer)),
      local_(std::move(local)),
      limits_(limits),
      last_request_(PhtClock::now()),
      changed_(executor_, PhtClock::time_point::max()),
      idle_(executor_) {}

void PhtSession::start() {
  asio::co_spawn(executor_, watch_idle(), [peer = peer_](std::exception_ptr e) {
    if (e) spdlog::error("pht listener: client {}: a tunnel's idle watch ended by an unexpected exception", peer);
  });
}

bool PhtSession::dead() const { return failure_ || (client_closed_ && inbound_.empty()); }

StreamPtr PhtSession::open_stream() { return std::make_unique<PhtServerStream>(shared_from_this()); }

asio::awaitable<bool> PhtSession::wait_change(PhtClock::time_point deadline) {
  auto self = shared_from_this();
  if (deadline == PhtClock::time_point::max()) {
    co_await changed_.async_wait(kUseTuple);
    co_return true;
  }
  asio::steady_timer timer(executor_, deadline);
  auto first = co_await (changed_.async_wait(kUseTuple) || timer.async_wait(kUseTuple));
  co_return first.index() == 0;
}

void PhtSession::retire() {
  if (retired_) return;
  retired_ = true;
  idle_.cancel();
  if (auto hub = hub_.lock()) hub->retire(token_, this);
}

asio::awaitable<void> PhtSession::watch_idle() {
  auto self = shared_from_this();
  while (!retired_) {
    auto due = last_request_ + limits_.idle_timeout;
    if (requests_ == 0 && PhtClock::now() >= due) {
      spdlog::info("pht listener: client {}: tunnel idle for {} ms, closed", peer_,
                   std::chrono::duration_cast<std::chrono::milliseconds>(limits_.idle_timeout).count());
      co_await fail(asio::error::timed_out);
      co_return;
    }
    idle_.expires_at(requests_ > 0 ? PhtClock::now() + limits_.idle_timeout : due);
    co_await idle_.async_wait(kUseTuple);
  }
}

asio::awaitable<int> PhtSession::push(std::string bytes) {
  auto self = shared_from_this();
  ++requests_;
  touch();
  const uint64_t ticket = next_push_++;
  const auto deadline = PhtClock::now() + limits_.push_wait;
  int status = 200;
  for (;;) {
    if (failure_ || client_closed_ || stream_closed_) {
      status = 410;
      break;
    }
    if (ticket == serving_push_ && (inbound_.empty() || inbound_.size() + bytes.size() <= limits_.buffer_size)) {
      inbound_.append(std::move(bytes));
      ++serving_push_;
      notify();
      break;
    }
    if (!co_await wait_change(deadline)) {
      spdlog::info("pht listener: client {}: the tunnel's reader took no bytes for {} s, closed", peer_,
                   std::chrono::duration_cast<std::chrono::seconds>(limits_.push_wait).count());
      co_await fail(asio::error::timed_out);
      status = 410;
      break;
    }
  }
  --requests_;
  touch();
  co_return status;
}

asio::awaitable<int> PhtSession::close_by_client() {
  client_closed_ = true;
  outbound_.clear();
  retire();
  notify();
  co_return 200;
}

asio::awaitable<void> PhtSession::fail(error_code reason) {
  if (!failure_) failure_ = reason;
  inbound_.clear();
  outbound_.clear();
  retire();
  notify();
  co_return;
}

asio::awaitable<std::optional<uint64_t>> PhtSession::begin_pull() {
  if (retired_ || failure_) co_return std::nullopt;
  ++requests_;
  touch();
  ++poll_;
  notify();  // an older pull ends
  co_return poll_;
}

asio::awaitable<PhtSession::PullStep> PhtSession::pull(uint64_t poll, PhtClock::time_point deadline) {
  auto self = shared_from_this();
  touch();
  for (;;) {
    if (failure_ || client_closed_ || poll != poll_) co_return PullStep{Pulled::kEnd, {}};
    if (!outbound_.empty()) {
      PullStep step{Pulled::kData, outbound_.take(pht::kMaxPullPayload)};
      notify();
      co_return step;
    }
    if (send_closed_) {
      end_told_ = true;
      if (stream_closed_) retire();
      co_return PullStep{Pulled::kEnd, {}};
    }
    if (!co_await wait_change(deadline)) co_return PullStep{Pulled::kIdle, {}};
  }
}

asio::awaitable<void> PhtSession::end_pull() {
  --requests_;
  touch();
  co_return;
}

asio::awaitable<common::IoResult> PhtSession::read(asio::mutable_buffer buffer) {
  for (;;) {
    if (buffer.size() == 0) co_return common::IoResult{error_code{}, 0};
    if (!inbound_.empty()) {
      size_t n = inbound_.read(std::span(static_cast<char*>(buffer.data()), buffer.size()));
      notify();  // room for pushes
      co_return common::IoResult{error_code{}, n};
    }
    if (stream_closed_) co_return common::IoResult{asio::error::operation_aborted, 0};
    if (failure_) co_return common::IoResult{failure_, 0};
    if (client_closed_) co_return common::IoResult{asio::error::eof, 0};
    co_await wait_change(PhtClock::time_point::max());
  }
}

asio::awaitable<error_code> PhtSession::wait_readable() {
  auto self = shared_from_this();
  while (inbound_.empty() && !stream_closed_ && !failure_ && !client_closed_) {
    co_await wait_change(PhtClock::time_point::max());
  }
  co_return stream_closed_ ? error_code(asio::error::operation_aborted) : error_code{};
}

asio::awaitable<common::IoResult> PhtSession::write(asio::const_buffer buffer) {
  for (;;) {
    if (stream_closed_) co_return common::IoResult{asio::error::operation_aborted, 0};
    if (failure_) co_return common::IoResult{failure_, 0};
    if (client_closed_) co_return common::IoResult{asio::error::broken_pipe, 0};
    if (send_closed_) co_return common::IoResult{asio::error::shut_down, 0};
    if (buffer.size() == 0) co_return common::IoResult{error_code{}, 0};
    if (outbound_.size() < limits_.buffer_size) {
      size_t n = std::min(buffer.size(), limits_.buffer_size - outbound_.size());
      outbound_.append(std::string(static_cast<const char*>(buffer.data()), n));
      notify();
      co_return common::IoResult{error_code{}, n};
    }
    co_await wait_change(PhtClock::time_point::max());
  }
}

void PhtSession::shutdown_send() {
  send_closed_ = true;
  notify();
}

void PhtSession::close_stream() {
  if (stream_closed_) return;
  stream_closed_ = true;
  send_closed_ = true;
  inbound_.clear();
  // What the stream wrote is still pulled; the tunnel ends once a pull told its end.
  if (client_closed_ || failure_ || end_told_) retire();
  notify();
}

PhtHub::Found PhtHub::find(const std::string& token) {
  std::lock_guard lock(mutex_);
  if (auto it = sessions_.find(token); it != sessions_.end()) return {it->second, false};
  return {nullptr, retired_.contains(token)};
}

std::shared_ptr<PhtSession> PhtHub::create(const std::string& token, const asio::any_io_executor& executor,
                                           const std::string& peer, const std::string& local, bool* created) {
  *created = false;
  std::lock_guard lock(mutex_);
  if (auto it = sessions_.find(token); it != sessions_.end()) return it->second;
  forget_old(PhtClock::now());
  if (retired_.contains(token) || sessions_.size() >= limits_.max_sessions) return nullptr;
  auto session = std::make_shared<PhtSession>(weak_from_this(), token, executor, peer, local, limits_);
  sessions_.emplace(token, session);
  *created = true;
  return session;
}

void PhtHub::retire(const std::string& token, const PhtSession* session) {
  std::lock_guard lock(mutex_);
  auto it = sessions_.find(token);
  if (it == sessions_.end() || it->second.get() != session) return;
  sessions_.erase(it);
  auto now = PhtClock::now();
  forget_old(now);
  if (retired_.insert(token).second) retired_order_.emplace_back(token, now);
}

size_t PhtHub::size() {
  std::lock_guard lock(mutex_);
  return sessions_.size();
}

void PhtHub::forget_old(PhtClock::time_point now) {
  // Bounded both ways: by age, and by as many tokens as tunnels may be open.
  const size_t most = std::max<size_t>(limits_.max_sessions, kMinRetiredTokens);
  while (!retired_order_.empty() &&
         (retired_order_.front().second + kRetiredMemory <= now || retired_order_.size() >= most)) {
    retired_.erase(retired_order_.front().first);
    retired_order_.pop_front();
  }
}

}  // namespace strait::agent
