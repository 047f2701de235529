#include "agent/net/resolver.h"

#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <variant>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

namespace strait::agent {
namespace {

using boost::system::error_code;
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
// An idle pool thread ends after this long, so a quiet agent holds none.
constexpr auto kThreadIdleExit = std::chrono::seconds(60);

struct Answer {
  Resolver::Addresses addresses;
  error_code error;
};

error_code error_for(int code) {
  switch (code) {
    case EAI_AGAIN:
      return asio::error::host_not_found_try_again;
    case EAI_FAIL:
      return asio::error::no_recovery;
    case EAI_MEMORY:
      return asio::error::no_memory;
    default:
      return asio::error::host_not_found;
  }
}

Answer lookup(const std::string& host, AddressFamily family) {
  addrinfo hints{};
  hints.ai_family = family == AddressFamily::kIpv4 ? AF_INET : AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  addrinfo* list = nullptr;
  int code = ::getaddrinfo(host.c_str(), nullptr, &hints, &list);
  Answer answer;
  if (code != 0) {
    answer.error = error_for(code);
    return answer;
  }
  for (addrinfo* entry = list; entry != nullptr; entry = entry->ai_next) {
    asio::ip::address address;
    if (entry->ai_family == AF_INET) {
      auto* v4 = reinterpret_cast<sockaddr_in*>(entry->ai_addr);
      address = asio::ip::address_v4(ntohl(v4->sin_addr.s_addr));
    } else if (entry->ai_family == AF_INET6) {
      auto* v6 = reinterpret_cast<sockaddr_in6*>(entry->ai_addr);
      asio::ip::address_v6::bytes_type bytes;
      std::copy(std::begin(v6->sin6_addr.s6_addr), std::end(v6->sin6_addr.s6_addr), bytes.begin());
      address = asio::ip::address_v6(bytes, v6->sin6_scope_id);
    } else {
      continue;
    }
    if (std::find(answer.addresses.begin(), answer.addresses.end(), address) == answer.addresses.end()) {
      answer.addresses.push_back(address);
    }
  }
  ::freeaddrinfo(list);
  if (answer.addresses.empty()) answer.error = asio::error::host_not_found;
  return answer;
}

// Closes when the caller's io_context starts to shut down. Services shut down newest
// first, so this one closes before the context's scheduler, which takes no post from
// another thread once it drains its queue: past the gate no pool thread posts there.
class ContextGate : public asio::execution_context::service {
 public:
  struct State {
    std::mutex mutex;
    bool open = true;
  };

  static inline asio::execution_context::id id;

  explicit ContextGate(asio::execution_context& context)
      : asio::execution_context::service(context), state_(std::make_shared<State>()) {}

  static std::shared_ptr<State> of(const asio::any_io_executor& executor) {
    return asio::use_service<ContextGate>(asio::query(executor, asio::execution::context)).state_;
  }

 private:
  void shutdown() override {
    std::lock_guard lock(state_->mutex);
    state_->open = false;
  }

  std::shared_ptr<State> state_;
};

// One caller waiting for a lookup. The pool may hold it after the caller, and even the
// caller's io_context, are gone, so it owns nothing tied to that context once the caller
// stops waiting: the timer lives in the caller's frame and the executor is dropped. The
// gate's mutex guards every field.
struct Waiter {
  explicit Waiter(asio::any_io_executor caller) : gate(ContextGate::of(caller)), executor(std::move(caller)) {}

  // Hands the answer to the caller's executor unless the caller or its context is done.
  void deliver(const Answer& result, const std::shared_ptr<Waiter>& self) {
    std::lock_guard lock(gate->mutex);
    if (!gate->open || !executor) return;
    asio::post(*executor, [self, result] {
      std::lock_guard guard(self->gate->mutex);
      if (self->timer == nullptr || self->answer) return;
      self->answer = result;
      self->timer->cancel();
    });
  }

  bool waiting() {
    std::lock_guard lock(gate->mutex);
    return gate->open && executor.has_value();
  }

  const std::shared_ptr<ContextGate::State> gate;
  std::optional<asio::any_io_executor> executor;
  asio::steady_timer* timer = nullptr;
  std::optional<Answer> answer;
};

// Holds a waiter open for the caller's frame; closing it (also when the frame is destroyed
// with its io_context) stops every later delivery from touching the timer or the executor.
class WaitScope {
 public:
  WaitScope(std::shared_ptr<Waiter> waiter, asio::steady_timer& timer) : waiter_(std::move(waiter)) {
    std::lock_guard lock(waiter_->gate->mutex);
    waiter_->timer = &timer;
  }
  WaitScope(const WaitScope&) = delete;
  WaitScope& operator=(const WaitScope&) = delete;
  ~WaitScope() { close(); }

  std::optional<Answer> close() {
    std::lock_guard lock(waiter_->gate->mutex);
    waiter_->timer = nullptr;
    waiter_->executor.reset();
    return std::move(waiter_->answer);
  }

 private:
  std::shared_ptr<Waiter> waiter_;
};

}  // namespace

class Resolver::Pool : public std::enable_shared_from_this<Pool> {
 public:
  explicit Pool(ResolverOptions options) : options_(options) {}

