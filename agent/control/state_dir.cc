#include "agent/control/state_dir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/agent_certificate.h"
#include "common/strings.h"

namespace strait::agent {
namespace {

absl::Status errno_error(std::string_view what, const std::string& path) {
  return absl::UnavailableError(common::str_cat("state dir: cannot ", what, " ", path, ": ", std::strerror(errno)));
}

// Writes all of `data` to `fd`.
bool write_all(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

absl::StatusOr<StateDir> StateDir::open(const std::string& path) {
  std::error_code error;
  std::filesystem::create_directories(path, error);
  if (error) return absl::UnavailableError(common::str_cat("state dir ", path, ": ", error.message()));
  ::chmod(path.c_str(), 0700);
  return StateDir(path);
}

absl::StatusOr<std::optional<control::v1::Snapshot>> StateDir::load_snapshot() const {
  std::ifstream in(snapshot_path(), std::ios::binary);
  if (!in) return std::optional<control::v1::Snapshot>();
  std::stringstream contents;
  contents << in.rdbuf();
  control::v1::Snapshot snapshot;
  if (!snapshot.ParseFromString(contents.str())) {
    return absl::DataLossError(common::str_cat("state dir: ", snapshot_path(), " is not a snapshot; remove it"));
  }
  return std::optional<control::v1::Snapshot>(std::move(snapshot));
}

absl::Status StateDir::save_snapshot(const control::v1::Snapshot& snapshot) const {
  return write_atomically(snapshot_path(), snapshot.SerializeAsString());
}

absl::StatusOr<std::optional<StoredIdentity>> StateDir::load_identity() const {
  std::ifstream in(identity_path());
  if (!in) return std::optional<StoredIdentity>();
  std::stringstream contents;
  contents << in.rdbuf();
  std::string text = contents.str();
  // The key comes first, then the certificate.
  auto cert_start = text.find("-----BEGIN CERTIFICATE-----");
  if (cert_start == std::string::npos || !common::key_matches_certificate(text.substr(0, cert_start), text.substr(cert_start))) {
    return absl::DataLossError(
        common::str_cat("state dir: ", identity_path(), " is not a key and its certificate; remove it and enrol again"));
  }
  return std::optional<StoredIdentity>(StoredIdentity{text.substr(0, cert_start), text.substr(cert_start)});
}

absl::Status StateDir::save_identity(const StoredIdentity& identity) const {
  return write_atomically(identity_path(), identity.key_pem + identity.cert_pem);
}

absl::Status StateDir::write_atomically(const std::string& target, const std::string& data) const {
  std::string temporary = target + ".tmp";
  int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return errno_error("create", temporary);
  bool ok = write_all(fd, data) && ::fsync(fd) == 0;
  int saved_errno = errno;
  ::close(fd);
  if (!ok) {
    errno = saved_errno;
    return errno_error("write", temporary);
  }
  if (::rename(temporary.c_str(), target.c_str()) != 0) return errno_error("rename", temporary);
  // The rename itself is durable only once the directory is synced.
  int dir = ::open(path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return absl::OkStatus();
}

}  // namespace strait::agent
