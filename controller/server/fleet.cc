#include "controller/server/fleet.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/log_escape.h"
#include "common/strings.h"
#include "controller/resource/snapshot.h"

namespace strait::controller {
namespace {

using common::str_cat;

int64_t now_millis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t now_unix() { return now_millis() / 1000; }

// "<store revision>.<content digest>": the revision says when, the digest what.
std::string snapshot_version(int64_t revision, const std::string& fingerprint) {
  return str_cat(revision, ".", fingerprint);
}

// The content digest of a version an agent reports; empty when it has none.
std::string digest_of(std::string_view version) {
  auto dot = version.find('.');
  if (dot == std::string_view::npos || version.size() - dot - 1 < 8) return "";
  return std::string(version.substr(dot + 1));
}

// True when an agent serving content `held_digest` already serves `fingerprint`. Agents of
// earlier controllers report the first 8 digits of it.
bool holds(const std::string& held_digest, const std::string& fingerprint) {
  return !held_digest.empty() && fingerprint.starts_with(held_digest);
}

Labels labels_of(const AgentRecord& record) { return Labels(record.labels().begin(), record.labels().end()); }

// Writes of one agent record that may each find another controller's newer one first.
constexpr int kRecordWriteAttempts = 3;
// Changes kept one by one between two builds; beyond this, every snapshot is rebuilt.
constexpr size_t kMaxTrackedChanges = 4096;
// What a ControllerMessage adds around the Config it carries (version, nonce, framing).
constexpr size_t kSnapshotEnvelopeBytes = 256;

std::string labels_text(const std::string& label_key) { return label_key.empty() ? "none" : label_key; }

}  // namespace

std::string label_key(const Labels& labels) {
  std::vector<std::string> parts;
  for (const auto& [key, value] : labels) parts.push_back(str_cat(key, "=", value));
  return common::join(parts, ",");
}

Fleet::Fleet(Store& store, ControllerMetrics& metrics, FleetOptions options)
    : store_(store), metrics_(metrics), options_(options) {
  watch_id_ = store_.watch([this](const StoreEvent& event) {
    std::lock_guard lock(mutex_);
    if (event.presence) return adopt_presence_locked(event.type, *event.presence);
    if (event.agent) return adopt_shared_record_locked(event.type, *event.agent);
    if (changed_resources_.size() < kMaxTrackedChanges) {
      changed_resources_.push_back(event.resource);
    } else {
      changed_beyond_count_ = true;
    }
    store_changed_ = true;
    wake_.notify_one();
  });
}

Fleet::~Fleet() {
  store_.unwatch(watch_id_);
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    wake_.notify_one();
  }
  if (worker_.joinable()) worker_.join();
}

absl::Status Fleet::load() {
  auto records = store_.list_agents();
  if (!records.ok()) return records.status();
  auto resources = store_.read_all();
  if (!resources.ok()) return resources.status();
  auto presence = store_.list_presence();
  if (!presence.ok()) return presence.status();
  {
    std::lock_guard lock(mutex_);
    for (const auto& record : *records) adopt_record_locked(agents_[record.id()], record);
    for (const auto& entry : *presence) adopt_presence_locked(StoreEvent::Type::kPut, entry);
    resources_ = std::make_shared<const StoreSnapshot>(*std::move(resources));
    metrics_.agents_enrolled.store(static_cast<int64_t>(agents_.size()));
    metrics_.store_revision.store(resources_->revision);
    metrics_.resources.store(static_cast<int64_t>(resources_->resources.size()));
  }
  worker_ = std::thread([this] { run(); });
  return absl::OkStatus();
}

void Fleet::adopt_record_locked(Agent& agent, const AgentRecord& record) {
  agent.record = record;
  agent.label_key = label_key(labels_of(record));
  agent.info.set_id(record.id());
  *agent.info.mutable_labels() = record.labels();
  *agent.info.mutable_requested_labels() = record.requested_labels();
  agent.info.set_token_id(record.token_id());
  agent.info.set_enrolled_unix(record.enrolled_unix());
  agent.info.set_certificate_expires_unix(record.certificate_expires_unix());
  if (agent.stream == nullptr) agent.info.set_last_seen_unix_millis(record.last_seen_unix() * 1000);
}

