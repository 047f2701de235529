#include "controller/store/sqlite_store.h"

#include <gtest/gtest.h>

#include <sqlite3.h>

#include <filesystem>

#include "support/store_resources.h"

namespace strait::controller {
namespace {

constexpr auto service = test::service_resource;

class SqliteStoreTest : public ::testing::Test {
 protected:
  SqliteStoreTest() : dir_(std::filesystem::temp_directory_path() / ("strait-store-" + std::to_string(::getpid()))) {
    std::filesystem::create_directories(dir_);
  }
  ~SqliteStoreTest() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<Store> open() {
    auto store = open_sqlite_store((dir_ / "strait.db").string());
    EXPECT_TRUE(store.ok()) << store.status();
    return *std::move(store);
  }

  std::filesystem::path dir_;
};

TEST_F(SqliteStoreTest, EveryChangeTakesTheNextRevision) {
  auto store = open();
  auto first = store->put(service("a", ":1"), std::nullopt);
  auto second = store->put(service("b", ":2"), std::nullopt);
  auto replaced = store->put(service("a", ":3"), std::nullopt);
  ASSERT_TRUE(first.ok() && second.ok() && replaced.ok());
  EXPECT_EQ(first->metadata().revision(), 1);
  EXPECT_EQ(second->metadata().revision(), 2);
  EXPECT_EQ(replaced->metadata().revision(), 3);
  EXPECT_EQ(store->get("Service", "a")->service().addr(), ":3");
  auto removed = store->remove("Service", "b", std::nullopt);
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(store->revision(), 4);
  EXPECT_EQ(store->list("")->size(), 1u);
  EXPECT_TRUE(absl::IsNotFound(store->get("Service", "b").status()));
}

TEST_F(SqliteStoreTest, RevisionConflictsAreRefused) {
  auto store = open();
  auto created = store->put(service("a", ":1"), 0);
  ASSERT_TRUE(created.ok());
  // Create-only finds it there; a stale revision is refused and names both revisions.
  EXPECT_TRUE(absl::IsAlreadyExists(store->put(service("a", ":2"), 0).status()));
  auto updated = store->put(service("a", ":2"), created->metadata().revision());
  ASSERT_TRUE(updated.ok());
  auto stale = store->put(service("a", ":9"), created->metadata().revision());
  ASSERT_TRUE(absl::IsFailedPrecondition(stale.status()));
  EXPECT_NE(stale.status().message().find("revision 2, not 1"), std::string::npos) << stale.status();
  EXPECT_TRUE(absl::IsFailedPrecondition(store->remove("Service", "a", 1).status()));
  EXPECT_EQ(store->get("Service", "a")->service().addr(), ":2") << "a refused write changed nothing";
  EXPECT_EQ(store->revision(), 2);
}

TEST_F(SqliteStoreTest, SurvivesReopeningAndNotifiesWatchers) {
  std::vector<int64_t> seen;
  {
    auto store = open();
    int id = store->watch([&](const StoreEvent& event) { seen.push_back(event.revision); });
    ASSERT_TRUE(store->put(service("a", ":1"), std::nullopt).ok());
    ASSERT_TRUE(store->remove("Service", "a", std::nullopt).ok());
    store->unwatch(id);
    ASSERT_TRUE(store->put(service("b", ":2"), std::nullopt).ok());
  }
  EXPECT_EQ(seen, (std::vector<int64_t>{1, 2}));
  auto reopened = open();
  EXPECT_EQ(reopened->revision(), 3);
  EXPECT_EQ(reopened->get("Service", "b")->metadata().revision(), 3);
  EXPECT_EQ(reopened->put(service("c", ":3"), std::nullopt)->metadata().revision(), 4);
}

TEST_F(SqliteStoreTest, TokensMatchByHashUntilTheyExpire) {
  auto store = open();
  ASSERT_TRUE(store->put_token({"t1", "hash-1", "ci", 100, 200, {{"role", "edge"}, {"zone", "*"}}}).ok());
  ASSERT_TRUE(store->put_token({"t2", "hash-2", "forever", 100, 0, {}}).ok());
  EXPECT_TRUE(store->find_token("hash-1", 150)->has_value());
  EXPECT_FALSE(store->find_token("hash-1", 200)->has_value()) << "expired";
  EXPECT_TRUE(store->find_token("hash-2", 1'000'000)->has_value());
  EXPECT_FALSE(store->find_token("other", 150)->has_value());
  auto grants = (*store->find_token("hash-1", 150))->grants;
  EXPECT_EQ(grants, (std::map<std::string, std::string>{{"role", "edge"}, {"zone", "*"}}));
  auto listed = store->list_tokens();
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->size(), 2u) << "expired tokens are listed too";
  EXPECT_TRUE(*store->remove_token("t1"));
  EXPECT_FALSE(*store->remove_token("t1"));
  EXPECT_EQ(store->list_tokens()->size(), 1u);
}

TEST_F(SqliteStoreTest, AgentRecordsSurviveAReopen) {
  {
    auto store = open();
    AgentRecord record;
    record.set_id("edge-1");
    (*record.mutable_labels())["role"] = "edge";
    record.add_certificate_serials("abc");
    ASSERT_TRUE(store->put_agent(record).ok());
    record.set_id("edge-2");
    ASSERT_TRUE(store->put_agent(record).ok());
    EXPECT_TRUE(*store->remove_agent("edge-2"));
  }
  auto reopened = open();
  auto agents = reopened->list_agents();
  ASSERT_TRUE(agents.ok());
  ASSERT_EQ(agents->size(), 1u);
  EXPECT_EQ((*agents)[0].labels().at("role"), "edge");
  EXPECT_EQ((*agents)[0].certificate_serials(0), "abc");
  auto read = reopened->read_agent("edge-1");
  ASSERT_TRUE(read.ok() && read->has_value()) << read.status();
  EXPECT_EQ((*read)->certificate_serials(0), "abc");
  EXPECT_FALSE(reopened->read_agent("edge-2")->has_value());
}

TEST_F(SqliteStoreTest, ReadAllReturnsTheResourcesWithTheirRevision) {
  auto store = open();
  ASSERT_TRUE(store->put(service("a", ":1"), std::nullopt).ok());
  ASSERT_TRUE(store->put(service("b", ":2"), std::nullopt).ok());
  auto all = store->read_all();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->revision, 2);
  EXPECT_EQ(all->resources.size(), 2u);
}

TEST_F(SqliteStoreTest, TokensFromBeforeGrantsKeepGrantingAnyLabel) {
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir_ / "strait.db").c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db,
                           "CREATE TABLE tokens (id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, description TEXT NOT "
                           "NULL, created INTEGER NOT NULL, expires INTEGER NOT NULL);"
                           "INSERT INTO tokens VALUES ('old', 'hash-old', 'bootstrap', 100, 0);",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  auto store = open();
  auto old = store->find_token("hash-old", 150);
  ASSERT_TRUE(old.ok() && old->has_value());
  EXPECT_EQ((*old)->grants, (std::map<std::string, std::string>{{"*", "*"}}));
  ASSERT_TRUE(store->put_token({"new", "hash-new", "ci", 100, 0, {}}).ok());
  EXPECT_TRUE((*store->find_token("hash-new", 150))->grants.empty());
}

}  // namespace
}  // namespace strait::controller
