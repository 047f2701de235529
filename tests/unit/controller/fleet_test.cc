#include "controller/server/fleet.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "controller/store/sqlite_store.h"
#include "support/fake_agent_stream.h"

namespace strait::controller {
namespace {

using namespace std::chrono_literals;
using test::FakeStream;
using Message = FakeStream::Message;

Resource service(const std::string& name, const std::string& addr, const std::string& role = "") {
  Resource resource;
  resource.set_kind("Service");
  resource.mutable_metadata()->set_name(name);
  if (!role.empty()) (*resource.mutable_metadata()->mutable_placement()->mutable_match_labels())["role"] = role;
  resource.mutable_service()->set_name(name);
  resource.mutable_service()->set_addr(addr);
  return resource;
}

// Creates or replaces a record as enrolment would.
absl::Status save(Fleet& fleet, const AgentRecord& record) {
  return fleet
      .update_record(record.id(),
                     [&](std::optional<AgentRecord>& current) {
                       current = record;
                       return absl::OkStatus();
                     })
      .status();
}

control::v1::Ack ack_of(const Message& message, bool accepted = true) {
  control::v1::Ack ack;
  ack.set_version(message->snapshot().version());
  ack.set_nonce(message->snapshot().nonce());
  ack.set_accepted(accepted);
  if (!accepted) ack.set_error("port in use");
  return ack;
}

std::vector<std::string> service_addrs(const Message& message) {
  std::vector<std::string> out;
  for (const auto& service : message->snapshot().config().services()) out.push_back(service.addr());
  return out;
}

// A record as enrolment leaves it, its certificate "serial-<id>" valid until 2100.
AgentRecord enrolled_record(const std::string& id, const std::string& role = "") {
  AgentRecord record;
  record.set_id(id);
  if (!role.empty()) (*record.mutable_labels())["role"] = role;
  record.add_certificate_serials("serial-" + id);
  record.set_certificate_expires_unix(4102444800);  // 2100
  return record;
}

class FleetTest : public ::testing::Test {
 protected:
  FleetTest() {
    auto opened = open_sqlite_store(":memory:");
    EXPECT_TRUE(opened.ok()) << opened.status();
    store_ = *std::move(opened);
    FleetOptions options;
    options.coalesce = 0ms;
    fleet_ = std::make_unique<Fleet>(*store_, metrics_, options);
    EXPECT_TRUE(fleet_->load().ok());
  }

  AgentIdentity enrol(const std::string& id, const std::string& role) {
    EXPECT_TRUE(save(*fleet_, enrolled_record(id, role)).ok());
    return AgentIdentity{id, "serial-" + id, 4102444800};
  }

  uint64_t connect(const AgentIdentity& identity, FakeStream& stream, const std::string& applied_version = "") {
    control::v1::Hello hello;
    hello.set_applied_version(applied_version);
    auto session = fleet_->connect(identity, hello, "test", &stream);
    EXPECT_TRUE(session.ok()) << session.status();
    return session.ok() ? *session : 0;
  }

  void put(const Resource& resource) { ASSERT_TRUE(store_->put(resource, std::nullopt).ok()); }

  // The fleet's worker may send to a stream until the fleet stops: streams outlive it.
  FakeStream& new_stream() { return streams_.emplace_back(); }