  // A cached answer, or joins/starts a lookup that will post to `waiter`; an error when
  // the queue is full.
  std::variant<Answer, std::monostate> start(const std::string& host, AddressFamily family,
                                             const std::shared_ptr<Waiter>& waiter) {
    std::string key = (family == AddressFamily::kIpv4 ? "4 " : "* ") + host;
    std::lock_guard lock(mutex_);
    if (auto cached = cache_.find(key); cached != cache_.end()) {
      if (Clock::now() < cached->second.expires) {
        ++stats_.cache_hits;
        return cached->second.answer;
      }
      cache_.erase(cached);
    }
    if (auto running = in_flight_.find(key); running != in_flight_.end()) {
      ++stats_.joined;
      running->second->waiters.push_back(waiter);
      return std::monostate{};
    }
    if (queue_.size() >= options_.max_pending) {
      ++stats_.refused;
      return Answer{{}, asio::error::no_buffer_space};
    }
    auto job = std::make_shared<Job>(Job{key, host, family, {waiter}});
    in_flight_.emplace(key, job);
    queue_.push_back(job);
    if (idle_ == 0 && threads_ < options_.max_threads) spawn_locked();
    work_.notify_one();
    return std::monostate{};
  }

  void stop() {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    work_.notify_all();
  }

  Stats stats() const {
    std::lock_guard lock(mutex_);
    return stats_;
  }

 private:
  struct Job {
    std::string key;
    std::string host;
    AddressFamily family;
    std::vector<std::shared_ptr<Waiter>> waiters;
  };
  struct Cached {
    Answer answer;
    Clock::time_point expires;
  };

  void spawn_locked() {
    try {
      // Detached: a thread may sit in getaddrinfo for as long as the system resolver takes;
      // it holds the pool, so the pool outlives it.
      std::thread([self = shared_from_this()] { self->run(); }).detach();
      ++threads_;
    } catch (const std::system_error& error) {
      spdlog::warn("resolver: cannot start a lookup thread ({} running): {}", threads_, error.what());
    }
  }

  void run() {
    std::unique_lock lock(mutex_);
    for (;;) {
      if (queue_.empty()) {
        if (stopping_) break;
        ++idle_;
        bool woken = work_.wait_for(lock, kThreadIdleExit, [this] { return !queue_.empty() || stopping_; });
        --idle_;
        if (!woken) break;
        continue;
      }
      auto job = std::move(queue_.front());
      queue_.pop_front();
      bool wanted = std::any_of(job->waiters.begin(), job->waiters.end(),
                                [](const auto& waiter) { return waiter->waiting(); });
      if (!wanted) {
        ++stats_.dropped;
        in_flight_.erase(job->key);
        continue;
      }
      ++stats_.lookups;
      lock.unlock();
      Answer answer = lookup(job->host, job->family);
      lock.lock();
      remember_locked(job->key, answer);
      in_flight_.erase(job->key);
      auto waiters = std::move(job->waiters);
      lock.unlock();
      for (auto& waiter : waiters) waiter->deliver(answer, waiter);
      lock.lock();
    }
    if (threads_ > 0) --threads_;
  }

  void remember_locked(const std::string& key, const Answer& answer) {
    auto ttl = answer.error ? options_.negative_ttl : options_.ttl;
    if (ttl.count() <= 0) return;
    auto now = Clock::now();
    if (cache_.size() >= options_.max_cached) {
      std::erase_if(cache_, [now](const auto& entry) { return entry.second.expires <= now; });
      // Still full of live answers: forget one; a miss costs a lookup, not an error.
      if (cache_.size() >= options_.max_cached) cache_.erase(cache_.begin());
    }
    cache_[key] = Cached{answer, now + ttl};
  }

  const ResolverOptions options_;
  mutable std::mutex mutex_;
  std::condition_variable work_;
  std::unordered_map<std::string, Cached> cache_;
  std::unordered_map<std::string, std::shared_ptr<Job>> in_flight_;
  std::deque<std::shared_ptr<Job>> queue_;
  size_t threads_ = 0;
  size_t idle_ = 0;
  bool stopping_ = false;
  Stats stats_;
};

namespace {

ResolverOptions& configured_options() {
  static ResolverOptions options;
  return options;
}

}  // namespace

Resolver::Resolver(ResolverOptions options) : pool_(std::make_shared<Pool>(options)) {}

Resolver::~Resolver() { pool_->stop(); }

Resolver& Resolver::shared() {
  static Resolver resolver(configured_options());
  return resolver;
}

void Resolver::configure(ResolverOptions options) { configured_options() = options; }

Resolver::Stats Resolver::stats() const { return pool_->stats(); }

asio::awaitable<boost::system::result<Resolver::Addresses>> Resolver::resolve(std::string host, AddressFamily family,
                                                                              Clock::time_point deadline) {
  error_code literal_error;
  auto literal = asio::ip::make_address(host, literal_error);
  if (!literal_error) {
    if (family == AddressFamily::kIpv4 && !literal.is_v4()) co_return error_code(asio::error::address_family_not_supported);
    co_return Addresses{literal};
  }
  asio::steady_timer timer(co_await asio::this_coro::executor);
  auto waiter = std::make_shared<Waiter>(timer.get_executor());
  WaitScope scope(waiter, timer);
  auto started = pool_->start(host, family, waiter);
  if (auto* answer = std::get_if<Answer>(&started)) {
    if (answer->error) co_return answer->error;
    co_return answer->addresses;
  }
  timer.expires_at(deadline);
  co_await timer.async_wait(kUseTuple);
  auto answer = scope.close();
  if (!answer) co_return error_code(asio::error::timed_out);
  if (answer->error) co_return answer->error;
  co_return answer->addresses;
}

}  // namespace strait::agent