std::optional<AgentRecord> Fleet::record(const std::string& agent_id) const {
  std::lock_guard lock(mutex_);
  auto it = agents_.find(agent_id);
  if (it == agents_.end()) return std::nullopt;
  return it->second.record;
}

absl::StatusOr<AgentRecord> Fleet::update_record(const std::string& agent_id, const RecordChange& change) {
  std::lock_guard writing(records_mutex_);
  for (int attempt = 1;; ++attempt) {
    std::optional<AgentRecord> record = this->record(agent_id);
    if (auto status = change(record); !status.ok()) return status;
    if (!record || record->id() != agent_id) return absl::InternalError(str_cat("no record for agent ", agent_id));
    auto revision = store_.put_agent(*record);
    if (revision.ok()) {
      record->set_revision(*revision);
      std::lock_guard lock(mutex_);
      record_changed_locked(*record);
      return *record;
    }
    // Another controller wrote the record since this one read it (a renewal, a relabel):
    // the change applies again on top of what is stored now, never over it.
    if (!absl::IsAborted(revision.status()) || attempt == kRecordWriteAttempts) return revision.status();
    auto current = store_.read_agent(agent_id);
    if (!current.ok()) return current.status();
    if (!*current) return absl::NotFoundError(str_cat("agent ", agent_id, " was deleted through another controller"));
    std::lock_guard lock(mutex_);
    record_changed_locked(**current);
  }
}

void Fleet::record_changed_locked(const AgentRecord& record) {
  auto [it, inserted] = agents_.try_emplace(record.id());
  Agent& agent = it->second;
  // The watch may bring a write after a newer one was read or made here.
  if (!inserted && record.revision() != 0 && agent.record.revision() > record.revision()) return;
  std::string previous_key = agent.label_key;
  // When this controller last saw the agent, not yet saved, outlives another's write.
  AgentRecord adopted = record;
  if (!inserted) adopted.set_last_seen_unix(std::max(record.last_seen_unix(), agent.record.last_seen_unix()));
  adopt_record_locked(agent, adopted);
  if (inserted) metrics_.agents_enrolled.store(static_cast<int64_t>(agents_.size()));
  if (agent.stream != nullptr && agent.label_key != previous_key) {
    unevaluated_.insert(record.id());
    wake_.notify_one();
  }
}

void Fleet::adopt_shared_record_locked(StoreEvent::Type type, const AgentRecord& record) {
  if (type == StoreEvent::Type::kPut) return record_changed_locked(record);
  if (record.id() != removing_ && forget_agent_locked(record.id(), "deleted through another controller")) {
    spdlog::info("agent {} deleted through another controller: its certificates no longer connect", record.id());
  }
}

void Fleet::adopt_presence_locked(StoreEvent::Type type, const admin::v1::AgentInfo& presence) {
  if (type == StoreEvent::Type::kPut) {
    remote_presence_[presence.id()][presence.controller()] = presence;
    return;
  }
  auto it = remote_presence_.find(presence.id());
  if (it == remote_presence_.end()) return;
  it->second.erase(presence.controller());
  if (it->second.empty()) remote_presence_.erase(it);
}

admin::v1::AgentInfo Fleet::merged_info_locked(const Agent& agent) const {
  admin::v1::AgentInfo info = agent.info;
  if (agent.stream != nullptr) return info;
  auto it = remote_presence_.find(info.id());
  if (it == remote_presence_.end()) return info;
  // An agent that moved between controllers may briefly have two entries: the newest counts.
  const admin::v1::AgentInfo* newest = nullptr;
  for (const auto& [controller, entry] : it->second) {
    if (entry.connected() && (newest == nullptr || entry.last_seen_unix_millis() > newest->last_seen_unix_millis())) {
      newest = &entry;
    }
  }
  if (newest == nullptr) return info;
  info.set_connected(true);
  info.set_controller(newest->controller());
  info.set_peer(newest->peer());
  info.set_agent_version(newest->agent_version());
  info.set_desired_version(newest->desired_version());
  info.set_applied_version(newest->applied_version());
  info.set_last_nack_version(newest->last_nack_version());
  info.set_last_nack_error(newest->last_nack_error());
  info.set_last_seen_unix_millis(std::max(info.last_seen_unix_millis(), newest->last_seen_unix_millis()));
  *info.mutable_services() = newest->services();
  return info;
}

