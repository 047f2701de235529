// Two controllers' fleets over one etcd store: what one enrols, relabels or deletes, the
// other knows, so an agent may connect to either.

#include <gtest/gtest.h>

#include <deque>
#include <thread>

#include "controller/server/fleet.h"
#include "controller/store/etcd_store.h"
#include "support/etcd_process.h"
#include "support/fake_agent_stream.h"

namespace strait::controller {
namespace {

using test::FakeStream;

class SharedFleetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::EtcdProcess::available()) GTEST_SKIP() << "no " << test::EtcdProcess::kBinary << " (apt-get install etcd-server)";
    ASSERT_TRUE(etcd_.start()) << "etcd did not start";
    for (int i = 0; i < 2; ++i) {
      EtcdStoreOptions options;
      options.etcd.endpoints = {etcd_.endpoint()};
      options.controller_name = kNames[i];
      auto store = open_etcd_store(options);
      ASSERT_TRUE(store.ok()) << store.status();
      stores_[i] = *std::move(store);
      FleetOptions fleet_options;
      fleet_options.coalesce = std::chrono::milliseconds(0);
      fleet_options.controller_name = kNames[i];
      fleet_options.maintenance_interval = std::chrono::milliseconds(20);
      fleets_[i] = std::make_unique<Fleet>(*stores_[i], metrics_[i], fleet_options);
      ASSERT_TRUE(fleets_[i]->load().ok());
    }
  }

  void TearDown() override {
    for (auto& fleet : fleets_) fleet.reset();
  }

  AgentIdentity enrol(Fleet& fleet, const std::string& id, const std::string& role) {
    auto saved = fleet.update_record(id, [&](std::optional<AgentRecord>& record) {
      record.emplace();
      record->set_id(id);
      (*record->mutable_labels())["role"] = role;
      record->add_certificate_serials("serial-" + id);
      record->set_certificate_expires_unix(4102444800);  // 2100
      return absl::OkStatus();
    });
    EXPECT_TRUE(saved.ok()) << saved.status();
    return AgentIdentity{id, "serial-" + id, 4102444800};
  }

  // Connects, waiting (bounded) for the other controller's watch to bring the record.
  absl::StatusOr<uint64_t> connect(Fleet& fleet, const AgentIdentity& identity, FakeStream& stream) {
    auto deadline = std::chrono::steady_clock::now() + FakeStream::kWait;
    absl::StatusOr<uint64_t> session = absl::DeadlineExceededError("not tried");
    do {
      session = fleet.connect(identity, control::v1::Hello(), "test", &stream);
      if (session.ok()) return session;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    } while (std::chrono::steady_clock::now() < deadline);
    return session;
  }

  // The agent's info as `fleet` lists it, once `ready` holds (bounded wait).
  template <typename Ready>
  std::optional<admin::v1::AgentInfo> listed_when(Fleet& fleet, const std::string& id, Ready ready) {
    auto deadline = std::chrono::steady_clock::now() + FakeStream::kWait;
    do {
      for (const auto& info : fleet.agents()) {
        if (info.id() == id && ready(info)) return info;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    } while (std::chrono::steady_clock::now() < deadline);
    return std::nullopt;
  }

  static constexpr const char* kNames[2] = {"controller-a", "controller-b"};
  test::EtcdProcess etcd_;
  std::unique_ptr<Store> stores_[2];
  ControllerMetrics metrics_[2];
  std::unique_ptr<Fleet> fleets_[2];
  std::deque<FakeStream> streams_;  // outlive the fleets, which may send until they stop
};

TEST_F(SharedFleetTest, AnAgentEnrolledThroughOneControllerConnectsToTheOther) {
  Resource resource;
  resource.set_kind("Service");
  resource.mutable_metadata()->set_name("exit-svc");
  (*resource.mutable_metadata()->mutable_placement()->mutable_match_labels())["role"] = "exit";
  resource.mutable_service()->set_name("exit-svc");
  resource.mutable_service()->set_addr(":2");
  ASSERT_TRUE(stores_[0]->put(resource, std::nullopt).ok());
  auto identity = enrol(*fleets_[0], "edge-1", "edge");
  FakeStream& stream = streams_.emplace_back();
  auto session = connect(*fleets_[1], identity, stream);
  ASSERT_TRUE(session.ok()) << session.status();
  auto first = stream.next();
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->snapshot().config().services_size(), 0);
  control::v1::Ack ack;
  ack.set_version(first->snapshot().version());
  ack.set_nonce(first->snapshot().nonce());
  ack.set_accepted(true);
  fleets_[1]->on_ack("edge-1", *session, ack);
  // Relabelled through the first controller: the second pushes the new placement.
  ASSERT_TRUE(fleets_[0]->update_record("edge-1", [](std::optional<AgentRecord>& record) {
    (*record->mutable_labels())["role"] = "exit";
    return absl::OkStatus();
  }).ok());
  auto relabelled = stream.next();
  ASSERT_NE(relabelled, nullptr);
  ASSERT_EQ(relabelled->snapshot().config().services_size(), 1);
  EXPECT_EQ(relabelled->snapshot().config().services(0).addr(), ":2");
  auto listed = fleets_[0]->agents();
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].labels().at("role"), "exit");
}

