#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "agent/runtime/workers.h"
#include "agent/service/service.h"
#include "strait/v1/config.pb.h"

namespace strait::agent {

// The single entry point through which a whole configuration is applied (command line,
// config file, and later the controller). A snapshot is validated and built completely
// before anything changes: an invalid snapshot changes nothing.
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

class Runtime {
 public:
  Runtime(Workers& workers, std::chrono::nanoseconds drain_timeout);

  // Applies a complete snapshot. Unchanged services keep running untouched; changed ones
  // start their new listeners first (SO_REUSEPORT) and drain the old; removed ones drain.
  absl::Status apply(std::shared_ptr<const config::v1::Config> snapshot);

  // The services running now (draining ones count with the service of the same name).
  std::vector<ServiceReport> report() const;

  // Ends draining services whose connections are gone or whose grace period is over.
  void reap_draining();
  // Stops accepting everywhere; returns once every connection ended or `grace` passed (then
  // the rest are closed).
  void shutdown(std::chrono::nanoseconds grace);

 private:
  struct Running {
    std::shared_ptr<Service> service;
    std::string fingerprint;  // the service's config plus everything it references
  };
  struct Draining {
    std::shared_ptr<Service> service;
    std::chrono::steady_clock::time_point deadline;
  };

  Workers& workers_;
  std::chrono::nanoseconds drain_timeout_;
  mutable std::mutex mutex_;  // guards the maps below; apply is rare and off the data path
  std::map<std::string, Running> running_;
  std::vector<Draining> draining_;
};

}  // namespace strait::agent