bool Fleet::forget_agent_locked(const std::string& agent_id, const std::string& why) {
  auto it = agents_.find(agent_id);
  if (it == agents_.end()) return false;
  if (it->second.stream != nullptr) {
    it->second.stream->close(absl::PermissionDeniedError(str_cat("agent ", agent_id, " was deleted (", why, ")")));
    end_stream_locked(it->second, agent_id);
  }
  agents_.erase(it);
  remote_presence_.erase(agent_id);
  unevaluated_.erase(agent_id);
  unsaved_.erase(agent_id);
  metrics_.agents_enrolled.store(static_cast<int64_t>(agents_.size()));
  return true;
}

absl::StatusOr<bool> Fleet::remove_agent(const std::string& agent_id, const std::string& why) {
  std::lock_guard writing(records_mutex_);
  {
    // A shared store tells every controller of the deletion, this one included: this one
    // closes the stream itself, saying why.
    std::lock_guard lock(mutex_);
    removing_ = agent_id;
  }
  auto removed = store_.remove_agent(agent_id);
  std::lock_guard lock(mutex_);
  removing_.clear();
  if (!removed.ok()) return removed.status();
  if (!forget_agent_locked(agent_id, why)) return *removed;
  spdlog::info("agent {} deleted ({}): its certificates no longer connect", agent_id, why);
  return true;
}

absl::StatusOr<uint64_t> Fleet::connect(const AgentIdentity& identity, const control::v1::Hello& hello,
                                        const std::string& peer, AgentStream* stream) {
  std::lock_guard lock(mutex_);
  auto it = agents_.find(identity.id);
  if (it == agents_.end()) {
    metrics_.refused(Refusal::kRevoked);
    return absl::PermissionDeniedError(str_cat("agent ", identity.id, " is not enrolled (deleted?); enrol it again"));
  }
  Agent& agent = it->second;
  const auto& serials = agent.record.certificate_serials();
  if (std::find(serials.begin(), serials.end(), identity.serial_hex) == serials.end()) {
    metrics_.refused(Refusal::kRevoked);
    return absl::PermissionDeniedError(
        str_cat("this certificate of agent ", identity.id, " was revoked or superseded by a renewal"));
  }
  auto now = std::chrono::steady_clock::now();
  if (agent.stream != nullptr) {
    auto silent = now - agent.last_message;
    if (silent < options_.stream_liveness) {
      metrics_.refused(Refusal::kDuplicateStream);
      return absl::AlreadyExistsError(str_cat("agent ", identity.id, " already has a live stream from ",
                                              agent.info.peer(), "; two agents cannot share one identity"));
    }
    spdlog::info("agent {}: a new stream from {} replaces the one from {}, silent for {} s", identity.id, peer,
                 agent.info.peer(), std::chrono::duration_cast<std::chrono::seconds>(silent).count());
    agent.stream->close(absl::AbortedError("replaced by a newer stream of the same agent"));
  } else {
    metrics_.agents_connected.fetch_add(1);
  }
  agent.stream = stream;
  agent.session = ++next_session_;
  agent.last_message = now;
  agent.certificate_not_after = identity.not_after_unix;
  agent.info.set_connected(true);
  agent.info.set_controller(options_.controller_name);
  agent.info.set_peer(peer);
  agent.info.set_agent_version(hello.agent_version());
  agent.info.set_applied_version(hello.applied_version());
  agent.info.set_desired_version("");
  agent.info.set_last_seen_unix_millis(now_millis());
  agent.held_digest = digest_of(hello.applied_version());
  agent.target_fingerprint.clear();
  agent.in_flight.reset();
  agent.pending.reset();
  agent.presence_changed = true;
  presence_withdrawn_.erase(identity.id);
  spdlog::info("agent {} connected from {} (labels {}, serving {})", identity.id, peer, labels_text(agent.label_key),
               hello.applied_version().empty() ? "nothing yet" : common::text_escaped(hello.applied_version()));
  auto built = built_.find(agent.label_key);
  if (built != built_.end()) {
    offer_locked(agent, built->second);
  } else {
    unevaluated_.insert(identity.id);
    wake_.notify_one();
  }
  return agent.session;
}

