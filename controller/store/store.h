#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "strait/v1/admin.pb.h"

namespace strait::controller {

using admin::v1::AgentRecord;
using admin::v1::Resource;

// Every resource and the revision they are at, read together.
struct StoreSnapshot {
  std::vector<Resource> resources;  // sorted by kind, then name
  int64_t revision = 0;
};

// One change of the resources, in revision order.
struct StoreEvent {
  enum class Type { kPut, kDelete };
  Type type;
  Resource resource;  // for kDelete: the resource as it was, with the deleting revision
  int64_t revision = 0;
  // Set instead of `resource` when an enrolled agent's record changed in a store that
  // several controllers share (etcd), so each knows the agents the others enrolled or
  // renewed; for kDelete it holds only the id.
  std::optional<AgentRecord> agent = std::nullopt;
  // Set instead when another controller sharing the store published or withdrew an agent's
  // presence (see publish_presence); for kDelete it holds only the id and the controller.
  std::optional<admin::v1::AgentInfo> presence = std::nullopt;
};

// A join token as kept by the store: only the SHA-256 of the secret, never the secret.
struct JoinToken {
  std::string id;
  std::string secret_hash;  // hex SHA-256
  std::string description;
  int64_t created_unix = 0;
  int64_t expires_unix = 0;  // 0: never
  // Labels it may grant at enrolment; the value "*" grants any value of the key, and "*=*"
  // any label (tokens made before tokens granted labels).
  std::map<std::string, std::string> grants;
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
  virtual absl::StatusOr<StoreSnapshot> read_all() = 0;

  // Calls `listener` after every committed change, on the thread that made it. Returns an id
  // for unwatch().
  virtual int watch(std::function<void(const StoreEvent&)> listener) = 0;
  virtual void unwatch(int id) = 0;

  virtual absl::Status put_token(const JoinToken& token) = 0;
  // The token whose hash matches and that has not expired at `now_unix`.
  virtual absl::StatusOr<std::optional<JoinToken>> find_token(const std::string& secret_hash, int64_t now_unix) = 0;
  // Every token, expired ones too, by creation time.
  virtual absl::StatusOr<std::vector<JoinToken>> list_tokens() = 0;
  // False when there was no such token.
  virtual absl::StatusOr<bool> remove_token(const std::string& id) = 0;

  // Enrolled agents. put_agent creates or replaces the record of its id and returns the
  // record's new revision (0 from a store of one controller). A record with a revision
  // replaces only that revision: when another controller wrote or deleted it since, ABORTED,
  // and read_agent gives what is there now.
  virtual absl::StatusOr<int64_t> put_agent(const AgentRecord& agent) = 0;
  // The stored record of `id` as the store has it now, not as a cache last heard.
  virtual absl::StatusOr<std::optional<AgentRecord>> read_agent(const std::string& id) = 0;
  virtual absl::StatusOr<std::vector<AgentRecord>> list_agents() = 0;
  virtual absl::StatusOr<bool> remove_agent(const std::string& id) = 0;

  // Presence: the connection of an agent as the controller holding its stream last said
  // (AgentInfo's connection fields, `controller` naming that controller). A store that several
  // controllers share keeps each controller's entries only while that controller lives (etcd:
  // on its lease) and reports the others' changes as StoreEvents with `presence`, so every
  // controller can list every agent's connection. A store of one controller keeps none.
  virtual bool shares_presence() const { return false; }
  // Publishes this controller's entries: `connected` replaces the entry of each, and the
  // entries of `disconnected` (agent ids) go.
  virtual absl::Status publish_presence(const std::vector<admin::v1::AgentInfo>& /*connected*/,
                                        const std::vector<std::string>& /*disconnected*/) {
    return absl::OkStatus();
  }
  // The other controllers' entries.
  virtual absl::StatusOr<std::vector<admin::v1::AgentInfo>> list_presence() {
    return std::vector<admin::v1::AgentInfo>();
  }
};

// The listeners of a store's watch(): each store keeps one and calls notify() after changes.
class StoreListeners {
 public:
  int add(std::function<void(const StoreEvent&)> listener);
  void remove(int id);
  void notify(const std::vector<StoreEvent>& events);

 private:
  std::mutex mutex_;
  std::map<int, std::function<void(const StoreEvent&)>> listeners_;
  int next_ = 0;
};

// The refusal when a resource is not at the revision a write expects (`expected`: 0 for
// create only): ALREADY_EXISTS or FAILED_PRECONDITION naming both revisions.
absl::Status check_expected_revision(const std::string& kind, const std::string& name, int64_t actual,
                                     std::optional<int64_t> expected);

}  // namespace strait::controller
