#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "agent/handler/handler.h"
#include "agent/runtime/workers.h"

namespace strait::agent {

// A running service: one listener per worker feeding the handler. Owns nothing of other
// services; its open connections keep the HandlerContext of the config they started with.
class Service : public std::enable_shared_from_this<Service> {
 public:
  // Binds every worker's listener; fails (with nothing left open) if the address is taken.
  static absl::StatusOr<std::shared_ptr<Service>> bind(std::string name, const ListenOptions& options,
                                                      ListenerFactory& factory, std::shared_ptr<const Handler> handler,
                                                      std::shared_ptr<const HandlerContext> context, Workers& workers);

  void start();
  // Closes the listeners; connections already accepted go on.
  void stop_accepting();
  // Ends every open connection of this service now.
  void close_connections();
  size_t active_connections() const { return active_.load(std::memory_order_relaxed); }
  const std::string& name() const { return name_; }
  common::HostPort bound_address() const { return bound_; }
  const ServiceStats& stats() const { return *context_->stats; }

 private:
  struct WorkerSlot {
    asio::any_io_executor executor;
    std::unique_ptr<Listener> listener;
    std::unordered_set<Stream*> open;  // touched only on this worker's thread
  };

  Service(std::string name, std::shared_ptr<const Handler> handler, std::shared_ptr<const HandlerContext> context);
  static asio::awaitable<void> accept_loop(std::shared_ptr<Service> self, size_t slot);
  static asio::awaitable<void> serve(std::shared_ptr<Service> self, size_t slot, StreamPtr client);

  std::string name_;
  std::shared_ptr<const Handler> handler_;
  std::shared_ptr<const HandlerContext> context_;
  std::vector<std::unique_ptr<WorkerSlot>> slots_;
  common::HostPort bound_;
  std::atomic<size_t> active_{0};
  std::atomic<bool> accepting_{true};
};

}  // namespace strait::agent
