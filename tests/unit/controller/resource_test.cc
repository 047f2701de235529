#include "controller/resource/resource.h"

#include <gtest/gtest.h>

#include "controller/resource/resource_yaml.h"

namespace strait::controller {
namespace {

constexpr const char* kDocuments = R"yaml(
kind: Service
metadata:
  name: entry
  labels: {app: demo}
  placement: {matchLabels: {role: edge}}
spec:
  addr: ":8080"
  handler: {type: http, chain: via-exit, auth: {username: u, password: s3cret}}
  listener: {type: tcp}
---
kind: chains
metadata: {name: via-exit, placement: {zone: eu}}
spec:
  hops:
  - name: hop-0
    nodes: [{name: exit, addr: "10.0.0.2:1080", connector: {type: socks5, metadata: {kcp.key: k3y}}}]
)yaml";

TEST(ResourceYaml, ParsesMultiDocumentFiles) {
  auto parsed = parse_resources(kDocuments, "fleet.yaml");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->resources.size(), 2u);
  const auto& service = parsed->resources[0];
  EXPECT_EQ(service.kind(), "Service");
  EXPECT_EQ(service.service().name(), "entry") << "the spec takes the resource's name";
  EXPECT_EQ(service.service().handler().chain(), "via-exit");
  EXPECT_EQ(service.metadata().placement().match_labels().at("role"), "edge");
  EXPECT_EQ(service.metadata().labels().at("app"), "demo");
  const auto& chain = parsed->resources[1];
  EXPECT_EQ(chain.kind(), "Chain") << "kinds are matched in any case and plural";
  EXPECT_EQ(chain.metadata().placement().match_labels().at("zone"), "eu") << "placement labels without matchLabels";
  EXPECT_EQ(chain.chain().hops(0).nodes(0).addr(), "10.0.0.2:1080");
}

TEST(ResourceYaml, RoundTripsThroughYaml) {
  auto parsed = parse_resources(kDocuments, "fleet.yaml");
  ASSERT_TRUE(parsed.ok());
  for (const auto& resource : parsed->resources) {
    auto again = parse_resources(resource_to_yaml(resource), "printed");
    ASSERT_TRUE(again.ok()) << again.status() << "\n" << resource_to_yaml(resource);
    ASSERT_EQ(again->resources.size(), 1u);
    EXPECT_TRUE(same_content(again->resources[0], resource)) << resource_to_yaml(resource);
  }
}

TEST(ResourceYaml, RefusesWhatCannotBeAResource) {
  auto unknown_kind = parse_resources("kind: Gateway\nmetadata: {name: g}\n", "f.yaml");
  ASSERT_FALSE(unknown_kind.ok());
  EXPECT_NE(unknown_kind.status().message().find("f.yaml:1: kind \"Gateway\" is not one of"), std::string::npos)
      << unknown_kind.status();
  EXPECT_FALSE(parse_resources("kind: Service\nmetadata: {name: \"bad name\"}\n", "f.yaml").ok());
  EXPECT_FALSE(parse_resources("kind: Service\nmetadata: {name: s}\nspec: {handler: [1, 2]}\n", "f.yaml").ok());
  auto warned = parse_resources("kind: Service\nmetadata: {name: s, colour: red}\nspec: {addr: \":80\", adr: x}\n", "f.yaml");
  ASSERT_TRUE(warned.ok());
  EXPECT_EQ(warned->warnings.size(), 2u);
}

TEST(Resource, RedactsSecretsOnly) {
  auto parsed = parse_resources(kDocuments, "fleet.yaml");
  ASSERT_TRUE(parsed.ok());
  Resource service = parsed->resources[0];
  Resource chain = parsed->resources[1];
  redact_secrets(service);
  redact_secrets(chain);
  EXPECT_EQ(service.service().handler().auth().password(), "********");
  EXPECT_EQ(service.service().handler().auth().username(), "u");
  EXPECT_EQ(chain.chain().hops(0).nodes(0).connector().metadata().fields().at("kcp.key").string_value(), "********");
  EXPECT_EQ(resource_to_yaml(service).find("s3cret"), std::string::npos);
}

TEST(Resource, PlacementNeedsEveryLabel) {
  Resource resource;
  (*resource.mutable_metadata()->mutable_placement()->mutable_match_labels())["role"] = "edge";
  (*resource.mutable_metadata()->mutable_placement()->mutable_match_labels())["zone"] = "eu";
  EXPECT_TRUE(placement_matches(resource, {{"role", "edge"}, {"zone", "eu"}, {"extra", "x"}}));
  EXPECT_FALSE(placement_matches(resource, {{"role", "edge"}}));
  EXPECT_FALSE(placement_matches(resource, {{"role", "core"}, {"zone", "eu"}}));
  EXPECT_TRUE(placement_matches(Resource(), {})) << "no placement: every agent";
}

}  // namespace
}  // namespace strait::controller
