#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "controller/resource/diff.h"
#include "controller/resource/snapshot.h"
#include "controller/server/metrics.h"
#include "controller/store/store.h"
#include "strait/v1/admin.pb.h"
#include "strait/v1/control.pb.h"

namespace strait::controller {

// Who is on the other end of a stream, from the client certificate the TLS layer verified.
struct AgentIdentity {
  std::string id;
  std::string serial_hex;
  int64_t not_after_unix = 0;
};

// The controller side of one agent's stream (the gRPC reactor implements it).
class AgentStream {
 public:
  virtual ~AgentStream() = default;
  // Sends a snapshot; never blocks. The fleet sends the next one only after the agent
  // answered this one, so a stream holds at most one message, shared with other agents.
  virtual void send(std::shared_ptr<const control::v1::ControllerMessage> message) = 0;
  // Ends the stream with `status` (a newer stream, a revoked or expired certificate).
  virtual void close(const absl::Status& status) = 0;
};

struct FleetOptions {
  // Changes this close together go out as one push.
  std::chrono::milliseconds coalesce{20};
  // A stream that said nothing for this long may be replaced by a new one of the same agent;
  // a livelier one makes the new stream be refused (agents speak every 5 s).
  std::chrono::milliseconds stream_liveness{15000};
  // Disconnected agents whose certificate expired this long ago are forgotten.
  std::chrono::seconds retention{24 * 3600};
  // How often expired certificates and retention are checked, and presence published.
  std::chrono::milliseconds maintenance_interval{1000};
  // An agent that has not answered a snapshot in this long stopped reading: its stream is
  // closed and it connects again.
  std::chrono::milliseconds ack_timeout{60000};
  // The largest snapshot sent (serialized), as agents take messages up to 4 MiB. A larger one
  // is not sent: the agents keep what they serve and their info says why.
  size_t max_snapshot_bytes = 4u << 20;
  // This controller's name in agent infos and presence entries.
  std::string controller_name;
  // With a store shared by several controllers: how often a connected agent's presence (its
  // counters and last-seen time) is published even when nothing else changed.
  std::chrono::milliseconds presence_refresh{30000};
};

// The enrolled agents, their streams, what each was sent and what each acknowledged, as an
// xDS state-of-the-world server keeps them:
// - snapshots are built outside the lock, once per distinct label set and store revision,
//   and shared (immutable) by every agent with that label set;
// - an agent has at most one snapshot in flight and one pending; a newer pending one
//   replaces the older, and the pending one goes out on the ACK/NACK of the one in flight;
// - an agent that connects already serving its snapshot is sent nothing;
// - a change of the resources drops only the snapshots it can alter (SnapshotInputs).
// The fleet is the one writer of agent records in the store. With a store that several
// controllers share, it publishes the presence of the agents connected here and lists the
// agents connected elsewhere from the others' presence.
class Fleet {
 public:
  Fleet(Store& store, ControllerMetrics& metrics, FleetOptions options = {});
  ~Fleet();

  // Reads the agent records and the resources; call once before serving.
  absl::Status load();

  std::optional<AgentRecord> record(const std::string& agent_id) const;
  // Changes an agent's record (enrolment, renewal, labels) as one step: `change` gets the
  // current record (nothing when there is none) and edits or sets it, or refuses with an
  // error that is returned as is. The result is stored, then served; a connected agent whose
  // labels changed gets its new snapshot.
  using RecordChange = std::function<absl::Status(std::optional<AgentRecord>& record)>;
  absl::StatusOr<AgentRecord> update_record(const std::string& agent_id, const RecordChange& change);
  // Forgets the agent: its certificates stop working and its stream, if any, is closed.
  // False when there was no such agent.
  absl::StatusOr<bool> remove_agent(const std::string& agent_id, const std::string& why);

  // Registers a stream after its Hello. Refused (with the reason) for an agent that is not
  // enrolled, a certificate that is not one of the agent's, or while another stream of the
  // agent is alive. Returns the session number the stream passes back.
  absl::StatusOr<uint64_t> connect(const AgentIdentity& identity, const control::v1::Hello& hello,
                                   const std::string& peer, AgentStream* stream);
  void disconnect(const std::string& agent_id, uint64_t session);
  void on_ack(const std::string& agent_id, uint64_t session, const control::v1::Ack& ack);
  void on_status(const std::string& agent_id, uint64_t session, const control::v1::Status& status);
  void on_heartbeat(const std::string& agent_id, uint64_t session);

