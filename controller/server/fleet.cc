#include "controller/server/fleet.h"

#include <spdlog/spdlog.h>

#include "common/strings.h"
#include "controller/resource/snapshot.h"

namespace strait::controller {
namespace {

int64_t now_millis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// "<store revision>.<content digest>": the revision says when, the digest what.
std::string snapshot_version(int64_t revision, const std::string& fingerprint) {
  return std::to_string(revision) + "." + fingerprint.substr(0, 8);
}

}  // namespace

Fleet::Fleet(Store& store, ControllerMetrics& metrics, std::chrono::milliseconds coalesce)
    : store_(store), metrics_(metrics), coalesce_(coalesce) {
  watch_id_ = store_.watch([this](const StoreEvent&) {
    std::lock_guard lock(mutex_);
    dirty_ = true;
    wake_.notify_one();
  });
  worker_ = std::thread([this] { run(); });
}

Fleet::~Fleet() {
  store_.unwatch(watch_id_);
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    wake_.notify_one();
  }
  worker_.join();
}

uint64_t Fleet::connect(const control::v1::Hello& hello, const std::string& peer, AgentStream* stream) {
  auto resources = store_.list("");
  int64_t revision = store_.revision();
  std::lock_guard lock(mutex_);
  auto [it, inserted] = agents_.try_emplace(hello.agent_id());
  Agent& agent = it->second;
  if (inserted) metrics_.agents_known.fetch_add(1);
  if (agent.stream != nullptr) {
    spdlog::info("agent {}: a new stream from {} replaces the one from {}", hello.agent_id(), peer, agent.info.peer());
    agent.stream->close("replaced by a newer stream of the same agent");
  } else {
    metrics_.agents_connected.fetch_add(1);
  }
  agent.stream = stream;
  agent.session = ++next_session_;
  agent.labels = Labels(hello.labels().begin(), hello.labels().end());
  agent.info.set_id(hello.agent_id());
  *agent.info.mutable_labels() = hello.labels();
  agent.info.set_connected(true);
  agent.info.set_peer(peer);
  agent.info.set_agent_version(hello.agent_version());
  agent.info.set_applied_version(hello.applied_version());
  agent.info.set_last_seen_unix_millis(now_millis());
  // Whatever the agent serves, this new stream starts with a full snapshot.
  agent.sent_fingerprint.clear();
  std::vector<std::string> labels;
  for (const auto& [key, value] : agent.labels) labels.push_back(key + "=" + value);
  spdlog::info("agent {} connected from {} (labels {}, serving {})", hello.agent_id(), peer,
               labels.empty() ? "none" : common::join(labels, ","),
               hello.applied_version().empty() ? "nothing yet" : hello.applied_version());
  if (resources.ok()) push_locked(agent, *resources, revision);
  return agent.session;
}

void Fleet::disconnect(const std::string& agent_id, uint64_t session) {
  std::lock_guard lock(mutex_);
  Agent* agent = find_session_locked(agent_id, session);
  if (agent == nullptr) return;
  agent->stream = nullptr;
  agent->info.set_connected(false);
  metrics_.agents_connected.fetch_sub(1);
  spdlog::info("agent {} disconnected", agent_id);
}

void Fleet::on_ack(const std::string& agent_id, uint64_t session, const control::v1::Ack& ack) {
  std::lock_guard lock(mutex_);
  Agent* agent = find_session_locked(agent_id, session);
  if (agent == nullptr) return;
  agent->info.set_last_seen_unix_millis(now_millis());
  bool current = ack.nonce() == agent->sent_nonce;
  if (ack.accepted()) {
    agent->info.set_applied_version(ack.version());
    metrics_.acks.fetch_add(1);
    if (current) {
      metrics_.observe_push_to_ack(std::chrono::duration<double>(std::chrono::steady_clock::now() - agent->sent_at).count());
    }
    return;
  }
  metrics_.nacks.fetch_add(1);
  agent->info.set_last_nack_version(ack.version());
  std::string reason = ack.error();
  for (const auto& error : ack.resource_errors()) {
    if (reason.find(error.message()) == std::string::npos) reason += "; " + error.kind() + " " + error.name() + ": " + error.message();
  }
  agent->info.set_last_nack_error(reason);
  spdlog::warn("agent {} refused snapshot {}: {}; it keeps serving {}", agent_id, ack.version(), reason,
               agent->info.applied_version().empty() ? "nothing" : agent->info.applied_version());
}

void Fleet::on_status(const std::string& agent_id, uint64_t session, const control::v1::Status& status) {
  std::lock_guard lock(mutex_);
  Agent* agent = find_session_locked(agent_id, session);
  if (agent == nullptr) return;
  agent->info.set_last_seen_unix_millis(now_millis());
  *agent->info.mutable_services() = status.services();
}

void Fleet::on_heartbeat(const std::string& agent_id, uint64_t session) {
  std::lock_guard lock(mutex_);
  if (Agent* agent = find_session_locked(agent_id, session)) agent->info.set_last_seen_unix_millis(now_millis());
}

std::vector<admin::v1::AgentInfo> Fleet::agents() const {
  std::lock_guard lock(mutex_);
  std::vector<admin::v1::AgentInfo> out;
  for (const auto& [id, agent] : agents_) out.push_back(agent.info);
  return out;
}

std::vector<AgentLabels> Fleet::agent_labels() const {
  std::lock_guard lock(mutex_);
  std::vector<AgentLabels> out;
  for (const auto& [id, agent] : agents_) out.push_back({id, agent.labels});
  return out;
}

Fleet::Agent* Fleet::find_session_locked(const std::string& agent_id, uint64_t session) {
  auto it = agents_.find(agent_id);
  if (it == agents_.end() || it->second.session != session || it->second.stream == nullptr) return nullptr;
  return &it->second;
}

void Fleet::push_locked(Agent& agent, const std::vector<Resource>& resources, int64_t revision) {
  control::v1::ControllerMessage message;
  auto& snapshot = *message.mutable_snapshot();
  *snapshot.mutable_config() = compute_snapshot(resources, agent.labels);
  std::string fingerprint = snapshot_fingerprint(snapshot.config());
  if (fingerprint == agent.sent_fingerprint) return;
  snapshot.set_version(snapshot_version(revision, fingerprint));
  snapshot.set_nonce(std::to_string(++next_nonce_));
  agent.sent_fingerprint = fingerprint;
  agent.sent_nonce = snapshot.nonce();
  agent.sent_at = std::chrono::steady_clock::now();
  agent.info.set_desired_version(snapshot.version());
  metrics_.snapshots_pushed.fetch_add(1);
  agent.stream->send(std::move(message));
}

void Fleet::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return dirty_ || stopping_; });
    if (stopping_) return;
    // Let a burst of changes settle so that it goes out as one push.
    wake_.wait_for(lock, coalesce_, [this] { return stopping_; });
    if (stopping_) return;
    dirty_ = false;
    lock.unlock();
    auto resources = store_.list("");
    int64_t revision = store_.revision();
    lock.lock();
    if (!resources.ok()) {
      spdlog::error("cannot read the store to push snapshots: {}", common::to_std(resources.status().message()));
      continue;
    }
    metrics_.store_revision.store(revision);
    metrics_.resources.store(static_cast<int64_t>(resources->size()));
    for (auto& [id, agent] : agents_) {
      if (agent.stream != nullptr) push_locked(agent, *resources, revision);
    }
  }
}

}  // namespace strait::controller