void Fleet::disconnect(const std::string& agent_id, uint64_t session) {
  std::lock_guard lock(mutex_);
  Agent* agent = find_session_locked(agent_id, session);
  if (agent == nullptr) return;
  end_stream_locked(*agent, agent_id);
  spdlog::info("agent {} disconnected", agent_id);
}

void Fleet::end_stream_locked(Agent& agent, const std::string& agent_id) {
  agent.stream = nullptr;
  agent.in_flight.reset();
  agent.pending.reset();
  agent.info.set_connected(false);
  agent.info.set_controller("");
  agent.info.set_last_seen_unix_millis(now_millis());
  agent.record.set_last_seen_unix(now_unix());
  agent.presence_changed = false;
  presence_withdrawn_.insert(agent_id);
  unsaved_.insert(agent_id);
  unevaluated_.erase(agent_id);
  metrics_.agents_connected.fetch_sub(1);
}

void Fleet::on_ack(const std::string& agent_id, uint64_t session, const control::v1::Ack& ack) {
  std::lock_guard lock(mutex_);
  Agent* agent = find_session_locked(agent_id, session);
  if (agent == nullptr) return;
  agent->last_message = std::chrono::steady_clock::now();
  agent->info.set_last_seen_unix_millis(now_millis());
  // Only the answer to the snapshot in flight counts; anything else is stale or made up.
  if (agent->in_flight == nullptr || ack.nonce() != agent->in_flight->nonce) return;
  agent->presence_changed = true;
  if (ack.accepted()) {
    agent->info.set_applied_version(agent->in_flight->message->snapshot().version());
    agent->held_digest = agent->in_flight->fingerprint;
    metrics_.acks.fetch_add(1);
    metrics_.observe_push_to_ack(std::chrono::duration<double>(std::chrono::steady_clock::now() - agent->sent_at).count());
  } else {
    metrics_.nacks.fetch_add(1);
    const std::string& version = agent->in_flight->message->snapshot().version();
    agent->info.set_last_nack_version(version);
    std::string reason = ack.error();
    for (const auto& error : ack.resource_errors()) {
      if (reason.find(error.message()) == std::string::npos) {
        reason += str_cat("; ", error.kind(), " ", error.name(), ": ", error.message());
      }
    }
    reason = common::text_escaped(reason.substr(0, 4096));
    agent->info.set_last_nack_error(reason);
    spdlog::warn("agent {} refused snapshot {}: {}; it keeps serving {}", agent_id, version, reason,
                 agent->info.applied_version().empty() ? "nothing" : common::text_escaped(agent->info.applied_version()));
  }
  agent->in_flight.reset();
  if (BuiltPtr next = std::move(agent->pending)) {
    agent->pending.reset();
    if (!holds(agent->held_digest, next->fingerprint)) send_locked(*agent, next);
  }
}

void Fleet::on_status(const std::string& agent_id, uint64_t session, const control::v1::Status& status) {
  std::lock_guard lock(mutex_);
  Agent* agent = find_session_locked(agent_id, session);
  if (agent == nullptr) return;
  agent->last_message = std::chrono::steady_clock::now();
  agent->info.set_last_seen_unix_millis(now_millis());
  *agent->info.mutable_services() = status.services();
}

void Fleet::on_heartbeat(const std::string& agent_id, uint64_t session) {
  std::lock_guard lock(mutex_);
  if (Agent* agent = find_session_locked(agent_id, session)) {
    agent->last_message = std::chrono::steady_clock::now();
    agent->info.set_last_seen_unix_millis(now_millis());
  }
}

std::vector<admin::v1::AgentInfo> Fleet::agents() const {
  std::lock_guard lock(mutex_);
  std::vector<admin::v1::AgentInfo> out;
  out.reserve(agents_.size());
  for (const auto& [id, agent] : agents_) out.push_back(merged_info_locked(agent));
  return out;
}

