#include "controller/store/etcd_store.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "common/log_escape.h"
#include "common/strings.h"

namespace strait::controller {
namespace {

using common::str_cat;
using etcdserverpb::Compare;
using etcdserverpb::KeyValue;
using etcdserverpb::TxnRequest;

int64_t now_unix() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

JoinToken token_of(const admin::v1::StoredJoinToken& stored) {
  return JoinToken{stored.id(), stored.secret_hash(), stored.description(), stored.created_unix(), stored.expires_unix(),
                   {stored.grants().begin(), stored.grants().end()}};
}

admin::v1::StoredJoinToken stored_of(const JoinToken& token) {
  admin::v1::StoredJoinToken stored;
  stored.set_id(token.id);
  stored.set_secret_hash(token.secret_hash);
  stored.set_description(token.description);
  stored.set_created_unix(token.created_unix);
  stored.set_expires_unix(token.expires_unix);
  stored.mutable_grants()->insert(token.grants.begin(), token.grants.end());
  return stored;
}

void add_put(TxnRequest& txn, const std::string& key, const std::string& value, int64_t lease = 0) {
  auto* put = txn.add_success()->mutable_request_put();
  put->set_key(key);
  put->set_value(value);
  put->set_lease(lease);
}

void add_compare(TxnRequest& txn, const std::string& key, Compare::CompareTarget target, Compare::CompareResult result,
                 int64_t revision) {
  auto* compare = txn.add_compare();
  compare->set_key(key);
  compare->set_target(target);
  compare->set_result(result);
  if (target == Compare::MOD) {
    compare->set_mod_revision(revision);
  } else {
    compare->set_create_revision(revision);
  }
}

// What the in-memory copy holds: every record under the prefix, parsed once.
struct Contents {
  std::map<std::pair<std::string, std::string>, Resource> resources;  // (kind, name)
  int64_t revision = 0;
  std::map<std::string, JoinToken> tokens;
  std::map<std::string, AgentRecord> agents;
  std::map<std::pair<std::string, std::string>, admin::v1::AgentInfo> presence;  // (agent, controller)
};

// etcd takes at most this many operations in one transaction (its --max-txn-ops default).
constexpr int kMaxTxnOps = 128;

class EtcdStore final : public Store {
 public:
  EtcdStore(std::unique_ptr<EtcdClient> client, EtcdStoreOptions options)
      : client_(std::move(client)), options_(std::move(options)) {}

  ~EtcdStore() override {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
      if (stream_ != nullptr) stream_->cancel();
    }
    changed_.notify_all();
    if (watcher_.joinable()) watcher_.join();
    if (keeper_.joinable()) keeper_.join();
    // The other controllers see at once that this one's agents left, rather than after the TTL.
    if (presence_lease_ != 0) client_->lease_revoke(presence_lease_).IgnoreError();
  }