  std::vector<admin::v1::AgentInfo> agents() const;
  std::vector<AgentLabels> agent_labels() const;
  // Refuses `resources` (a store's list, as a change would leave it) when the snapshot of any
  // enrolled agent's label set would be larger than max_snapshot_bytes.
  absl::Status check_snapshot_sizes(const std::vector<Resource>& resources) const;

 private:
  // One snapshot for one label set at one store revision.
  struct Built {
    std::string fingerprint;
    std::string nonce;
    std::shared_ptr<const control::v1::ControllerMessage> message;
    Labels labels;
    SnapshotInputs inputs;
    std::string refusal;  // why it is not sent (too large); empty when it may be
  };
  using BuiltPtr = std::shared_ptr<const Built>;

  struct Agent {
    AgentRecord record;
    std::string label_key;
    admin::v1::AgentInfo info;  // connection, versions and status as reported
    AgentStream* stream = nullptr;  // null while disconnected
    uint64_t session = 0;
    std::chrono::steady_clock::time_point last_message;
    int64_t certificate_not_after = 0;  // of the connected stream's certificate
    std::string held_digest;            // content digest of the version the agent serves
    std::string target_fingerprint;     // of the newest snapshot chosen for it
    BuiltPtr in_flight;
    std::chrono::steady_clock::time_point sent_at;
    BuiltPtr pending;
    bool presence_changed = false;  // to be published (shared stores)
    std::chrono::steady_clock::time_point presence_published;
  };

  void run();
  // Builds what connected agents in `agents` (all when null) lack and offers it to them.
  void evaluate(std::unique_lock<std::mutex>& lock, const std::set<std::string>* agents);
  void offer_locked(Agent& agent, const BuiltPtr& built);
  void send_locked(Agent& agent, const BuiltPtr& built);
  void maintain(std::unique_lock<std::mutex>& lock);
  bool prunable(const Agent& agent, int64_t now_unix) const;
  Agent* find_session_locked(const std::string& agent_id, uint64_t session);
  void adopt_record_locked(Agent& agent, const AgentRecord& record);
  // A record written here or, with a shared store, by another controller.
  void record_changed_locked(const AgentRecord& record);
  void adopt_shared_record_locked(StoreEvent::Type type, const AgentRecord& record);
  // Drops the agent and closes its stream; false when it was not known.
  bool forget_agent_locked(const std::string& agent_id, const std::string& why);
  BuiltPtr build(const StoreSnapshot& resources, const Labels& labels, uint64_t nonce);
  // Drops the snapshots that the resource changes since the last build can alter.
  void drop_affected_locked(const std::vector<Resource>& changes, bool all_changed);
  void end_stream_locked(Agent& agent, const std::string& id);
  void adopt_presence_locked(StoreEvent::Type type, const admin::v1::AgentInfo& presence);
  // The agent's info with its connection elsewhere, when another controller holds it.
  admin::v1::AgentInfo merged_info_locked(const Agent& agent) const;
  void publish_presence(std::unique_lock<std::mutex>& lock);

  Store& store_;
  ControllerMetrics& metrics_;
  FleetOptions options_;
  int watch_id_ = 0;

  // Serializes writes of agent records (store, then memory). Taken before mutex_, never after.
  std::mutex records_mutex_;
  mutable std::mutex mutex_;  // guards everything below; never held while building or calling the store
  std::condition_variable wake_;
  std::map<std::string, Agent> agents_;
  std::shared_ptr<const StoreSnapshot> resources_;
  std::map<std::string, BuiltPtr> built_;  // by label key, for resources_
  std::set<std::string> unevaluated_;      // connected agents waiting for a snapshot of their label set
  std::set<std::string> unsaved_;          // records whose last-seen time is newer than the store's
  std::vector<Resource> changed_resources_;  // since resources_, as the store reported them
  bool changed_beyond_count_ = false;        // too many to keep: every snapshot is rebuilt
  // Other controllers' presence entries: agent id -> controller -> entry.
  std::map<std::string, std::map<std::string, admin::v1::AgentInfo>> remote_presence_;
  std::set<std::string> presence_withdrawn_;  // agents whose stream here ended since the last publish
  bool presence_failing_ = false;
  std::string removing_;                   // the agent remove_agent is deleting from the store
  uint64_t next_session_ = 0;
  uint64_t next_nonce_ = 0;
  bool store_changed_ = false;
  bool stopping_ = false;
  std::thread worker_;
};

// "k=v,k2=v2": one key per label set, the cache key of its snapshot.
std::string label_key(const Labels& labels);

}  // namespace strait::controller
