#pragma once

#include <atomic>
#include <memory>
#include <span>
#include <string>
#include <unordered_set>
#include <vector>

#include "agent/handler/handler.h"

namespace strait::agent {

// Open connections of the whole agent, against a limit derived from the descriptor limit
// (each proxied connection holds two sockets). Shared by every service.
struct ConnectionBudget {
  explicit ConnectionBudget(size_t max) : limit(max) {}
  const size_t limit;
  std::atomic<size_t> open{0};
};

// One applied configuration of a service: the handler and context that its new connections
// get, and the connections it serves. A reload that keeps the service's sockets starts a new
// generation; the old one keeps its connections (with the config they started with) until
// they end or the drain deadline closes them.
class ServiceGeneration {
 public:
  ServiceGeneration(std::shared_ptr<const Handler> handler, std::shared_ptr<const HandlerContext> context,
                    size_t slots);
  size_t active() const { return active_.load(std::memory_order_relaxed); }
  const HandlerContext& context() const { return *context_; }

 private:
  friend class Service;
  std::shared_ptr<const Handler> handler_;
  std::shared_ptr<const HandlerContext> context_;
  std::vector<std::unordered_set<Stream*>> open_;  // per worker slot, touched only on that worker
  std::atomic<size_t> active_{0};
};

// A running service: one listener per worker feeding the current generation's handler.
// Beyond `max_connections` (0: no limit of its own) or the agent's budget it stops taking
// connections, which then wait in the kernel's listen queue, as haproxy's maxconn does.
class Service : public std::enable_shared_from_this<Service> {
 public:
  // Binds a listener per worker; fails (with nothing left open) if the address is taken.
  // `inherited` sockets (from a takeover or systemd) are adopted first: one per slot, and
  // as many slots as there are of them, spread over the workers, so that none is left
  // unserved; a stream service with fewer of them than workers shares them (dup).
  static absl::StatusOr<std::shared_ptr<Service>> bind(std::string name, const ListenOptions& options,
                                                      ListenerFactory& factory,
                                                      std::span<const asio::any_io_executor> executors,
                                                      std::shared_ptr<ConnectionBudget> budget,
                                                      size_t max_connections, std::vector<int> inherited,
                                                      bool datagram);

  // New connections from now on go to `generation`; the first call starts accepting.
  void serve(std::shared_ptr<ServiceGeneration> generation);
  // New socket options and connection limit, on the same sockets.
  void update(const ListenOptions& options, size_t max_connections);
  // Takes the connections already queued in the kernel (served by the current generation),
  // then closes the listeners; accepted connections go on.
  void stop_accepting();
  // Ends every open connection of `generation` now.
  void close_connections(std::shared_ptr<ServiceGeneration> generation);
  // Open connections of every generation.
  size_t open_connections() const { return open_.load(std::memory_order_relaxed); }
  // The listening sockets, to hand them to a new agent. Called off the workers: the
  // descriptors do not change while the service runs.
  std::vector<int> listening_fds() const;
  const std::string& name() const { return name_; }
  common::HostPort bound_address() const { return bound_; }

 private:
  struct WorkerSlot {
    asio::any_io_executor executor;
    std::unique_ptr<Listener> listener;
    std::shared_ptr<ServiceGeneration> generation;  // touched only on this worker
    bool accepting = false;
  };

  Service(std::string name, std::shared_ptr<ConnectionBudget> budget, size_t max_connections);
  bool at_capacity() const;
  // Counts one more connection if the service and the agent have room for it.
  bool try_admit();
  void note_accept_error(const error_code& error);
  // `admitted`: try_admit() already counted it; otherwise it is counted here, over the limit
  // if need be (clients taken from a closing listener were promised a connection).
  void start_connection(size_t slot, StreamPtr client, bool admitted);
  static asio::awaitable<void> accept_loop(std::shared_ptr<Service> self, size_t slot);
  static asio::awaitable<void> serve_connection(std::shared_ptr<Service> self, size_t slot,
                                                std::shared_ptr<ServiceGeneration> generation, StreamPtr client);
  class Registration;

  std::string name_;
  std::shared_ptr<ConnectionBudget> budget_;
  std::atomic<size_t> max_connections_;
  std::vector<std::unique_ptr<WorkerSlot>> slots_;
  common::HostPort bound_;
  std::atomic<size_t> open_{0};
  std::atomic<bool> stopped_{false};
  // Accept errors since the last report: reported at most once a second, across workers.
  std::atomic<uint64_t> accept_errors_{0};
  std::atomic<int64_t> next_error_report_ns_{0};
};

}  // namespace strait::agent
