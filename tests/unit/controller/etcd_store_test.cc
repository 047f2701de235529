#include "controller/store/etcd_store.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>

#include "support/etcd_process.h"
#include "support/store_resources.h"

namespace strait::controller {
namespace {

constexpr auto service = test::service_resource;

// Waits, bounded, for what a store's watch brings.
template <typename Check>
bool eventually(Check check, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (check()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return check();
}

class EtcdStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::EtcdProcess::available()) GTEST_SKIP() << "no " << test::EtcdProcess::kBinary << " (apt-get install etcd-server)";
    ASSERT_TRUE(etcd_.start()) << "etcd did not start";
  }

  std::unique_ptr<Store> open(const std::string& prefix = "/strait/") {
    EtcdStoreOptions options;
    options.etcd.endpoints = {etcd_.endpoint()};
    options.etcd.call_timeout = std::chrono::milliseconds(2000);
    options.prefix = prefix;
    auto store = open_etcd_store(options);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }

  test::EtcdProcess etcd_;
};

TEST_F(EtcdStoreTest, EveryChangeTakesALaterRevisionAndReadsSeeItAtOnce) {
  auto store = open();
  ASSERT_TRUE(store);
  auto first = store->put(service("a", ":1"), std::nullopt);
  auto second = store->put(service("b", ":2"), std::nullopt);
  auto replaced = store->put(service("a", ":3"), std::nullopt);
  ASSERT_TRUE(first.ok() && second.ok() && replaced.ok()) << first.status() << second.status() << replaced.status();
  EXPECT_LT(first->metadata().revision(), second->metadata().revision());
  EXPECT_LT(second->metadata().revision(), replaced->metadata().revision());
  EXPECT_EQ(store->revision(), replaced->metadata().revision());
  EXPECT_EQ(store->get("Service", "a")->service().addr(), ":3");
  EXPECT_EQ(store->get("Service", "a")->metadata().revision(), replaced->metadata().revision());
  auto removed = store->remove("Service", "b", std::nullopt);
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(removed->service().addr(), ":2");
  EXPECT_GT(store->revision(), replaced->metadata().revision());
  EXPECT_EQ(store->list("")->size(), 1u);
  EXPECT_TRUE(absl::IsNotFound(store->get("Service", "b").status()));
  EXPECT_TRUE(absl::IsNotFound(store->remove("Service", "b", std::nullopt).status()));
  auto all = store->read_all();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->revision, store->revision());
  ASSERT_EQ(all->resources.size(), 1u);
}

TEST_F(EtcdStoreTest, RevisionConflictsAreRefusedAsTheSqliteStoreRefusesThem) {
  auto store = open();
  ASSERT_TRUE(store);
  auto created = store->put(service("a", ":1"), 0);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_TRUE(absl::IsAlreadyExists(store->put(service("a", ":2"), 0).status()));
  auto updated = store->put(service("a", ":2"), created->metadata().revision());
  ASSERT_TRUE(updated.ok()) << updated.status();
  auto stale = store->put(service("a", ":9"), created->metadata().revision());
  ASSERT_TRUE(absl::IsFailedPrecondition(stale.status())) << stale.status();
  std::string both = "revision " + std::to_string(updated->metadata().revision()) + ", not " +
                     std::to_string(created->metadata().revision());
  EXPECT_NE(stale.status().message().find(both), std::string::npos) << stale.status();
  EXPECT_TRUE(absl::IsFailedPrecondition(store->remove("Service", "a", created->metadata().revision()).status()));
  EXPECT_EQ(store->get("Service", "a")->service().addr(), ":2") << "a refused write changed nothing";
  EXPECT_EQ(store->revision(), updated->metadata().revision());
}

TEST_F(EtcdStoreTest, AChangeThroughOneControllerReachesAnother) {
  auto one = open();
  auto other = open();
  ASSERT_TRUE(one && other);
  std::mutex mutex;
  std::vector<std::pair<StoreEvent::Type, int64_t>> seen;
  other->watch([&](const StoreEvent& event) {
    std::lock_guard lock(mutex);
    seen.emplace_back(event.type, event.revision);
  });
  auto put = one->put(service("a", ":1"), std::nullopt);
  ASSERT_TRUE(put.ok());
  auto removed = one->remove("Service", "a", put->metadata().revision());
  ASSERT_TRUE(removed.ok());
  ASSERT_TRUE(eventually([&] { return other->revision() == one->revision(); }));
  EXPECT_TRUE(absl::IsNotFound(other->get("Service", "a").status()));
  std::lock_guard lock(mutex);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], std::make_pair(StoreEvent::Type::kPut, put->metadata().revision()));
  EXPECT_EQ(seen[1].first, StoreEvent::Type::kDelete);
  EXPECT_EQ(seen[1].second, one->revision());
}