absl::Status Fleet::check_snapshot_sizes(const std::vector<Resource>& resources) const {
  std::map<std::string, Labels> label_sets;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [id, agent] : agents_) label_sets.try_emplace(agent.label_key, labels_of(agent.record));
  }
  for (const auto& [key, labels] : label_sets) {
    size_t bytes = compute_snapshot(resources, labels).ByteSizeLong() + kSnapshotEnvelopeBytes;
    if (bytes > options_.max_snapshot_bytes) {
      return absl::FailedPreconditionError(
          str_cat("the snapshot of agents with labels ", labels_text(key), " would be ", bytes,
                  " bytes, over the limit of ", options_.max_snapshot_bytes,
                  " (agents take at most 4 MiB); place these services on fewer agents or split them over label sets"));
    }
  }
  return absl::OkStatus();
}

std::vector<AgentLabels> Fleet::agent_labels() const {
  std::lock_guard lock(mutex_);
  std::vector<AgentLabels> out;
  for (const auto& [id, agent] : agents_) out.push_back({id, labels_of(agent.record)});
  return out;
}

Fleet::Agent* Fleet::find_session_locked(const std::string& agent_id, uint64_t session) {
  auto it = agents_.find(agent_id);
  if (it == agents_.end() || it->second.session != session || it->second.stream == nullptr) return nullptr;
  return &it->second;
}

Fleet::BuiltPtr Fleet::build(const StoreSnapshot& resources, const Labels& labels, uint64_t nonce) {
  auto message = std::make_shared<control::v1::ControllerMessage>();
  auto& snapshot = *message->mutable_snapshot();
  auto built = std::make_shared<Built>();
  built->labels = labels;
  *snapshot.mutable_config() = compute_snapshot(resources.resources, labels, &built->inputs);
  built->fingerprint = snapshot_fingerprint(snapshot.config());
  built->nonce = std::to_string(nonce);
  snapshot.set_version(snapshot_version(resources.revision, built->fingerprint));
  snapshot.set_nonce(built->nonce);
  metrics_.snapshots_built.fetch_add(1);
  if (size_t bytes = message->ByteSizeLong(); bytes > options_.max_snapshot_bytes) {
    built->refusal = str_cat("snapshot ", snapshot.version(), " not sent: it is ", bytes, " bytes, over the limit of ",
                             options_.max_snapshot_bytes);
    metrics_.snapshots_oversized.fetch_add(1);
    spdlog::error("labels {}: {}; those agents keep serving what they have", labels_text(label_key(labels)),
                  built->refusal);
  }
  built->message = std::move(message);
  return built;
}

void Fleet::drop_affected_locked(const std::vector<Resource>& changes, bool all_changed) {
  if (all_changed) {
    built_.clear();
    return;
  }
  std::erase_if(built_, [&](const auto& entry) {
    const Built& built = *entry.second;
    return std::any_of(changes.begin(), changes.end(),
                       [&](const Resource& changed) { return built.inputs.affected_by(changed, built.labels); });
  });
}

void Fleet::offer_locked(Agent& agent, const BuiltPtr& built) {
  if (agent.stream == nullptr || built->fingerprint == agent.target_fingerprint) return;
  agent.target_fingerprint = built->fingerprint;
  if (!built->refusal.empty()) {
    agent.pending.reset();  // older than what it should run: not worth sending either
    agent.info.set_last_nack_version(built->message->snapshot().version());
    agent.info.set_last_nack_error(built->refusal);
    agent.presence_changed = true;
    return;
  }
  if (agent.in_flight == nullptr && holds(agent.held_digest, built->fingerprint)) {
    // It serves this already (it says so in its Hello): xDS answers only a different version.
    agent.info.set_desired_version(agent.info.applied_version());
    metrics_.pushes_skipped_on_connect.fetch_add(1);
    return;
  }
  if (agent.in_flight != nullptr) {
    agent.pending = built;  // replaces an older pending snapshot, never queues behind it
    return;
  }
  send_locked(agent, built);
}

void Fleet::send_locked(Agent& agent, const BuiltPtr& built) {
  agent.in_flight = built;
  agent.sent_at = std::chrono::steady_clock::now();
  agent.info.set_desired_version(built->message->snapshot().version());
  metrics_.snapshots_pushed.fetch_add(1);
  agent.stream->send(built->message);
}