  absl::Status start() {
    auto deadline = std::chrono::steady_clock::now() + options_.start_timeout;
    absl::Status status;
    while (true) {
      status = resync();
      if (status.ok() || std::chrono::steady_clock::now() >= deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    if (!status.ok()) return absl::UnavailableError(str_cat("cannot read the store: ", status.message()));
    watcher_ = std::thread([this] { watch_loop(); });
    keeper_ = std::thread([this] { keep_presence(); });
    return absl::OkStatus();
  }

  absl::StatusOr<Resource> put(Resource resource, std::optional<int64_t> expected_revision) override {
    const std::string& kind = resource.kind();
    const std::string& name = resource.metadata().name();
    if (kind.empty() || name.empty() || kind.find('/') != std::string::npos) {
      return absl::InvalidArgumentError("etcd store: a resource needs a kind without '/' and a name");
    }
    std::string key = resource_key(kind, name);
    Resource stored = resource;
    stored.mutable_metadata()->set_revision(0);
    TxnRequest txn;
    if (expected_revision) add_compare(txn, key, Compare::MOD, Compare::EQUAL, *expected_revision);
    add_put(txn, key, stored.SerializeAsString());
    add_put(txn, revision_key(), "");
    txn.add_failure()->mutable_request_range()->set_key(key);
    auto response = client_->txn(txn);
    if (!response.ok()) return refused_write(response.status());
    if (!response->succeeded()) {
      const auto& found = response->responses(0).response_range();
      int64_t actual = found.kvs_size() > 0 ? found.kvs(0).mod_revision() : 0;
      return check_expected_revision(kind, name, actual, expected_revision);
    }
    int64_t revision = response->header().revision();
    wait_applied(revision);
    resource.mutable_metadata()->set_revision(revision);
    return resource;
  }

  absl::StatusOr<Resource> get(const std::string& kind, const std::string& name) override {
    std::lock_guard lock(mutex_);
    auto found = contents_.resources.find({kind, name});
    if (found == contents_.resources.end()) return absl::NotFoundError(str_cat(kind, " \"", name, "\" not found"));
    return found->second;
  }

  absl::StatusOr<std::vector<Resource>> list(const std::string& kind) override {
    std::lock_guard lock(mutex_);
    std::vector<Resource> out;
    for (const auto& [key, resource] : contents_.resources) {
      if (kind.empty() || key.first == kind) out.push_back(resource);
    }
    return out;
  }

  absl::StatusOr<Resource> remove(const std::string& kind, const std::string& name,
                                  std::optional<int64_t> expected_revision) override {
    std::string key = resource_key(kind, name);
    TxnRequest txn;
    add_compare(txn, key, Compare::CREATE, Compare::GREATER, 0);
    if (expected_revision) add_compare(txn, key, Compare::MOD, Compare::EQUAL, *expected_revision);
    auto* erase = txn.add_success()->mutable_request_delete_range();
    erase->set_key(key);
    erase->set_prev_kv(true);
    add_put(txn, revision_key(), "");
    txn.add_failure()->mutable_request_range()->set_key(key);
    auto response = client_->txn(txn);
    if (!response.ok()) return refused_write(response.status());
    if (!response->succeeded()) {
      const auto& found = response->responses(0).response_range();
      if (found.kvs_size() == 0) return absl::NotFoundError(str_cat(kind, " \"", name, "\" not found"));
      return check_expected_revision(kind, name, found.kvs(0).mod_revision(), expected_revision);
    }
    const auto& deleted = response->responses(0).response_delete_range();
    Resource removed;
    if (deleted.prev_kvs_size() == 0 || !removed.ParseFromString(deleted.prev_kvs(0).value())) {
      return absl::DataLossError(str_cat("etcd store: ", kind, " \"", name, "\" was removed but was unreadable"));
    }
    removed.mutable_metadata()->set_revision(deleted.prev_kvs(0).mod_revision());
    wait_applied(response->header().revision());
    return removed;
  }

  int64_t revision() override {
    std::lock_guard lock(mutex_);
    return contents_.revision;
  }

  absl::StatusOr<StoreSnapshot> read_all() override {
    std::lock_guard lock(mutex_);
    StoreSnapshot snapshot;
    snapshot.revision = contents_.revision;
    snapshot.resources.reserve(contents_.resources.size());
    for (const auto& [key, resource] : contents_.resources) snapshot.resources.push_back(resource);
    return snapshot;
  }

  int watch(std::function<void(const StoreEvent&)> listener) override { return listeners_.add(std::move(listener)); }
  void unwatch(int id) override { listeners_.remove(id); }

  absl::Status put_token(const JoinToken& token) override {
    std::string key = token_key(token.id);
    int64_t lease = 0;
    if (token.expires_unix != 0) {
      int64_t ttl = std::max<int64_t>(1, token.expires_unix - now_unix()) + options_.expired_token_retention.count();
      auto granted = client_->lease_grant(ttl);
      if (!granted.ok()) return refused_write(granted.status());
      lease = granted->id();
    }
    TxnRequest txn;
    add_compare(txn, key, Compare::CREATE, Compare::EQUAL, 0);
    add_put(txn, key, stored_of(token).SerializeAsString(), lease);
    auto response = client_->txn(txn);
    if (!response.ok()) return refused_write(response.status());
    if (!response->succeeded()) return absl::AlreadyExistsError(str_cat("token ", token.id, " exists already"));
    wait_applied(response->header().revision());
    return absl::OkStatus();
  }

  absl::StatusOr<std::optional<JoinToken>> find_token(const std::string& secret_hash, int64_t now) override {
    std::lock_guard lock(mutex_);
    for (const auto& [id, token] : contents_.tokens) {
      if (token.secret_hash != secret_hash) continue;
      if (token.expires_unix != 0 && token.expires_unix <= now) return std::optional<JoinToken>();
      return std::optional<JoinToken>(token);
    }
    return std::optional<JoinToken>();
  }

  absl::StatusOr<std::vector<JoinToken>> list_tokens() override {
    std::vector<JoinToken> out;
    {
      std::lock_guard lock(mutex_);
      for (const auto& [id, token] : contents_.tokens) out.push_back(token);
    }
    std::sort(out.begin(), out.end(), [](const JoinToken& a, const JoinToken& b) {
      return std::tie(a.created_unix, a.id) < std::tie(b.created_unix, b.id);
    });
    return out;
  }

  absl::StatusOr<bool> remove_token(const std::string& id) override { return remove_key(token_key(id)); }

  absl::StatusOr<int64_t> put_agent(const AgentRecord& agent) override {
    std::string key = agent_key(agent.id());
    AgentRecord stored = agent;
    stored.set_revision(0);
    TxnRequest txn;
    // A deleted key has mod revision 0, so a deletion since is a conflict too.
    if (agent.revision() != 0) add_compare(txn, key, Compare::MOD, Compare::EQUAL, agent.revision());
    add_put(txn, key, stored.SerializeAsString());
    auto response = client_->txn(txn);
    if (!response.ok()) return refused_write(response.status());
    if (!response->succeeded()) {
      return absl::AbortedError(str_cat("agent ", agent.id(), ": its record changed through another controller since revision ",
                                        agent.revision()));
    }
    int64_t revision = response->header().revision();
    wait_applied(revision);
    return revision;
  }

  absl::StatusOr<std::optional<AgentRecord>> read_agent(const std::string& id) override {
    etcdserverpb::RangeRequest range;
    range.set_key(agent_key(id));
    auto response = client_->range(range);
    if (!response.ok()) return absl::UnavailableError(str_cat("cannot read the store: ", response.status().message()));
    if (response->kvs_size() == 0) return std::nullopt;
    AgentRecord agent;
    if (!agent.ParseFromString(response->kvs(0).value())) {
      return absl::DataLossError(str_cat("etcd store: the record of agent ", common::text_escaped(id), " is unreadable"));
    }
    agent.set_revision(response->kvs(0).mod_revision());
    return agent;
  }

  absl::StatusOr<std::vector<AgentRecord>> list_agents() override {
    std::lock_guard lock(mutex_);
    std::vector<AgentRecord> out;
    for (const auto& [id, agent] : contents_.agents) out.push_back(agent);
    return out;
  }

  absl::StatusOr<bool> remove_agent(const std::string& id) override { return remove_key(agent_key(id)); }

  bool shares_presence() const override { return true; }

  absl::Status publish_presence(const std::vector<admin::v1::AgentInfo>& connected,
                                const std::vector<std::string>& disconnected) override {
    std::lock_guard publishing(presence_mutex_);
    for (const auto& info : connected) published_[info.id()] = info;
    for (const auto& id : disconnected) published_.erase(id);
    return write_presence(connected, disconnected);
  }

  absl::StatusOr<std::vector<admin::v1::AgentInfo>> list_presence() override {
    std::lock_guard lock(mutex_);
    std::vector<admin::v1::AgentInfo> out;
    for (const auto& [key, info] : contents_.presence) out.push_back(info);
    return out;
  }

 private:
  std::string resource_key(const std::string& kind, const std::string& name) const {
    return str_cat(options_.prefix, "resources/", kind, "/", name);
  }
  std::string revision_key() const { return str_cat(options_.prefix, "revision"); }
  std::string token_key(const std::string& id) const { return str_cat(options_.prefix, "tokens/", id); }
  std::string agent_key(const std::string& id) const { return str_cat(options_.prefix, "agents/", id); }
  std::string presence_key(const std::string& agent_id) const {
    return str_cat(options_.prefix, "presence/", agent_id, "/", options_.controller_name);
  }

  // Writes this controller's presence entries on its lease (granted on first use), in as
  // many transactions as etcd's operation limit needs. Called under presence_mutex_.
  absl::Status write_presence(const std::vector<admin::v1::AgentInfo>& connected,
                              const std::vector<std::string>& disconnected) {
    if (presence_lease_ == 0 && !connected.empty()) {
      auto granted = client_->lease_grant(options_.presence_ttl.count());
      if (!granted.ok()) return refused_write(granted.status());
      presence_lease_ = granted->id();
    }
    TxnRequest txn;
    auto flush = [&]() -> absl::Status {
      if (txn.success_size() == 0) return absl::OkStatus();
      auto response = client_->txn(txn);
      txn.Clear();
      return response.ok() ? absl::OkStatus() : refused_write(response.status());
    };
    for (const auto& info : connected) {
      add_put(txn, presence_key(info.id()), info.SerializeAsString(), presence_lease_);
      if (txn.success_size() == kMaxTxnOps) {
        if (auto status = flush(); !status.ok()) return status;
      }
    }
    for (const auto& id : disconnected) {
      txn.add_success()->mutable_request_delete_range()->set_key(presence_key(id));
      if (txn.success_size() == kMaxTxnOps) {
        if (auto status = flush(); !status.ok()) return status;
      }
    }
    return flush();
  }

  // Renews the presence lease every third of its TTL. When etcd has let it expire (this
  // controller was cut off for longer), the entries went with it: they are written again.
  void keep_presence() {
    while (true) {
      {
        std::unique_lock lock(mutex_);
        if (changed_.wait_for(lock, options_.presence_ttl / 3, [this] { return stopping_; })) return;
      }
      std::lock_guard publishing(presence_mutex_);
      if (presence_lease_ == 0) continue;
      auto ttl = client_->lease_keep_alive(presence_lease_);
      if (!ttl.ok() || *ttl > 0) continue;  // renewed, or etcd away: tried again on the next tick
      presence_lease_ = 0;
      std::vector<admin::v1::AgentInfo> all;
      for (const auto& [id, info] : published_) all.push_back(info);
      auto written = write_presence(all, {});
      spdlog::warn("etcd store: the presence lease expired while etcd was away; {} agent entries {}", all.size(),
                   written.ok() ? "written again" : str_cat("not written again yet: ", written.message()));
    }
  }

  absl::Status refused_write(const absl::Status& status) const {
    if (absl::IsUnavailable(status)) {
      return absl::UnavailableError(str_cat(status.message(), " (the store takes no changes until etcd answers; "
                                                              "reads and agent streams go on)"));
    }
    return status;
  }

  absl::StatusOr<bool> remove_key(const std::string& key) {
    TxnRequest txn;
    txn.add_success()->mutable_request_delete_range()->set_key(key);
    auto response = client_->txn(txn);
    if (!response.ok()) return refused_write(response.status());
    bool deleted = response->responses(0).response_delete_range().deleted() > 0;
    if (deleted) wait_applied(response->header().revision());
    return deleted;
  }

  // A write returns once the watch has brought it into the copy, so that the next read here
  // sees it. Should the watch lag (etcd reconnecting), the write stands and reads catch up.
  void wait_applied(int64_t revision) {
    std::unique_lock lock(mutex_);
    if (!changed_.wait_for(lock, options_.etcd.call_timeout * 2,
                           [&] { return applied_revision_ >= revision || stopping_; })) {
      spdlog::warn("etcd store: revision {} is written but this controller's watch has not brought it yet", revision);
    }
  }

  // Applies one record change to `contents`; a resource change becomes a StoreEvent.
  void apply(Contents& contents, const std::string& key, const KeyValue* value, const KeyValue* previous,
             int64_t revision, std::vector<StoreEvent>& events) const {
    std::string_view relative(key);
    if (!relative.starts_with(options_.prefix)) return;
    relative.remove_prefix(options_.prefix.size());
    if (relative == "revision") {
      contents.revision = revision;
    } else if (relative.starts_with("resources/")) {
      relative.remove_prefix(10);
      size_t slash = relative.find('/');
      if (slash == std::string_view::npos) return;
      std::pair<std::string, std::string> id{std::string(relative.substr(0, slash)), std::string(relative.substr(slash + 1))};
      if (value != nullptr) {
        Resource resource;
        if (!resource.ParseFromString(value->value())) return unreadable(key);
        resource.mutable_metadata()->set_revision(value->mod_revision());
        events.push_back({StoreEvent::Type::kPut, resource, revision});
        contents.resources[id] = std::move(resource);
      } else if (auto found = contents.resources.find(id); found != contents.resources.end()) {
        Resource removed = found->second;
        if (previous != nullptr) removed.mutable_metadata()->set_revision(previous->mod_revision());
        events.push_back({StoreEvent::Type::kDelete, std::move(removed), revision});
        contents.resources.erase(found);
      }
    } else if (relative.starts_with("tokens/")) {
      std::string id(relative.substr(7));
      admin::v1::StoredJoinToken stored;
      if (value == nullptr) {
        contents.tokens.erase(id);
      } else if (stored.ParseFromString(value->value())) {
        contents.tokens[id] = token_of(stored);
      } else {
        unreadable(key);
      }
    } else if (relative.starts_with("presence/")) {
      relative.remove_prefix(9);
      size_t slash = relative.rfind('/');
      if (slash == std::string_view::npos) return;
      std::pair<std::string, std::string> id{std::string(relative.substr(0, slash)), std::string(relative.substr(slash + 1))};
      if (id.second == options_.controller_name) return;  // this controller's own
      admin::v1::AgentInfo info;
      if (value == nullptr) {
        if (contents.presence.erase(id) == 0) return;
        info.set_id(id.first);
        info.set_controller(id.second);
        events.push_back({StoreEvent::Type::kDelete, {}, revision, std::nullopt, std::move(info)});
      } else if (info.ParseFromString(value->value())) {
        info.set_id(id.first);
        info.set_controller(id.second);
        contents.presence[id] = info;
        events.push_back({StoreEvent::Type::kPut, {}, revision, std::nullopt, std::move(info)});
      } else {
        unreadable(key);
      }
    } else if (relative.starts_with("agents/")) {
      std::string id(relative.substr(7));
      AgentRecord agent;
      if (value == nullptr) {
        if (contents.agents.erase(id) == 0) return;
        agent.set_id(id);
        events.push_back({StoreEvent::Type::kDelete, {}, revision, std::move(agent)});
      } else if (agent.ParseFromString(value->value())) {
        agent.set_revision(revision);
        contents.agents[id] = agent;
        events.push_back({StoreEvent::Type::kPut, {}, revision, std::move(agent)});
      } else {
        unreadable(key);
      }
    }
  }

  static void unreadable(const std::string& key) {
    spdlog::error("etcd store: {} holds what this controller cannot read; skipped", common::text_escaped(key));
  }

  // Reads the whole prefix again: at start, and when the watch cannot resume where it
  // stopped (etcd compacted past it). Listeners hear what changed in between.
  absl::Status resync() {
    etcdserverpb::RangeRequest range;
    range.set_key(options_.prefix);
    range.set_range_end(etcd_prefix_end(options_.prefix));
    auto response = client_->range(range);
    if (!response.ok()) return response.status();
    Contents fresh;
    std::vector<StoreEvent> ignored;
    for (const auto& kv : response->kvs()) apply(fresh, kv.key(), &kv, nullptr, kv.mod_revision(), ignored);
    std::vector<StoreEvent> events;
    {
      std::lock_guard lock(mutex_);
      for (const auto& [id, resource] : fresh.resources) {
        auto old = contents_.resources.find(id);
        if (old == contents_.resources.end() || old->second.metadata().revision() != resource.metadata().revision()) {
          events.push_back({StoreEvent::Type::kPut, resource, resource.metadata().revision()});
        }
      }
      for (const auto& [id, resource] : contents_.resources) {
        if (!fresh.resources.contains(id)) {
          events.push_back({StoreEvent::Type::kDelete, resource, response->header().revision()});
        }
      }
      for (const auto& [id, agent] : fresh.agents) {
        auto old = contents_.agents.find(id);
        if (old == contents_.agents.end() || old->second.SerializeAsString() != agent.SerializeAsString()) {
          events.push_back({StoreEvent::Type::kPut, {}, response->header().revision(), agent});
        }
      }
      for (const auto& [id, agent] : contents_.agents) {
        if (fresh.agents.contains(id)) continue;
        AgentRecord gone;
        gone.set_id(id);
        events.push_back({StoreEvent::Type::kDelete, {}, response->header().revision(), std::move(gone)});
      }
      for (const auto& [id, info] : fresh.presence) {
        auto old = contents_.presence.find(id);
        if (old == contents_.presence.end() || old->second.SerializeAsString() != info.SerializeAsString()) {
          events.push_back({StoreEvent::Type::kPut, {}, response->header().revision(), std::nullopt, info});
        }
      }
      for (const auto& [id, info] : contents_.presence) {
        if (!fresh.presence.contains(id)) {
          events.push_back({StoreEvent::Type::kDelete, {}, response->header().revision(), std::nullopt, info});
        }
      }
      contents_ = std::move(fresh);
      applied_revision_ = response->header().revision();
    }
    changed_.notify_all();
    listeners_.notify(events);
    return absl::OkStatus();
  }

  void watch_loop() {
    std::mt19937 random(std::random_device{}());
    auto backoff = std::chrono::milliseconds(250);
    bool healthy = true;
    while (true) {
      int64_t from;
      {
        std::lock_guard lock(mutex_);
        if (stopping_) return;
        from = applied_revision_ + 1;
      }
      etcdserverpb::WatchCreateRequest request;
      request.set_key(options_.prefix);
      request.set_range_end(etcd_prefix_end(options_.prefix));
      request.set_start_revision(from);
      request.set_prev_kv(true);
      request.set_progress_notify(true);
      auto stream = client_->open_watch();
      {
        std::lock_guard lock(mutex_);
        stream_ = stream.get();
        if (stopping_) stream->cancel();
      }
      bool compacted = false;
      if (stream->start(request)) {
        etcdserverpb::WatchResponse response;
        while (stream->next(response)) {
          if (response.compact_revision() > 0) {
            compacted = true;
            break;
          }
          if (response.canceled()) break;
          if (response.created()) {
            if (!healthy) spdlog::info("etcd store: watching {} again from revision {}", client_->where(), from);
            healthy = true;
            backoff = std::chrono::milliseconds(250);
            continue;
          }
          apply_response(response);
        }
      }
      {
        std::lock_guard lock(mutex_);
        stream_ = nullptr;
      }
      stream->cancel();
      absl::Status ended = stream->finish();
      {
        std::lock_guard lock(mutex_);
        if (stopping_) return;
      }
      if (absl::IsPermissionDenied(ended)) client_->renew_authentication().IgnoreError();
      if (compacted) {
        spdlog::warn("etcd store: etcd compacted past revision {}; reading the store again", from);
        if (resync().ok()) continue;
      }
      if (healthy) {
        spdlog::warn("etcd store: lost the watch ({}); reads come from this controller's copy and writes are "
                     "refused until etcd answers",
                     ended.ok() ? "stream closed" : std::string(ended.message()));
        healthy = false;
      }
      std::uniform_int_distribution<int> jitter(0, static_cast<int>(backoff.count() / 2));
      std::unique_lock lock(mutex_);
      changed_.wait_for(lock, backoff + std::chrono::milliseconds(jitter(random)), [this] { return stopping_; });
      backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
    }
  }

  void apply_response(const etcdserverpb::WatchResponse& response) {
    std::vector<StoreEvent> events;
    {
      std::lock_guard lock(mutex_);
      for (const auto& event : response.events()) {
        bool put = event.type() == etcdserverpb::Event::PUT;
        apply(contents_, event.kv().key(), put ? &event.kv() : nullptr, event.has_prev_kv() ? &event.prev_kv() : nullptr,
              event.kv().mod_revision(), events);
        applied_revision_ = std::max(applied_revision_, event.kv().mod_revision());
      }
      // A progress notification: every change up to its revision has been sent.
      if (response.events_size() == 0) applied_revision_ = std::max(applied_revision_, response.header().revision());
    }
    changed_.notify_all();
    listeners_.notify(events);
  }

  std::unique_ptr<EtcdClient> client_;
  const EtcdStoreOptions options_;
  std::mutex mutex_;
  std::condition_variable changed_;
  Contents contents_;
  int64_t applied_revision_ = 0;
  bool stopping_ = false;
  EtcdClient::WatchStream* stream_ = nullptr;
  std::thread watcher_;
  // Serializes presence writes and lease renewals; taken before mutex_, never after.
  std::mutex presence_mutex_;
  int64_t presence_lease_ = 0;
  std::map<std::string, admin::v1::AgentInfo> published_;  // this controller's entries, by agent
  std::thread keeper_;
  StoreListeners listeners_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> open_etcd_store(const EtcdStoreOptions& options) {
  if (options.prefix.empty() || options.prefix.back() != '/') {
    return absl::InvalidArgumentError("--etcd-prefix: must end with '/'");
  }
  if (options.controller_name.empty() || options.controller_name.find('/') != std::string::npos) {
    return absl::InvalidArgumentError("--replica-name: must be non-empty and hold no '/'");
  }
  auto client = EtcdClient::connect(options.etcd);
  if (!client.ok()) return client.status();
  auto store = std::make_unique<EtcdStore>(*std::move(client), options);
  if (auto status = store->start(); !status.ok()) return status;
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace strait::controller
