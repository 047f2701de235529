#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include <boost/asio/steady_timer.hpp>

#include "agent/channel/channel.h"
#include "agent/protocol/pht.h"

namespace strait::agent {

using PhtClock = asio::steady_timer::clock_type;

// The bounds of a pht listener's tunnels (agent/channel/pht.h names their options).
struct PhtLimits {
  size_t max_sessions = 10000;
  size_t buffer_size = 256 * 1024;  // bytes held each way per tunnel
  std::chrono::nanoseconds idle_timeout = std::chrono::seconds(60);
  // GOST's push waits 30 s for the tunnel's reader (a pipe write deadline), then answers 410
  // and ends the tunnel.
  std::chrono::nanoseconds push_wait = std::chrono::seconds(30);
};

class PhtHub;

// One tunnel of a pht listener: the bytes its client pushed, not yet read by the stream that
// accept() returned, and the bytes that stream wrote, not yet pulled. Everything in here
// belongs to the worker that opened the tunnel: every member runs on executor() only. HTTP
// requests that another worker serves (a client's push and pull may come on connections the
// kernel gave to different workers) run their step here with co_spawn(executor(), ...).
class PhtSession : public std::enable_shared_from_this<PhtSession> {
 public:
  enum class Pulled { kData, kIdle, kEnd };
  struct PullStep {
    Pulled kind = Pulled::kEnd;
    std::string data;
  };

  PhtSession(std::weak_ptr<PhtHub> hub, std::string token, asio::any_io_executor executor, std::string peer,
             std::string local, const PhtLimits& limits);

  // Immutable, for any thread.
  const std::string& token() const { return token_; }
  const asio::any_io_executor& executor() const { return executor_; }

  // Starts the idle watch; once, by the worker that made the session.
  void start();
  // The tunnel has nothing left to give its stream (failed, or closed by the client with no
  // bytes waiting): accept() skips it.
  bool dead() const;
  // The stream accept() returns.
  StreamPtr open_stream();

  // Steps of the HTTP requests.
  // A push's bytes: 200 once they are held, 410 when the tunnel is gone or its reader did
  // not make room within PhtLimits::push_wait (then the tunnel ends, as in GOST).
  asio::awaitable<int> push(std::string bytes);
  // The client's empty push: its stream reads the end after what is held, its writes fail.
  asio::awaitable<int> close_by_client();
  // Ends the tunnel at once (bad push body, a pull that lost bytes, idle).
  asio::awaitable<void> fail(error_code reason);
  // A new pull, which ends any older one; nullopt when the tunnel is gone.
  asio::awaitable<std::optional<uint64_t>> begin_pull();
  // Up to pht::kMaxPullPayload bytes; kIdle at `deadline` without any; kEnd when the pull
  // is over (the stream's end, the tunnel's, or a newer pull).
  asio::awaitable<PullStep> pull(uint64_t poll, PhtClock::time_point deadline);
  asio::awaitable<void> end_pull();

 private:
  friend class PhtServerStream;
  using IoResult = std::tuple<error_code, std::size_t>;

  asio::awaitable<IoResult> read(asio::mutable_buffer buffer);
  asio::awaitable<error_code> wait_readable();
  asio::awaitable<IoResult> write(asio::const_buffer buffer);
  void shutdown_send();
  void close_stream();

  // Waits for any change of state, or `deadline`: false when the deadline came first.
  asio::awaitable<bool> wait_change(PhtClock::time_point deadline);
  void notify() { changed_.cancel(); }
  void touch() { last_request_ = PhtClock::now(); }
  // Removes the token from the hub (for good: a later request with it gets 403).
  void retire();
  asio::awaitable<void> watch_idle();

  const std::weak_ptr<PhtHub> hub_;
  const std::string token_;
  const asio::any_io_executor executor_;
  const std::string peer_;
  const std::string local_;
  const PhtLimits limits_;

  pht::ByteQueue inbound_;   // pushed by the client, for the stream to read
  pht::ByteQueue outbound_;  // written by the stream, for the client to pull
  bool client_closed_ = false;
  bool send_closed_ = false;    // the stream shut its sending side (or closed)
  bool stream_closed_ = false;  // the stream was closed
  bool end_told_ = false;       // a pull told the client that the stream's data ended
  bool retired_ = false;
  error_code failure_;
  uint64_t poll_ = 0;    // the newest pull
  size_t requests_ = 0;  // requests in progress (pushes, pulls)
  uint64_t next_push_ = 0;
  uint64_t serving_push_ = 0;  // pushes are taken whole and in arrival order
  PhtClock::time_point last_request_;
  asio::steady_timer changed_;  // cancel(): something changed; never expires
  asio::steady_timer idle_;
};

// The tunnels of one pht service, by token, shared by its workers' listeners: the map is
// behind a mutex, each tunnel's state stays on its own worker (see PhtSession). Tokens of
// ended tunnels are remembered for a while so that a late request is refused (403) rather
// than opening a new tunnel under the old token.
class PhtHub : public std::enable_shared_from_this<PhtHub> {
 public:
  explicit PhtHub(PhtLimits limits) : limits_(limits) {}
  const PhtLimits& limits() const { return limits_; }

  struct Found {
    std::shared_ptr<PhtSession> session;
    bool retired = false;  // the token belonged to a tunnel that ended
  };
  Found find(const std::string& token);
  // A new tunnel under `token`, owned by `executor` (the caller's worker); the existing one
  // when another request made it first (*created false); null when the token is retired or
  // PhtLimits::max_sessions tunnels are open.
  std::shared_ptr<PhtSession> create(const std::string& token, const asio::any_io_executor& executor,
                                     const std::string& peer, const std::string& local, bool* created);
  void retire(const std::string& token, const PhtSession* session);
  size_t size();

 private:
  void forget_old(PhtClock::time_point now);

  const PhtLimits limits_;
  std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<PhtSession>> sessions_;
  std::deque<std::pair<std::string, PhtClock::time_point>> retired_order_;
  std::unordered_set<std::string> retired_;
};

}  // namespace strait::agent