void Fleet::evaluate(std::unique_lock<std::mutex>& lock, const std::set<std::string>* only) {
  std::vector<std::string> chosen;
  if (only != nullptr) {
    chosen.assign(only->begin(), only->end());
    for (const auto& id : *only) unevaluated_.erase(id);
  } else {
    for (const auto& [id, agent] : agents_) {
      if (agent.stream != nullptr) chosen.push_back(id);
    }
  }
  std::map<std::string, Labels> wanted;
  for (const auto& id : chosen) {
    auto it = agents_.find(id);
    if (it != agents_.end() && it->second.stream != nullptr && !built_.contains(it->second.label_key)) {
      wanted.emplace(it->second.label_key, labels_of(it->second.record));
    }
  }
  if (!wanted.empty()) {
    // Only this thread replaces resources_, so what is built here is for the current one.
    auto resources = resources_;
    uint64_t nonce = next_nonce_;
    next_nonce_ += wanted.size();
    std::map<std::string, BuiltPtr> fresh;
    lock.unlock();
    for (const auto& [key, labels] : wanted) fresh.emplace(key, build(*resources, labels, ++nonce));
    lock.lock();
    built_.merge(fresh);
  }
  for (const auto& id : chosen) {
    auto it = agents_.find(id);  // it may have gone while the lock was released
    if (it == agents_.end() || it->second.stream == nullptr) continue;
    if (auto built = built_.find(it->second.label_key); built != built_.end()) {
      offer_locked(it->second, built->second);
    } else {
      unevaluated_.insert(id);  // relabelled while building
    }
  }
}

bool Fleet::prunable(const Agent& agent, int64_t now) const {
  // No certificate of it can connect any more, nor renew: nothing can come back to it.
  auto retention = static_cast<int64_t>(options_.retention.count());
  return agent.stream == nullptr && agent.record.certificate_expires_unix() + retention <= now &&
         agent.record.last_seen_unix() + retention <= now;
}

void Fleet::maintain(std::unique_lock<std::mutex>& lock) {
  int64_t now = now_unix();
  auto steady_now = std::chrono::steady_clock::now();
  std::vector<std::string> to_prune;
  for (auto& [id, agent] : agents_) {
    if (agent.stream != nullptr && agent.certificate_not_after != 0 && agent.certificate_not_after <= now) {
      spdlog::warn("agent {}: its certificate expired; closing its stream", id);
      agent.stream->close(absl::UnauthenticatedError("the agent certificate expired; renew or enrol again"));
      end_stream_locked(agent, id);
      continue;
    }
    if (agent.stream != nullptr && agent.in_flight != nullptr && steady_now - agent.sent_at >= options_.ack_timeout) {
      auto waited = std::chrono::duration_cast<std::chrono::seconds>(steady_now - agent.sent_at).count();
      spdlog::warn("agent {}: snapshot {} unanswered after {} s; closing its stream so that it connects again", id,
                   agent.in_flight->message->snapshot().version(), waited);
      agent.stream->close(absl::DeadlineExceededError(
          str_cat("snapshot ", agent.in_flight->message->snapshot().version(), " unanswered after ", waited, " s")));
      metrics_.streams_unanswered.fetch_add(1);
      end_stream_locked(agent, id);
      continue;
    }
    if (prunable(agent, now)) to_prune.push_back(id);
  }
  std::set<std::string> to_save = std::move(unsaved_);
  unsaved_.clear();
  lock.unlock();
  {
    // Through update_record: what is saved is the record as it is now with this
    // controller's last-seen time, not a copy that a renewal or relabel elsewhere replaced.
    for (const auto& id : to_save) {
      auto saved = update_record(id, [](std::optional<AgentRecord>& record) {
        return record ? absl::OkStatus() : absl::NotFoundError("deleted");
      });
      if (!saved.ok() && !absl::IsNotFound(saved.status())) {
        spdlog::warn("agent {}: cannot record when it was last seen: {}", id, common::to_std(saved.status().message()));
      }
    }
    std::lock_guard writing(records_mutex_);
    for (const auto& id : to_prune) {
      {
        std::lock_guard relock(mutex_);
        auto it = agents_.find(id);  // it may have enrolled again meanwhile
        if (it == agents_.end() || !prunable(it->second, now)) continue;
      }
      if (!store_.remove_agent(id).ok()) continue;
      std::lock_guard relock(mutex_);
      if (agents_.erase(id) == 0) continue;
      metrics_.agents_pruned.fetch_add(1);
      metrics_.agents_enrolled.store(static_cast<int64_t>(agents_.size()));
      spdlog::info("agent {} forgotten: gone, and its certificate expired, for longer than the retention", id);
    }
  }
  lock.lock();
  publish_presence(lock);
}

