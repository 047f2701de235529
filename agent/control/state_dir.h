#pragma once

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "strait/v1/control.pb.h"

namespace strait::agent {

// The agent's state directory: the last snapshot it applied, so that it serves it at start
// when the controller cannot be reached. Writes are atomic (a temporary file, fsync, rename),
// so a crash leaves either the old or the new snapshot, never half of one.
class StateDir {
 public:
  // Creates the directory (mode 0700: snapshots hold proxy passwords) when missing.
  static absl::StatusOr<StateDir> open(const std::string& path);

  absl::StatusOr<std::optional<control::v1::Snapshot>> load_snapshot() const;
  absl::Status save_snapshot(const control::v1::Snapshot& snapshot) const;

 private:
  explicit StateDir(std::string path) : path_(std::move(path)) {}
  std::string snapshot_path() const { return path_ + "/snapshot.pb"; }

  std::string path_;
};

}  // namespace strait::agent
