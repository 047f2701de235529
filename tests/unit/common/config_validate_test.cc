#include "common/config_validate.h"

#include <gtest/gtest.h>

#include "common/config_file.h"
#include "common/resource_error.h"

namespace strait::common {
namespace {

config::v1::Config parse(const std::string& yaml) {
  auto loaded = parse_config_text(yaml, "test.yaml");
  EXPECT_TRUE(loaded.ok()) << loaded.status();
  return loaded.ok() ? loaded->config : config::v1::Config();
}

absl::Status validate(const std::string& yaml, std::vector<std::string>* warnings = nullptr) {
  return validate_config(parse(yaml), {}, warnings);
}

constexpr const char* kChained = R"(
services:
- name: entry
  addr: ":8080"
  handler: {type: http, chain: up, auther: users, metadata: {readTimeout: 10s, sniffing: true}}
  listener: {type: tcp, metadata: {keepalive.idle: 30s}}
chains:
- name: up
  hops: [{name: shared}]
hops:
- name: shared
  nodes: [{name: n0, addr: "hop.example:1080", connector: {type: socks5, metadata: {timeout: 5s}}}]
authers: [{name: users, auths: [{username: u, password: p}]}]
)";

TEST(ValidateConfig, AcceptsAGoodConfigAndWarnsAboutKeysNobodyReads) {
  std::vector<std::string> warnings;
  EXPECT_TRUE(validate(kChained, &warnings).ok());
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0], "service entry: metadata key \"sniffing\" is not one Strait reads; ignored");
}

TEST(ValidateConfig, RefusesAHugeTimeoutNamingServiceAndField) {
  std::string yaml = "services:\n- name: entry\n  addr: \":8080\"\n  handler: {type: http, metadata: {readTimeout: \"" +
                     std::string(400, '9') + "s\"}}\n";
  auto status = validate(yaml);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("service entry: handler.metadata: metadata readTimeout"), std::string::npos)
      << status.message();
  auto resource = resource_of(status);
  ASSERT_TRUE(resource);
  EXPECT_EQ(resource->first, "service");
  EXPECT_EQ(resource->second, "entry");
}

TEST(ValidateConfig, RefusesBadAddressesPortsAndNumbers) {
  struct Case {
    const char* yaml;
    const char* message;
  } cases[] = {
      {"services: [{name: s, addr: \"host:99999\", handler: {type: http}}]", "service s: addr:"},
      {"services: [{name: s, addr: \":80\", handler: {type: tcp}, forwarder: {nodes: [{name: t, addr: \"x\"}]}}]",
       "forwarder node t: addr:"},
      {"services: [{name: s, addr: \":80\", handler: {type: http, retries: 1000}}]", "handler.retries"},
      {"services: [{name: s, addr: \":80\", listener: {type: udp, metadata: {ttl: -1s}}}]", "must not be negative"},
      {"services: [{name: s, addr: \":80\", metadata: {idleTimeout: 2562047h}}]", "too large"},
      {"services: [{name: s, addr: \":80\", handler: {type: socks5, metadata: {udpBufferSize: 1e300}}}]",
       "metadata udpBufferSize"},
      {"chains: [{name: c, hops: [{name: h, nodes: [{name: n, addr: \"x:1\", connector: {type: htpp}}]}]}]",
       "chain c: hop h: node n: unknown connector type \"htpp\""},
      {"hops: [{name: h, selector: {failTimeout: 1y}, nodes: [{name: n, addr: \"x:1\"}]}]", "selector.failTimeout"},
  };
  for (const auto& [yaml, message] : cases) {
    auto status = validate(yaml);
    ASSERT_FALSE(status.ok()) << yaml;
    EXPECT_NE(status.message().find(message), std::string::npos) << status.message();
  }
}

TEST(ValidateConfig, ResolvesReferencesInTheConfigOrThroughTheLookup) {
  auto missing = validate("services: [{name: s, addr: \":80\", handler: {type: http, chain: nowhere}}]");
  EXPECT_NE(missing.message().find("handler.chain: no chain named \"nowhere\""), std::string::npos) << missing;
  auto auther = validate("services: [{name: s, addr: \":80\", handler: {type: http, auther: nobody}}]");
  EXPECT_NE(auther.message().find("no auther named \"nobody\""), std::string::npos) << auther;
  auto hop = validate("chains: [{name: c, hops: [{name: ghost}]}]");
  EXPECT_NE(hop.message().find("chain c: hop ghost: has no nodes"), std::string::npos) << hop;

  ValidationOptions options;
  options.references = [](std::string_view kind, std::string_view name) { return kind == "chain" && name == "up"; };
  EXPECT_TRUE(validate_config(parse("services: [{name: s, addr: \":80\", handler: {type: http, chain: up}}]"), options,
                              nullptr)
                  .ok());
}

TEST(ValidateConfig, KnowsOnlyTheTypesItIsGiven) {
  KnownTypes mine{{"http"}, {"tcp"}, {"http"}, {"tcp"}};
  ValidationOptions options;
  options.types = &mine;
  auto status = validate_config(parse("services: [{name: s, addr: \":80\", handler: {type: relay}}]"), options, nullptr);
  EXPECT_NE(status.message().find("unknown handler type \"relay\"; known: http"), std::string::npos) << status;
  EXPECT_TRUE(validate("services: [{name: s, addr: \":80\", handler: {type: relay}, listener: {type: kcp}}]").ok());
}

}  // namespace
}  // namespace strait::common