TEST_F(EtcdStoreTest, RacingWritesOfOneRevisionLetExactlyOneWin) {
  auto one = open();
  auto other = open();
  ASSERT_TRUE(one && other);
  auto created = one->put(service("a", ":0"), 0);
  ASSERT_TRUE(created.ok());
  ASSERT_TRUE(eventually([&] { return other->revision() == created->metadata().revision(); }));
  std::atomic<int> won{0}, refused{0};
  std::vector<std::thread> writers;
  for (int i = 0; i < 8; ++i) {
    Store& store = i % 2 == 0 ? *one : *other;
    writers.emplace_back([&, i] {
      auto result = store.put(service("a", ":" + std::to_string(i + 1)), created->metadata().revision());
      (result.ok() ? won : refused)++;
    });
  }
  for (auto& writer : writers) writer.join();
  EXPECT_EQ(won.load(), 1);
  EXPECT_EQ(refused.load(), 7);
}

TEST_F(EtcdStoreTest, TokensAndAgentsLiveUnderTheirPrefixOnly) {
  auto store = open("/fleet-a/");
  auto neighbour = open("/fleet-b/");
  ASSERT_TRUE(store && neighbour);
  int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch()).count();
  ASSERT_TRUE(store->put_token({"t1", "hash-1", "ci", now, now + 3600, {{"role", "edge"}, {"zone", "*"}}}).ok());
  ASSERT_TRUE(store->put_token({"t2", "hash-2", "old", now - 100, now - 10, {}}).ok());
  EXPECT_TRUE(absl::IsAlreadyExists(store->put_token({"t1", "hash-9", "again", now, 0, {}})));
  auto found = store->find_token("hash-1", now);
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->grants, (std::map<std::string, std::string>{{"role", "edge"}, {"zone", "*"}}));
  EXPECT_FALSE(store->find_token("hash-2", now)->has_value()) << "expired";
  auto listed = store->list_tokens();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u) << "expired tokens are listed until their lease runs out";
  EXPECT_EQ((*listed)[0].id, "t2") << "by creation time";
  EXPECT_TRUE(*store->remove_token("t2"));
  EXPECT_FALSE(*store->remove_token("t2"));
  AgentRecord record;
  record.set_id("edge-1");
  (*record.mutable_labels())["role"] = "edge";
  ASSERT_TRUE(store->put_agent(record).ok());
  ASSERT_EQ(store->list_agents()->size(), 1u);
  EXPECT_EQ((*store->list_agents())[0].labels().at("role"), "edge");
  EXPECT_TRUE(neighbour->list_agents()->empty());
  EXPECT_TRUE(neighbour->list_tokens()->empty());
  EXPECT_TRUE(*store->remove_agent("edge-1"));
  EXPECT_TRUE(store->list_agents()->empty());
}

// Two controllers write one agent's record: each write names the revision it replaces, so a
// write based on a record the other has since changed or deleted is refused, never applied.
TEST_F(EtcdStoreTest, AgentRecordsReplaceOnlyTheRevisionTheyWereReadAt) {
  auto store = open();
  auto other = open();
  ASSERT_TRUE(store && other);
  AgentRecord record;
  record.set_id("edge-1");
  (*record.mutable_labels())["role"] = "edge";
  auto created = store->put_agent(record);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_GT(*created, 0);
  EXPECT_EQ(store->list_agents()->at(0).revision(), *created) << "the cache carries the revision";

  auto read = other->read_agent("edge-1");
  ASSERT_TRUE(read.ok() && read->has_value());
  EXPECT_EQ((*read)->revision(), *created);
  AgentRecord renewed = **read;
  renewed.add_certificate_serials("new");
  auto renewed_at = other->put_agent(renewed);
  ASSERT_TRUE(renewed_at.ok()) << renewed_at.status();

  AgentRecord stale = record;
  stale.set_revision(*created);
  stale.set_last_seen_unix(1234);
  auto refused = store->put_agent(stale);
  EXPECT_TRUE(absl::IsAborted(refused.status())) << refused.status();
  EXPECT_NE(refused.status().message().find("changed through another controller"), std::string::npos);
  auto now = store->read_agent("edge-1");
  ASSERT_TRUE(now.ok() && now->has_value());
  EXPECT_EQ((*now)->certificate_serials_size(), 1) << "the renewal stands";
  EXPECT_EQ((*now)->revision(), *renewed_at);

  ASSERT_TRUE(*other->remove_agent("edge-1"));
  stale.set_revision(*renewed_at);
  EXPECT_TRUE(absl::IsAborted(store->put_agent(stale).status())) << "a deleted record is not written back";
  EXPECT_FALSE(store->read_agent("edge-1")->has_value());
  stale.set_revision(0);
  EXPECT_TRUE(store->put_agent(stale).ok()) << "revision 0 writes whatever is there";
}