  std::deque<FakeStream> streams_;
  std::unique_ptr<Store> store_;
  ControllerMetrics metrics_;
  std::unique_ptr<Fleet> fleet_;
};

TEST_F(FleetTest, OneSnapshotInFlightAndThePendingOneIsReplacedNotQueued) {
  auto identity = enrol("edge-1", "");
  FakeStream& stream = new_stream();
  uint64_t session = connect(identity, stream);
  Message first = stream.next();
  ASSERT_NE(first, nullptr);
  // Three changes while the first snapshot is unanswered: nothing more is sent.
  put(service("a", ":1"));
  put(service("a", ":2"));
  put(service("a", ":3"));
  EXPECT_TRUE(stream.nothing_within(200ms));
  // Its ACK releases only the newest of them.
  fleet_->on_ack("edge-1", session, ack_of(first));
  Message latest = stream.next();
  ASSERT_NE(latest, nullptr);
  EXPECT_EQ(service_addrs(latest), std::vector<std::string>{":3"});
  EXPECT_TRUE(stream.nothing_within(100ms));
  EXPECT_EQ(metrics_.snapshots_pushed.load(), 2u);
}

TEST_F(FleetTest, ANackAlsoReleasesThePendingSnapshotAndStaleAcksAreIgnored) {
  auto identity = enrol("edge-1", "");
  FakeStream& stream = new_stream();
  uint64_t session = connect(identity, stream);
  Message first = stream.next();
  ASSERT_NE(first, nullptr);
  put(service("a", ":1"));
  EXPECT_TRUE(stream.nothing_within(100ms));
  control::v1::Ack stale = ack_of(first);
  stale.set_nonce("not-the-one-in-flight");
  fleet_->on_ack("edge-1", session, stale);
  EXPECT_TRUE(stream.nothing_within(100ms));
  fleet_->on_ack("edge-1", session, ack_of(first, false));
  Message next = stream.next();
  ASSERT_NE(next, nullptr);
  EXPECT_EQ(service_addrs(next), std::vector<std::string>{":1"});
  EXPECT_EQ(metrics_.nacks.load(), 1u);
}

TEST_F(FleetTest, AnAgentThatAlreadyServesTheSnapshotIsSentNothingOnConnect) {
  put(service("a", ":1"));
  auto identity = enrol("edge-1", "");
  FakeStream& stream = new_stream();
  uint64_t session = connect(identity, stream);
  Message served = stream.next();
  ASSERT_NE(served, nullptr);
  fleet_->on_ack("edge-1", session, ack_of(served));
  fleet_->disconnect("edge-1", session);
  // It comes back (or the controller restarted) holding that version.
  FakeStream& again = new_stream();
  connect(identity, again, served->snapshot().version());
  EXPECT_TRUE(again.nothing_within(200ms));
  EXPECT_EQ(metrics_.pushes_skipped_on_connect.load(), 1u);
  auto agents = fleet_->agents();
  ASSERT_EQ(agents.size(), 1u);
  EXPECT_EQ(agents[0].desired_version(), agents[0].applied_version());
  // A change still reaches it.
  put(service("a", ":2"));
  Message changed = again.next();
  ASSERT_NE(changed, nullptr);
  EXPECT_EQ(service_addrs(changed), std::vector<std::string>{":2"});
}

TEST_F(FleetTest, SnapshotsAreBuiltOncePerLabelSetAndShared) {
  put(service("edge-svc", ":1", "edge"));
  put(service("exit-svc", ":2", "exit"));
  FakeStream& edge_a = new_stream();
  FakeStream& edge_b = new_stream();
  FakeStream& exit = new_stream();
  auto a = enrol("edge-a", "edge");
  auto b = enrol("edge-b", "edge");
  auto x = enrol("exit-1", "exit");
  connect(a, edge_a);
  connect(b, edge_b);
  connect(x, exit);
  Message first_edge = edge_a.next();
  Message second_edge = edge_b.next();
  Message exit_message = exit.next();
  ASSERT_TRUE(first_edge && second_edge && exit_message);
  EXPECT_EQ(first_edge.get(), second_edge.get()) << "one immutable snapshot for both edge agents";
  EXPECT_EQ(service_addrs(first_edge), std::vector<std::string>{":1"});
  EXPECT_EQ(service_addrs(exit_message), std::vector<std::string>{":2"});
  EXPECT_LE(metrics_.snapshots_built.load(), 2u);
}

TEST_F(FleetTest, ASecondLiveStreamIsRefusedAndTheFirstKept) {
  auto identity = enrol("exit-1", "");
  FakeStream& first = new_stream();
  FakeStream& second = new_stream();
  connect(identity, first);
  control::v1::Hello hello;
  auto refused = fleet_->connect(identity, hello, "elsewhere", &second);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_FALSE(first.closed().has_value());
  EXPECT_EQ(metrics_.refusals(Refusal::kDuplicateStream), 1u);
}

TEST_F(FleetTest, RevokedCertificatesAndDeletedAgentsCannotConnect) {
  auto identity = enrol("edge-1", "");
  FakeStream& stream = new_stream();
  connect(identity, stream);
  AgentIdentity superseded = identity;
  superseded.serial_hex = "an-older-serial";
  FakeStream& other = new_stream();
  control::v1::Hello hello;
  EXPECT_EQ(fleet_->connect(superseded, hello, "test", &other).status().code(), absl::StatusCode::kPermissionDenied);
  ASSERT_TRUE(fleet_->remove_agent("edge-1", "test").ok());
  ASSERT_TRUE(stream.closed().has_value());
  EXPECT_EQ(stream.closed()->code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(fleet_->connect(identity, hello, "test", &other).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(fleet_->agents().empty());
}

TEST_F(FleetTest, RelabellingAnAgentSendsItItsNewPlacement) {
  put(service("exit-svc", ":2", "exit"));
  auto identity = enrol("agent-1", "edge");
  FakeStream& stream = new_stream();
  uint64_t session = connect(identity, stream);
  Message first = stream.next();
  ASSERT_NE(first, nullptr);
  EXPECT_TRUE(service_addrs(first).empty());
  fleet_->on_ack("agent-1", session, ack_of(first));
  auto relabelled_record = fleet_->update_record("agent-1", [](std::optional<AgentRecord>& record) {
    (*record->mutable_labels())["role"] = "exit";
    return absl::OkStatus();
  });
  ASSERT_TRUE(relabelled_record.ok());
  Message relabelled = stream.next();
  ASSERT_NE(relabelled, nullptr);
  EXPECT_EQ(service_addrs(relabelled), std::vector<std::string>{":2"});
}

TEST_F(FleetTest, AChangeRebuildsOnlyTheSnapshotsItCanAlter) {
  Resource edge = service("edge-svc", ":1", "edge");
  edge.mutable_service()->mutable_handler()->set_chain("via-exit");
  put(edge);
  put(service("exit-svc", ":2", "exit"));
  FakeStream& edge_stream = new_stream();
  FakeStream& exit_stream = new_stream();
  uint64_t edge_session = connect(enrol("edge-1", "edge"), edge_stream);
  uint64_t exit_session = connect(enrol("exit-1", "exit"), exit_stream);
  Message edge_first = edge_stream.next();
  Message exit_first = exit_stream.next();
  ASSERT_TRUE(edge_first && exit_first);
  fleet_->on_ack("edge-1", edge_session, ack_of(edge_first));
  fleet_->on_ack("exit-1", exit_session, ack_of(exit_first));
  uint64_t built = metrics_.snapshots_built.load();

  put(service("exit-svc", ":3", "exit"));  // placed on exit agents only
  Message exit_second = exit_stream.next();
  ASSERT_NE(exit_second, nullptr);
  EXPECT_EQ(service_addrs(exit_second), std::vector<std::string>{":3"});
  EXPECT_EQ(metrics_.snapshots_built.load(), built + 1) << "the edge label set's snapshot is kept";
  fleet_->on_ack("exit-1", exit_session, ack_of(exit_second));

  // A chain the edge service names (it did not exist yet) concerns the edge agents only.
  Resource chain;
  chain.set_kind("Chain");
  chain.mutable_metadata()->set_name("via-exit");
  chain.mutable_chain()->set_name("via-exit");
  put(chain);
  Message edge_second = edge_stream.next();
  ASSERT_NE(edge_second, nullptr);
  EXPECT_EQ(edge_second->snapshot().config().chains_size(), 1);
  EXPECT_EQ(metrics_.snapshots_built.load(), built + 2);
  EXPECT_TRUE(exit_stream.nothing_within(100ms));

  // A resource nothing places or names changes nobody's snapshot.
  Resource unused = chain;
  unused.mutable_metadata()->set_name("unused");
  unused.mutable_chain()->set_name("unused");
  put(unused);
  EXPECT_TRUE(edge_stream.nothing_within(100ms));
  EXPECT_EQ(metrics_.snapshots_built.load(), built + 2);
}

TEST(FleetLimitsTest, ASnapshotOverTheLimitIsNotSentAndSaysWhy) {
  FakeStream stream;
  auto store = *open_sqlite_store(":memory:");
  ControllerMetrics metrics;
  FleetOptions options;
  options.coalesce = 0ms;
  options.max_snapshot_bytes = 2048;
  Fleet fleet(*store, metrics, options);
  ASSERT_TRUE(fleet.load().ok());
  ASSERT_TRUE(save(fleet, enrolled_record("edge-1")).ok());
  ASSERT_TRUE(store->put(service("small", ":1"), std::nullopt).ok());
  auto session = fleet.connect({"edge-1", "serial-edge-1", 4102444800}, control::v1::Hello(), "test", &stream);
  ASSERT_TRUE(session.ok());
  Message first = stream.next();
  ASSERT_NE(first, nullptr);
  fleet.on_ack("edge-1", *session, ack_of(first));

  Resource big = service("big", ":2");
  (*big.mutable_service()->mutable_metadata()->mutable_fields())["note"].set_string_value(std::string(4096, 'x'));
  EXPECT_EQ(fleet.check_snapshot_sizes({service("small", ":1"), big}).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(fleet.check_snapshot_sizes({service("small", ":1")}).ok());
  // Put past the Admin API's check (as a relabelled agent would meet it): nothing is sent.
  ASSERT_TRUE(store->put(big, std::nullopt).ok());
  EXPECT_TRUE(stream.nothing_within(200ms));
  EXPECT_EQ(metrics.snapshots_oversized.load(), 1u);
  auto agents = fleet.agents();
  ASSERT_EQ(agents.size(), 1u);
  EXPECT_EQ(agents[0].applied_version(), first->snapshot().version()) << "it keeps serving what it has";
  EXPECT_NE(agents[0].last_nack_error().find("over the limit of 2048"), std::string::npos) << agents[0].last_nack_error();
  EXPECT_FALSE(stream.closed().has_value());
}

TEST(FleetLimitsTest, AnAgentThatNeverAnswersIsClosedAfterTheAckTimeout) {
  FakeStream stream;
  FakeStream again;
  auto store = *open_sqlite_store(":memory:");
  ControllerMetrics metrics;
  FleetOptions options;
  options.coalesce = 0ms;
  options.ack_timeout = 100ms;
  options.maintenance_interval = 20ms;
  Fleet fleet(*store, metrics, options);
  ASSERT_TRUE(fleet.load().ok());
  ASSERT_TRUE(save(fleet, enrolled_record("slow-1")).ok());
  ASSERT_TRUE(fleet.connect({"slow-1", "serial-slow-1", 4102444800}, control::v1::Hello(), "test", &stream).ok());
  ASSERT_NE(stream.next(), nullptr);  // and never answered
  auto deadline = std::chrono::steady_clock::now() + FakeStream::kWait;
  while (std::chrono::steady_clock::now() < deadline && !stream.closed()) std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(stream.closed().has_value());
  EXPECT_EQ(stream.closed()->code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(metrics.streams_unanswered.load(), 1u);
  EXPECT_FALSE(fleet.agents()[0].connected());
  // It may come back: its next stream is welcome.
  EXPECT_TRUE(fleet.connect({"slow-1", "serial-slow-1", 4102444800}, control::v1::Hello(), "test", &again).ok());
}

TEST(FleetMaintenanceTest, ExpiredStreamsAreClosedAndLongGoneAgentsForgotten) {
  FakeStream stream;  // outlives the fleet, whose worker may send to it until it stops
  auto store = *open_sqlite_store(":memory:");
  ControllerMetrics metrics;
  FleetOptions options;
  options.retention = 0s;
  options.maintenance_interval = 20ms;
  Fleet fleet(*store, metrics, options);
  ASSERT_TRUE(fleet.load().ok());
  int64_t now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  AgentRecord gone;
  gone.set_id("gone-1");
  gone.add_certificate_serials("old");
  gone.set_certificate_expires_unix(now - 10);
  gone.set_last_seen_unix(now - 10);
  ASSERT_TRUE(save(fleet, gone).ok());
  AgentRecord expiring = gone;
  expiring.set_id("expiring-1");
  expiring.set_certificate_expires_unix(now + 1);
  ASSERT_TRUE(save(fleet, expiring).ok());
  control::v1::Hello hello;
  ASSERT_TRUE(fleet.connect({"expiring-1", "old", now + 1}, hello, "test", &stream).ok());
  ASSERT_NE(stream.next(), nullptr);
  // Within a few seconds its certificate expires: the stream is closed, and both agents,
  // disconnected with expired certificates past a zero retention, are forgotten.
  auto deadline = std::chrono::steady_clock::now() + FakeStream::kWait;
  while (std::chrono::steady_clock::now() < deadline && !(stream.closed() && fleet.agents().empty())) {
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE(stream.closed().has_value());
  EXPECT_EQ(stream.closed()->code(), absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(fleet.agents().empty());
  EXPECT_EQ(metrics.agents_pruned.load(), 2u);
  EXPECT_TRUE(store->list_agents()->empty());
}

}  // namespace
}  // namespace strait::controller
