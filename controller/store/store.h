#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "strait/v1/admin.pb.h"

namespace strait::controller {

using admin::v1::Resource;

// One change of the resources, in revision order.
struct StoreEvent {
  enum class Type { kPut, kDelete };
  Type type;
  Resource resource;  // for kDelete: the resource as it was, with the deleting revision
  int64_t revision = 0;
};

// A join token as kept by the store: only the SHA-256 of the secret, never the secret.
struct JoinToken {
  std::string id;
  std::string secret_hash;  // hex SHA-256
  std::string description;
  int64_t created_unix = 0;
  int64_t expires_unix = 0;  // 0: never
};

// The controller's source of truth. One global revision counts every change (as etcd's); a
// resource's metadata.revision is the revision of its last change. Implementations are
// thread-safe. `sqlite` is the embedded default; an etcd store implements the same calls for
// several controllers over one store.
class Store {
 public:
  virtual ~Store() = default;

  // expected_revision: nullopt = create or replace; 0 = create only; > 0 = replace only that
  // revision. A mismatch is FAILED_PRECONDITION naming both revisions.
  virtual absl::StatusOr<Resource> put(Resource resource, std::optional<int64_t> expected_revision) = 0;
  virtual absl::StatusOr<Resource> get(const std::string& kind, const std::string& name) = 0;
  // kind empty: every kind. Sorted by kind, then name.
  virtual absl::StatusOr<std::vector<Resource>> list(const std::string& kind) = 0;
  virtual absl::StatusOr<Resource> remove(const std::string& kind, const std::string& name,
                                          std::optional<int64_t> expected_revision) = 0;
  virtual int64_t revision() = 0;

  // Calls `listener` after every committed change, on the thread that made it. Returns an id
  // for unwatch().
  virtual int watch(std::function<void(const StoreEvent&)> listener) = 0;
  virtual void unwatch(int id) = 0;

  virtual absl::Status put_token(const JoinToken& token) = 0;
  // The token whose hash matches and that has not expired at `now_unix`.
  virtual absl::StatusOr<std::optional<JoinToken>> find_token(const std::string& secret_hash, int64_t now_unix) = 0;
};

}  // namespace strait::controller
