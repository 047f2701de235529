#include "controller/resource/snapshot.h"

#include <gtest/gtest.h>

#include "controller/resource/diff.h"
#include "controller/resource/resource_yaml.h"

namespace strait::controller {
namespace {

constexpr const char* kFleet = R"yaml(
kind: Auther
metadata: {name: users}
spec: {auths: [{username: u, password: p}]}
---
kind: Hop
metadata: {name: shared-hop}
spec: {nodes: [{name: n, addr: "10.0.0.9:1080", connector: {type: socks5}}]}
---
kind: Chain
metadata: {name: via-exit}
spec: {hops: [{name: shared-hop}]}
---
kind: Chain
metadata: {name: unused}
spec: {hops: [{name: h, nodes: [{name: n, addr: "10.0.0.8:1"}]}]}
---
kind: Service
metadata: {name: entry, placement: {role: edge}}
spec: {addr: ":8080", handler: {type: http, chain: via-exit, auther: users}}
---
kind: Service
metadata: {name: exit}
spec: {addr: ":1080", handler: {type: socks5}}
)yaml";

std::vector<Resource> fleet() {
  auto parsed = parse_resources(kFleet, "fleet.yaml");
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  // The store lists by kind, then name.
  std::sort(parsed->resources.begin(), parsed->resources.end(), [](const Resource& a, const Resource& b) {
    return std::tie(a.kind(), a.metadata().name()) < std::tie(b.kind(), b.metadata().name());
  });
  return parsed->resources;
}

std::vector<std::string> names(const auto& list) {
  std::vector<std::string> out;
  for (const auto& item : list) out.push_back(item.name());
  return out;
}

TEST(Snapshot, PlacedServicesBringWhatTheyReference) {
  auto edge = compute_snapshot(fleet(), {{"role", "edge"}});
  EXPECT_EQ(names(edge.services()), (std::vector<std::string>{"entry", "exit"}));
  EXPECT_EQ(names(edge.chains()), (std::vector<std::string>{"via-exit"})) << "unreferenced chains stay out";
  EXPECT_EQ(names(edge.hops()), (std::vector<std::string>{"shared-hop"})) << "a hop named by a chain comes along";
  EXPECT_EQ(names(edge.authers()), (std::vector<std::string>{"users"}));
  EXPECT_EQ(edge.authers(0).auths(0).password(), "p") << "agents get the secrets";

  auto core = compute_snapshot(fleet(), {{"role", "core"}});
  EXPECT_EQ(names(core.services()), (std::vector<std::string>{"exit"})) << "no placement: every agent";
  EXPECT_TRUE(core.chains().empty());
  EXPECT_TRUE(core.authers().empty());
}

TEST(Snapshot, FingerprintFollowsContent) {
  auto resources = fleet();
  auto before = snapshot_fingerprint(compute_snapshot(resources, {{"role", "edge"}}));
  EXPECT_EQ(before, snapshot_fingerprint(compute_snapshot(resources, {{"role", "edge"}})));
  resources[0].mutable_auther()->mutable_auths(0)->set_password("changed");
  EXPECT_NE(before, snapshot_fingerprint(compute_snapshot(resources, {{"role", "edge"}})));
}

TEST(Diff, ActionsAndTheAgentsAChangeReaches) {
  auto stored = fleet();
  auto desired = parse_resources(R"yaml(
kind: Hop
metadata: {name: shared-hop}
spec: {nodes: [{name: n, addr: "10.0.0.10:1080", connector: {type: socks5}}]}
---
kind: Service
metadata: {name: exit}
spec: {addr: ":1080", handler: {type: socks5}}
---
kind: Service
metadata: {name: new-one, placement: {role: core}}
spec: {addr: ":9000", handler: {type: http}}
)yaml", "desired.yaml");
  ASSERT_TRUE(desired.ok());
  std::vector<AgentLabels> agents = {{"edge-1", {{"role", "edge"}}}, {"core-1", {{"role", "core"}}}};
  auto diffs = diff_resources(stored, desired->resources, agents);
  ASSERT_EQ(diffs.size(), 3u);
  EXPECT_EQ(diffs[0].action(), "update");
  EXPECT_EQ(std::vector<std::string>(diffs[0].agents().begin(), diffs[0].agents().end()),
            (std::vector<std::string>{"edge-1"})) << "the hop reaches only the agent whose chain uses it";
  EXPECT_EQ(diffs[1].action(), "unchanged");
  EXPECT_TRUE(diffs[1].agents().empty());
  EXPECT_EQ(diffs[2].action(), "create");
  EXPECT_EQ(std::vector<std::string>(diffs[2].agents().begin(), diffs[2].agents().end()),
            (std::vector<std::string>{"core-1"}));
}

}  // namespace
}  // namespace strait::controller
