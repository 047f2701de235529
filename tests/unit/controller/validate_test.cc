#include "controller/resource/validate.h"

#include <gtest/gtest.h>

#include "controller/resource/resource_yaml.h"

namespace strait::controller {
namespace {

std::vector<Resource> parse(const std::string& yaml) {
  auto parsed = parse_resources(yaml, "test.yaml");
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  return parsed.ok() ? parsed->resources : std::vector<Resource>{};
}

constexpr const char* kFleet = R"yaml(
kind: Service
metadata: {name: entry}
spec: {addr: ":8080", handler: {type: http, chain: via-exit, auther: users}}
---
kind: Chain
metadata: {name: via-exit}
spec: {hops: [{name: shared}]}
---
kind: Hop
metadata: {name: shared}
spec: {nodes: [{name: exit, addr: "10.0.0.2:1080", connector: {type: socks5}}]}
---
kind: Auther
metadata: {name: users}
spec: {auths: [{username: u, password: p}]}
)yaml";

TEST(ValidateResource, YamlParsingRefusesAValueThatWouldCrashAnAgent) {
  std::string yaml = "kind: Service\nmetadata: {name: entry}\nspec: {addr: \":8080\", handler: {type: http, "
                     "metadata: {readTimeout: \"" + std::string(400, '9') + "s\"}}}\n";
  auto parsed = parse_resources(yaml, "bad.yaml");
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find("bad.yaml:1: Service/entry: service entry: handler.metadata: metadata "
                                           "readTimeout"),
            std::string::npos)
      << parsed.status().message();
}

TEST(ValidateResource, ChecksReferencesAgainstWhatExists) {
  auto resources = parse(kFleet);
  ASSERT_EQ(resources.size(), 4u);
  auto nothing = [](const std::string&, const std::string&) { return false; };
  auto status = validate_resource(resources[0], nothing, nullptr);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(status.message().find("Service/entry references Auther/users, which does not exist"), std::string::npos)
      << status.message();
  auto everything = [](const std::string&, const std::string&) { return true; };
  EXPECT_TRUE(validate_resource(resources[0], everything, nullptr).ok());
  auto chain_missing_hop = validate_resource(resources[1], nothing, nullptr);
  EXPECT_NE(chain_missing_hop.message().find("references Hop/shared"), std::string::npos) << chain_missing_hop;
  EXPECT_TRUE(validate_resource(resources[2], nothing, nullptr).ok()) << "a hop with nodes references nothing";
}

TEST(ValidateResource, FindsWhatReferencesAResource) {
  auto resources = parse(kFleet);
  EXPECT_EQ(referrers_of(resources[1], resources), std::vector<std::string>{"Service/entry"});
  EXPECT_EQ(referrers_of(resources[2], resources), std::vector<std::string>{"Chain/via-exit"});
  EXPECT_EQ(referrers_of(resources[3], resources), std::vector<std::string>{"Service/entry"});
  EXPECT_TRUE(referrers_of(resources[0], resources).empty());
}

}  // namespace
}  // namespace strait::controller
