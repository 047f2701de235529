#pragma once

#include <mutex>
#include <optional>

#include "absl/status/status.h"
#include "agent/runtime/runtime.h"
#include "strait/v1/config.pb.h"

namespace strait::agent {

// The agent's two sources of configuration, local (-L/-F/-C, re-read on SIGHUP) and the
// controller's snapshot, merged (local first) and applied through Runtime::apply. A change
// to either source is applied whole; when it fails nothing changes and that source keeps its
// previous value, so the agent serves exactly the last combination that applied.
class ConfigSources {
 public:
  explicit ConfigSources(Runtime& runtime) : runtime_(runtime) {}

  absl::Status set_local(config::v1::Config local);
  absl::Status set_controller(config::v1::Config snapshot);
  bool has_controller_snapshot() const;

 private:
  absl::Status apply_locked(const config::v1::Config& local, const config::v1::Config* snapshot);

  Runtime& runtime_;
  mutable std::mutex mutex_;
  config::v1::Config local_;
  std::optional<config::v1::Config> controller_;
};

}  // namespace strait::agent
