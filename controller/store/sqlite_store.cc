#include "controller/store/sqlite_store.h"

#include <sqlite3.h>

#include <map>
#include <mutex>

#include "common/strings.h"

namespace strait::controller {
namespace {

using common::str_cat;

constexpr const char* kSchema = R"sql(
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (key, value) VALUES ('revision', 0);
CREATE TABLE IF NOT EXISTS resources (
  kind TEXT NOT NULL, name TEXT NOT NULL, revision INTEGER NOT NULL, body BLOB NOT NULL,
  PRIMARY KEY (kind, name));
CREATE TABLE IF NOT EXISTS tokens (
  id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, description TEXT NOT NULL,
  created INTEGER NOT NULL, expires INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS agents (id TEXT PRIMARY KEY, body BLOB NOT NULL);
)sql";

// Stores made before tokens could grant labels lack the column ("k=v" lines). Their tokens
// let agents choose any label, so they keep granting any ("*=*"): an upgrade must not strip
// the fleet's placement. The controller names them at start so they can be replaced.
constexpr const char* kAddTokenGrants =
    "BEGIN IMMEDIATE;"
    "ALTER TABLE tokens ADD COLUMN grants TEXT NOT NULL DEFAULT '';"
    "UPDATE tokens SET grants = '*=*\n';"
    "COMMIT;";

std::string grants_text(const std::map<std::string, std::string>& grants) {
  std::string out;
  for (const auto& [key, value] : grants) out += str_cat(key, "=", value, "\n");
  return out;
}

std::map<std::string, std::string> grants_of(std::string_view text) {
  std::map<std::string, std::string> out;
  for (auto line : common::split(text, '\n', true)) {
    auto equals = line.find('=');
    if (equals != std::string_view::npos) out[std::string(line.substr(0, equals))] = std::string(line.substr(equals + 1));
  }
  return out;
}

// A prepared statement, finalized when it goes out of scope.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) { sqlite3_prepare_v2(db, sql, -1, &statement_, nullptr); }
  ~Statement() { sqlite3_finalize(statement_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  bool ok() const { return statement_ != nullptr; }
  Statement& bind(int index, const std::string& text) {
    sqlite3_bind_text(statement_, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Statement& bind_blob(int index, const std::string& bytes) {
    sqlite3_bind_blob(statement_, index, bytes.data(), static_cast<int>(bytes.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Statement& bind(int index, int64_t value) {
    sqlite3_bind_int64(statement_, index, value);
    return *this;
  }
  int step() { return sqlite3_step(statement_); }
  int64_t integer(int column) { return sqlite3_column_int64(statement_, column); }
  std::string text(int column) {
    auto* data = reinterpret_cast<const char*>(sqlite3_column_text(statement_, column));
    return data ? std::string(data, static_cast<size_t>(sqlite3_column_bytes(statement_, column))) : std::string();
  }
  std::string blob(int column) {
    auto* data = static_cast<const char*>(sqlite3_column_blob(statement_, column));
    return data ? std::string(data, static_cast<size_t>(sqlite3_column_bytes(statement_, column))) : std::string();
  }

 private:
  sqlite3_stmt* statement_ = nullptr;
};

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(sqlite3* db) : db_(db) {}
  ~SqliteStore() override { sqlite3_close(db_); }

  absl::Status init() {
    char* message = nullptr;
    if (sqlite3_exec(db_, kSchema, nullptr, nullptr, &message) != SQLITE_OK) {
      std::string why = message ? message : "unknown error";
      sqlite3_free(message);
      return absl::InternalError(str_cat("sqlite store: cannot create the schema: ", why));
    }
    Statement columns(db_, "SELECT 1 FROM pragma_table_info('tokens') WHERE name = 'grants'");
    if (columns.step() != SQLITE_ROW && sqlite3_exec(db_, kAddTokenGrants, nullptr, nullptr, nullptr) != SQLITE_OK) {
      return error("add the grants column to tokens");
    }
    return absl::OkStatus();
  }

  absl::StatusOr<Resource> put(Resource resource, std::optional<int64_t> expected_revision) override {
    std::vector<StoreEvent> events;
    {
      std::lock_guard lock(mutex_);
      const std::string& kind = resource.kind();
      const std::string& name = resource.metadata().name();
      auto current = find_locked(kind, name);
      if (!current.ok()) return current.status();
      if (auto status = check_expected(kind, name, *current, expected_revision); !status.ok()) return status;
      auto transaction = begin();
      if (!transaction.ok()) return transaction;
      int64_t revision = next_revision_locked();
      resource.mutable_metadata()->set_revision(revision);
      Statement upsert(db_, "INSERT INTO resources (kind, name, revision, body) VALUES (?, ?, ?, ?) "
                            "ON CONFLICT (kind, name) DO UPDATE SET revision = excluded.revision, body = excluded.body");
      upsert.bind(1, kind).bind(2, name).bind(3, revision).bind_blob(4, resource.SerializeAsString());
      if (upsert.step() != SQLITE_DONE) return rollback("write resource");
      if (auto status = commit(); !status.ok()) return status;
      revision_ = revision;
      events.push_back({StoreEvent::Type::kPut, resource, revision});
    }
    listeners_.notify(events);
    return resource;
  }

  absl::StatusOr<Resource> get(const std::string& kind, const std::string& name) override {
    std::lock_guard lock(mutex_);
    auto found = find_locked(kind, name);
    if (!found.ok()) return found.status();
    if (!*found) return absl::NotFoundError(str_cat(kind, " \"", name, "\" not found"));
    return **found;
  }

  absl::StatusOr<std::vector<Resource>> list(const std::string& kind) override {
    std::lock_guard lock(mutex_);
    return list_locked(kind);
  }

  absl::StatusOr<StoreSnapshot> read_all() override {
    std::lock_guard lock(mutex_);
    auto resources = list_locked("");
    if (!resources.ok()) return resources.status();
    return StoreSnapshot{*std::move(resources), revision_};
  }

  absl::StatusOr<std::vector<Resource>> list_locked(const std::string& kind) {
    Statement query(db_, kind.empty() ? "SELECT body FROM resources ORDER BY kind, name"
                                      : "SELECT body FROM resources WHERE kind = ? ORDER BY name");
    if (!kind.empty()) query.bind(1, kind);
    std::vector<Resource> out;
    int step;
    while ((step = query.step()) == SQLITE_ROW) {
      Resource resource;
      if (!resource.ParseFromString(query.blob(0))) return absl::DataLossError("sqlite store: unreadable resource");
      out.push_back(std::move(resource));
    }
    if (step != SQLITE_DONE) return error("list resources");
    return out;
  }

  absl::StatusOr<Resource> remove(const std::string& kind, const std::string& name,
                                  std::optional<int64_t> expected_revision) override {
    std::vector<StoreEvent> events;
    Resource removed;
    {
      std::lock_guard lock(mutex_);
      auto current = find_locked(kind, name);
      if (!current.ok()) return current.status();
      if (!*current) return absl::NotFoundError(str_cat(kind, " \"", name, "\" not found"));
      if (auto status = check_expected(kind, name, *current, expected_revision); !status.ok()) return status;
      auto transaction = begin();
      if (!transaction.ok()) return transaction;
      int64_t revision = next_revision_locked();
      Statement erase(db_, "DELETE FROM resources WHERE kind = ? AND name = ?");
      erase.bind(1, kind).bind(2, name);
      if (erase.step() != SQLITE_DONE) return rollback("delete resource");
      if (auto status = commit(); !status.ok()) return status;
      revision_ = revision;
      removed = **current;
      events.push_back({StoreEvent::Type::kDelete, removed, revision});
    }
    listeners_.notify(events);
    return removed;
  }

  int64_t revision() override {
    std::lock_guard lock(mutex_);
    return revision_;
  }

  int watch(std::function<void(const StoreEvent&)> listener) override { return listeners_.add(std::move(listener)); }
  void unwatch(int id) override { listeners_.remove(id); }

  absl::Status put_token(const JoinToken& token) override {
    std::lock_guard lock(mutex_);
    Statement insert(db_, "INSERT INTO tokens (id, hash, description, created, expires, grants) VALUES (?, ?, ?, ?, ?, ?)");
    insert.bind(1, token.id).bind(2, token.secret_hash).bind(3, token.description).bind(4, token.created_unix)
        .bind(5, token.expires_unix).bind(6, grants_text(token.grants));
    if (insert.step() != SQLITE_DONE) return error("store token");
    return absl::OkStatus();
  }

  absl::StatusOr<std::optional<JoinToken>> find_token(const std::string& secret_hash, int64_t now_unix) override {
    std::lock_guard lock(mutex_);
    Statement query(db_, "SELECT id, hash, description, created, expires, grants FROM tokens WHERE hash = ?");
    query.bind(1, secret_hash);
    int step = query.step();
    if (step == SQLITE_DONE) return std::optional<JoinToken>();
    if (step != SQLITE_ROW) return error("look up token");
    JoinToken token = token_of(query);
    if (token.expires_unix != 0 && token.expires_unix <= now_unix) return std::optional<JoinToken>();
    return std::optional<JoinToken>(std::move(token));
  }

  absl::StatusOr<std::vector<JoinToken>> list_tokens() override {
    std::lock_guard lock(mutex_);
    Statement query(db_, "SELECT id, hash, description, created, expires, grants FROM tokens ORDER BY created, id");
    std::vector<JoinToken> out;
    int step;
    while ((step = query.step()) == SQLITE_ROW) out.push_back(token_of(query));
    if (step != SQLITE_DONE) return error("list tokens");
    return out;
  }

  absl::StatusOr<bool> remove_token(const std::string& id) override {
    std::lock_guard lock(mutex_);
    Statement erase(db_, "DELETE FROM tokens WHERE id = ?");
    erase.bind(1, id);
    if (erase.step() != SQLITE_DONE) return error("delete token");
    return sqlite3_changes(db_) > 0;
  }

  // One controller writes this file: its records need no revisions.
  absl::StatusOr<int64_t> put_agent(const AgentRecord& agent) override {
    std::lock_guard lock(mutex_);
    Statement upsert(db_, "INSERT INTO agents (id, body) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET body = excluded.body");
    upsert.bind(1, agent.id()).bind_blob(2, agent.SerializeAsString());
    if (upsert.step() != SQLITE_DONE) return error("write agent");
    return 0;
  }

  absl::StatusOr<std::optional<AgentRecord>> read_agent(const std::string& id) override {
    std::lock_guard lock(mutex_);
    Statement query(db_, "SELECT body FROM agents WHERE id = ?");
    query.bind(1, id);
    int step = query.step();
    if (step == SQLITE_DONE) return std::nullopt;
    if (step != SQLITE_ROW) return error("read agent");
    AgentRecord agent;
    if (!agent.ParseFromString(query.blob(0))) return absl::DataLossError("sqlite store: unreadable agent record");
    return agent;
  }

  absl::StatusOr<std::vector<AgentRecord>> list_agents() override {
    std::lock_guard lock(mutex_);
    Statement query(db_, "SELECT body FROM agents ORDER BY id");
    std::vector<AgentRecord> out;
    int step;
    while ((step = query.step()) == SQLITE_ROW) {
      AgentRecord agent;
      if (!agent.ParseFromString(query.blob(0))) return absl::DataLossError("sqlite store: unreadable agent record");
      out.push_back(std::move(agent));
    }
    if (step != SQLITE_DONE) return error("list agents");
    return out;
  }

  absl::StatusOr<bool> remove_agent(const std::string& id) override {
    std::lock_guard lock(mutex_);
    Statement erase(db_, "DELETE FROM agents WHERE id = ?");
    erase.bind(1, id);
    if (erase.step() != SQLITE_DONE) return error("delete agent");
    return sqlite3_changes(db_) > 0;
  }

  absl::Status load_revision() {
    std::lock_guard lock(mutex_);
    Statement query(db_, "SELECT value FROM meta WHERE key = 'revision'");
    if (query.step() != SQLITE_ROW) return error("read revision");
    revision_ = query.integer(0);
    return absl::OkStatus();
  }

 private:
  static JoinToken token_of(Statement& row) {
    return JoinToken{row.text(0), row.text(1), row.text(2), row.integer(3), row.integer(4), grants_of(row.text(5))};
  }

  absl::StatusOr<std::optional<Resource>> find_locked(const std::string& kind, const std::string& name) {
    Statement query(db_, "SELECT body FROM resources WHERE kind = ? AND name = ?");
    query.bind(1, kind).bind(2, name);
    int step = query.step();
    if (step == SQLITE_DONE) return std::optional<Resource>();
    if (step != SQLITE_ROW) return error("read resource");
    Resource resource;
    if (!resource.ParseFromString(query.blob(0))) return absl::DataLossError("sqlite store: unreadable resource");
    return std::optional<Resource>(std::move(resource));
  }

  static absl::Status check_expected(const std::string& kind, const std::string& name,
                                     const std::optional<Resource>& current, std::optional<int64_t> expected) {
    return check_expected_revision(kind, name, current ? current->metadata().revision() : 0, expected);
  }

  absl::Status begin() {
    if (sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) return error("begin");
    return absl::OkStatus();
  }

  absl::Status commit() {
    if (sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) return rollback("commit");
    return absl::OkStatus();
  }

  absl::Status rollback(std::string_view what) {
    absl::Status status = error(what);
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    return status;
  }

  int64_t next_revision_locked() {
    Statement bump(db_, "UPDATE meta SET value = value + 1 WHERE key = 'revision' RETURNING value");
    if (bump.step() != SQLITE_ROW) return revision_ + 1;
    return bump.integer(0);
  }

  absl::Status error(std::string_view what) const {
    return absl::InternalError(str_cat("sqlite store: ", what, ": ", sqlite3_errmsg(db_)));
  }

  sqlite3* db_;
  std::mutex mutex_;  // one connection: every statement runs under it
  int64_t revision_ = 0;
  StoreListeners listeners_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> open_sqlite_store(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr) !=
      SQLITE_OK) {
    std::string why = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return absl::UnavailableError(str_cat("cannot open the store ", path, ": ", why));
  }
  sqlite3_busy_timeout(db, 5000);
  auto store = std::make_unique<SqliteStore>(db);
  if (auto status = store->init(); !status.ok()) return status;
  if (auto status = store->load_revision(); !status.ok()) return status;
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace strait::controller