// Endpoints given by name, the first a member that is down: the store opens, reads and
// writes through the live one (each name is a channel of its own).
TEST_F(EtcdStoreTest, EndpointsByNameFailOverToALiveMember) {
  std::string live = etcd_.endpoint();
  std::string port = live.substr(live.rfind(':') + 1);
  int closed = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(closed, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  socklen_t size = sizeof(address);
  ::getsockname(closed, reinterpret_cast<sockaddr*>(&address), &size);
  std::string down = "http://localhost:" + std::to_string(ntohs(address.sin_port));  // bound, never listening
  EtcdStoreOptions options;
  options.etcd.endpoints = {down, "http://localhost:" + port};
  options.etcd.call_timeout = std::chrono::milliseconds(2000);
  auto store = open_etcd_store(options);
  ::close(closed);
  ASSERT_TRUE(store.ok()) << store.status();
  auto written = (*store)->put(service("a", ":1"), std::nullopt);
  ASSERT_TRUE(written.ok()) << written.status();
  EXPECT_EQ((*store)->get("Service", "a")->service().addr(), ":1");
}

TEST_F(EtcdStoreTest, WithEtcdAwayReadsGoOnWritesAreRefusedAndBothResume) {
  auto store = open();
  auto other = open();
  ASSERT_TRUE(store && other);
  ASSERT_TRUE(store->put(service("a", ":1"), std::nullopt).ok());
  etcd_.stop();
  EXPECT_EQ(store->get("Service", "a")->service().addr(), ":1") << "reads come from the copy";
  auto refused = store->put(service("b", ":2"), std::nullopt);
  ASSERT_TRUE(absl::IsUnavailable(refused.status())) << refused.status();
  EXPECT_NE(refused.status().message().find("takes no changes until etcd answers"), std::string::npos)
      << refused.status();
  ASSERT_TRUE(etcd_.start());
  absl::StatusOr<Resource> written = absl::UnavailableError("not yet");
  ASSERT_TRUE(eventually([&] { return (written = store->put(service("b", ":2"), std::nullopt)).ok(); },
                         std::chrono::seconds(20)))
      << written.status();
  ASSERT_TRUE(eventually([&] { return other->get("Service", "b").ok(); }, std::chrono::seconds(20)))
      << "the other controller's watch resumed";
  EXPECT_EQ(other->revision(), store->revision());
}

TEST_F(EtcdStoreTest, ARestartedControllerReadsTheStoreBack) {
  int64_t revision = 0;
  {
    auto store = open();
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->put(service("a", ":1"), std::nullopt).ok());
    AgentRecord record;
    record.set_id("edge-1");
    ASSERT_TRUE(store->put_agent(record).ok());
    revision = store->revision();
  }
  auto reopened = open();
  ASSERT_TRUE(reopened);
  EXPECT_EQ(reopened->revision(), revision);
  EXPECT_EQ(reopened->get("Service", "a")->metadata().revision(), revision);
  EXPECT_EQ(reopened->list_agents()->size(), 1u);
}

TEST(EtcdStoreOptionsTest, BadOptionsAreRefusedNamingTheFlag) {
  EtcdStoreOptions options;
  options.prefix = "/strait";
  EXPECT_NE(open_etcd_store(options).status().message().find("--etcd-prefix"), std::string::npos);
  options.prefix = "/strait/";
  EXPECT_NE(open_etcd_store(options).status().message().find("--etcd-endpoints"), std::string::npos);
  options.etcd.endpoints = {"127.0.0.1"};
  EXPECT_NE(open_etcd_store(options).status().message().find("not host:port"), std::string::npos);
  options.etcd.endpoints = {"https://127.0.0.1:2379"};
  options.etcd.ca_file = "/nonexistent/ca.pem";
  EXPECT_NE(open_etcd_store(options).status().message().find("--etcd-ca-file"), std::string::npos);
}

TEST(EtcdPrefixEndTest, CoversExactlyTheKeysWithThePrefix) {
  EXPECT_EQ(etcd_prefix_end("/strait/"), "/strait0");
  EXPECT_EQ(etcd_prefix_end(std::string("a\xff", 2)), "b");
  EXPECT_EQ(etcd_prefix_end(std::string("\xff", 1)), std::string(1, '\0'));
}

}  // namespace
}  // namespace strait::controller