// A renewal through one controller while the other relabels the same agent: the write that
// comes second finds the first in the store and applies its change on top of it.
TEST_F(SharedFleetTest, RecordChangesRacingThroughTwoControllersAreBothKept) {
  enrol(*fleets_[0], "edge-1", "edge");
  auto deadline = std::chrono::steady_clock::now() + FakeStream::kWait;
  while (!fleets_[1]->record("edge-1") && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(fleets_[1]->record("edge-1")) << "the second controller's watch brought the record";
  int calls = 0;
  auto renewed = fleets_[1]->update_record("edge-1", [&](std::optional<AgentRecord>& record) -> absl::Status {
    if (++calls == 1) {
      // The first controller relabels between this one's read and its write.
      auto relabelled = fleets_[0]->update_record("edge-1", [](std::optional<AgentRecord>& theirs) {
        (*theirs->mutable_labels())["zone"] = "eu";
        return absl::OkStatus();
      });
      EXPECT_TRUE(relabelled.ok()) << relabelled.status();
    }
    record->add_certificate_serials("serial-renewed");
    return absl::OkStatus();
  });
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  EXPECT_EQ(calls, 2) << "the change was applied again to the newer record";
  EXPECT_EQ(renewed->labels().at("zone"), "eu");
  auto stored = stores_[0]->read_agent("edge-1");
  ASSERT_TRUE(stored.ok() && stored->has_value()) << stored.status();
  EXPECT_EQ((*stored)->labels().at("zone"), "eu");
  EXPECT_EQ((*stored)->certificate_serials_size(), 2);
}

TEST_F(SharedFleetTest, ADeletionThroughOneControllerClosesTheStreamOnTheOther) {
  auto identity = enrol(*fleets_[0], "edge-1", "edge");
  FakeStream& stream = streams_.emplace_back();
  ASSERT_TRUE(connect(*fleets_[1], identity, stream).ok());
  ASSERT_TRUE(*fleets_[0]->remove_agent("edge-1", "test"));
  auto deadline = std::chrono::steady_clock::now() + FakeStream::kWait;
  while (!stream.closed() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(stream.closed().has_value());
  EXPECT_EQ(stream.closed()->code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(stream.closed()->message().find("deleted through another controller"), std::string::npos);
  EXPECT_TRUE(fleets_[1]->agents().empty());
  FakeStream& again = streams_.emplace_back();
  EXPECT_EQ(fleets_[1]->connect(identity, control::v1::Hello(), "test", &again).status().code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(SharedFleetTest, EachControllerListsTheAgentsConnectedToTheOther) {
  Resource resource;
  resource.set_kind("Service");
  resource.mutable_metadata()->set_name("edge-svc");
  resource.mutable_service()->set_name("edge-svc");
  resource.mutable_service()->set_addr(":1");
  ASSERT_TRUE(stores_[0]->put(resource, std::nullopt).ok());
  auto identity = enrol(*fleets_[0], "edge-1", "edge");
  FakeStream& stream = streams_.emplace_back();
  control::v1::Hello hello;
  hello.set_agent_version("9.9.9");
  auto session = fleets_[0]->connect(identity, hello, "198.51.100.7:4000", &stream);
  ASSERT_TRUE(session.ok()) << session.status();
  auto snapshot = stream.next();
  ASSERT_NE(snapshot, nullptr);
  control::v1::Ack ack;
  ack.set_version(snapshot->snapshot().version());
  ack.set_nonce(snapshot->snapshot().nonce());
  ack.set_accepted(true);
  fleets_[0]->on_ack("edge-1", *session, ack);

  auto elsewhere = listed_when(*fleets_[1], "edge-1", [&](const admin::v1::AgentInfo& info) {
    return info.connected() && info.applied_version() == snapshot->snapshot().version();
  });
  ASSERT_TRUE(elsewhere.has_value()) << "the other controller never listed the agent as connected and in sync";
  EXPECT_EQ(elsewhere->controller(), "controller-a");
  EXPECT_EQ(elsewhere->peer(), "198.51.100.7:4000");
  EXPECT_EQ(elsewhere->agent_version(), "9.9.9");
  EXPECT_EQ(elsewhere->labels().at("role"), "edge");

  fleets_[0]->disconnect("edge-1", *session);
  EXPECT_TRUE(listed_when(*fleets_[1], "edge-1", [](const auto& info) { return !info.connected(); }).has_value());
}

TEST_F(SharedFleetTest, AControllerThatStopsTakesItsAgentsPresenceWithIt) {
  auto identity = enrol(*fleets_[0], "edge-1", "edge");
  FakeStream& stream = streams_.emplace_back();
  ASSERT_TRUE(connect(*fleets_[0], identity, stream).ok());
  ASSERT_TRUE(listed_when(*fleets_[1], "edge-1", [](const auto& info) { return info.connected(); }).has_value());
  // Stopped without a word to its agents (as a killed one would be): its lease goes.
  fleets_[0].reset();
  stores_[0].reset();
  EXPECT_TRUE(listed_when(*fleets_[1], "edge-1", [](const auto& info) { return !info.connected(); }).has_value());
}

}  // namespace
}  // namespace strait::controller
