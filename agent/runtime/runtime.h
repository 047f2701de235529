#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "agent/runtime/inherited_sockets.h"
#include "agent/runtime/workers.h"
#include "agent/service/service.h"
#include "strait/v1/config.pb.h"

namespace strait::agent {

// What one running service has done, for status reports.
struct ServiceReport {
  std::string name;
  std::string address;
  size_t active_connections = 0;
  size_t draining_connections = 0;  // still open on earlier versions of the service
  uint64_t connections = 0;
  uint64_t bytes_from_clients = 0;
  uint64_t bytes_to_clients = 0;
  uint64_t errors = 0;
};

// The single entry point through which a whole configuration is applied (command line,
// config file, the controller). A snapshot is validated and built completely before
// anything changes: an invalid snapshot changes nothing.
class Runtime {
 public:
  // `max_connections`: open connections of the whole agent (from the descriptor limit).
  Runtime(Workers& workers, std::chrono::nanoseconds drain_timeout, size_t max_connections);

  // Applies a complete snapshot. Unchanged services keep running untouched. A changed
  // service on the same address and listener type keeps its listening sockets (socket
  // options change in place) and takes the new config for new connections; only a service
  // whose address or listener type changes binds new sockets, serves what the old ones had
  // queued, and closes them.
  // Either way the old config's connections drain. Removed services drain.
  absl::Status apply(std::shared_ptr<const config::v1::Config> snapshot);

  // Sockets from the agent this one replaces or from systemd, adopted by the services they
  // match as they bind.
  void adopt(InheritedSockets sockets);
  // Closes the adopted sockets that no service took.
  void close_unclaimed_sockets();
  // Every listening socket of the running services (for a takeover).
  std::vector<int> listening_sockets() const;

  // The services running now (draining generations count with the service of that name).
  std::vector<ServiceReport> report() const;

  // Ends draining generations whose connections are gone or whose grace period is over.
  void reap_draining();
  // Stops accepting everywhere; returns once every connection ended or `grace` passed (then
  // the rest are closed).
  void shutdown(std::chrono::nanoseconds grace);

 private:
  struct Running {
    std::shared_ptr<Service> service;
    std::string socket_key;   // what the listening sockets were made from
    std::string fingerprint;  // the whole service config plus everything it references
    std::shared_ptr<ServiceGeneration> generation;
    std::shared_ptr<ServiceStats> stats;  // totals across generations and rebinds
  };
  struct Draining {
    std::shared_ptr<Service> service;
    std::shared_ptr<ServiceGeneration> generation;
    std::chrono::steady_clock::time_point deadline;
  };

  std::vector<asio::any_io_executor> executors_;
  std::chrono::nanoseconds drain_timeout_;
  std::shared_ptr<ConnectionBudget> budget_;
  mutable std::mutex mutex_;  // guards the members below; apply is rare and off the data path
  std::map<std::string, Running> running_;
  std::vector<Draining> draining_;
  InheritedSockets inherited_;
};

}  // namespace strait::agent
