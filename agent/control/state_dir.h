#pragma once

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "strait/v1/control.pb.h"

namespace strait::agent {

// The agent's key and the certificate the controller issued for it.
struct StoredIdentity {
  std::string key_pem;
  std::string cert_pem;
};

// The agent's state directory: the last snapshot it applied, so that it serves it at start
// when the controller cannot be reached, and its identity (identity.pem: key and certificate
// in one file, mode 0600, so they are replaced together). Writes are atomic (a temporary
// file, fsync, rename), so a crash leaves the old or the new file, never half of one.
class StateDir {
 public:
  // Creates the directory (mode 0700: snapshots hold proxy passwords) when missing.
  static absl::StatusOr<StateDir> open(const std::string& path);

  absl::StatusOr<std::optional<control::v1::Snapshot>> load_snapshot() const;
  absl::Status save_snapshot(const control::v1::Snapshot& snapshot) const;

  // Nothing when there is no identity yet; an error when the file is not a key and its
  // certificate.
  absl::StatusOr<std::optional<StoredIdentity>> load_identity() const;
  absl::Status save_identity(const StoredIdentity& identity) const;
  std::string identity_path() const { return path_ + "/identity.pem"; }

 private:
  explicit StateDir(std::string path) : path_(std::move(path)) {}
  std::string snapshot_path() const { return path_ + "/snapshot.pb"; }
  absl::Status write_atomically(const std::string& target, const std::string& data) const;

  std::string path_;
};

}  // namespace strait::agent