void Fleet::publish_presence(std::unique_lock<std::mutex>& lock) {
  if (!store_.shares_presence()) {
    presence_withdrawn_.clear();
    return;
  }
  auto now = std::chrono::steady_clock::now();
  std::vector<admin::v1::AgentInfo> connected;
  for (auto& [id, agent] : agents_) {
    if (agent.stream == nullptr) continue;
    if (!agent.presence_changed && now - agent.presence_published < options_.presence_refresh) continue;
    connected.push_back(agent.info);
    agent.presence_changed = false;
    agent.presence_published = now;
  }
  std::vector<std::string> withdrawn(presence_withdrawn_.begin(), presence_withdrawn_.end());
  presence_withdrawn_.clear();
  if (connected.empty() && withdrawn.empty()) return;
  lock.unlock();
  absl::Status published = store_.publish_presence(connected, withdrawn);
  lock.lock();
  if (published.ok()) {
    if (presence_failing_) spdlog::info("agent presence is published again");
    presence_failing_ = false;
    return;
  }
  if (!presence_failing_) {
    spdlog::warn("cannot publish agent presence ({}); other controllers list these agents as last seen until it is",
                 common::to_std(published.message()));
  }
  presence_failing_ = true;
  // Tried again on the next pass, as things are then.
  for (const auto& info : connected) {
    auto it = agents_.find(info.id());
    if (it != agents_.end() && it->second.stream != nullptr) it->second.presence_changed = true;
  }
  for (const auto& id : withdrawn) {
    auto it = agents_.find(id);
    if (it == agents_.end() || it->second.stream == nullptr) presence_withdrawn_.insert(id);
  }
}

void Fleet::run() {
  std::unique_lock lock(mutex_);
  auto next_maintenance = std::chrono::steady_clock::now() + options_.maintenance_interval;
  while (!stopping_) {
    wake_.wait_until(lock, next_maintenance, [this] { return store_changed_ || !unevaluated_.empty() || stopping_; });
    if (stopping_) return;
    if (store_changed_) {
      // Let a burst of changes settle so that it goes out as one push.
      wake_.wait_for(lock, options_.coalesce, [this] { return stopping_; });
      if (stopping_) return;
      store_changed_ = false;
      // Taken before the read: a change reported later is in this read or in the next one.
      std::vector<Resource> changes = std::move(changed_resources_);
      changed_resources_.clear();
      bool all_changed = std::exchange(changed_beyond_count_, false);
      lock.unlock();
      auto resources = store_.read_all();
      lock.lock();
      if (!resources.ok()) {
        spdlog::error("cannot read the store to push snapshots: {}", common::to_std(resources.status().message()));
        changed_beyond_count_ = true;  // what changed is lost: rebuild everything after the next read
      } else if (resources->revision != resources_->revision) {
        resources_ = std::make_shared<const StoreSnapshot>(*std::move(resources));
        drop_affected_locked(changes, all_changed);
        metrics_.store_revision.store(resources_->revision);
        metrics_.resources.store(static_cast<int64_t>(resources_->resources.size()));
        evaluate(lock, nullptr);
      }
    }
    if (!unevaluated_.empty()) {
      std::set<std::string> waiting = unevaluated_;
      evaluate(lock, &waiting);
    }
    if (std::chrono::steady_clock::now() >= next_maintenance) {
      maintain(lock);
      next_maintenance = std::chrono::steady_clock::now() + options_.maintenance_interval;
    }
  }
}

}  // namespace strait::controller
