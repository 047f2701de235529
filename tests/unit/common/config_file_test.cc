#include "common/config_file.h"

#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

namespace strait::common {
namespace {

constexpr const char* kGostExample = R"(
services:
- name: fwd-8080
  addr: ":8080"
  handler: {type: tcp, chain: up}
  listener: {type: tcp}
  forwarder:
    nodes: [{name: t0, addr: "192.168.1.10:80"}, {name: t1, addr: "192.168.1.11:80"}]
    selector: {strategy: round, maxFails: 1, failTimeout: 30s}
chains:
- name: up
  hops:
  - name: hop-0
    nodes:
    - name: n0
      addr: "server.example:8443"
      connector: {type: http, auth: {username: u, password: p}}
      dialer: {type: tcp, metadata: {header: {X-A: b}, keepalive: true}}
authers: [{name: a0, auths: [{username: u, password: p}]}]
log: {level: info, format: text, output: stderr}
)";

TEST(ConfigFile, LoadsGostYaml) {
  auto loaded = parse_config_text(kGostExample, "gost.yaml");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_TRUE(loaded->warnings.empty());
  const auto& config = loaded->config;
  ASSERT_EQ(config.services_size(), 1);
  EXPECT_EQ(config.services(0).forwarder().selector().max_fails(), 1);
  EXPECT_EQ(config.services(0).forwarder().selector().fail_timeout(), "30s");
  EXPECT_EQ(config.chains(0).hops(0).nodes(0).connector().auth().password(), "p");
  const auto& dialer_meta = config.chains(0).hops(0).nodes(0).dialer().metadata().fields();
  EXPECT_EQ(dialer_meta.at("keepalive").string_value(), "true");
  EXPECT_EQ(dialer_meta.at("header").struct_value().fields().at("X-A").string_value(), "b");
  EXPECT_EQ(config.authers(0).auths(0).username(), "u");
}

TEST(ConfigFile, KeysMatchCaseInsensitivelyAsInGost) {
  auto loaded = parse_config_text("services: [{NAME: s, Addr: ':1', forwarder: {selector: {maxfails: 4, FailTimeout: 1s}}}]", "x");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->config.services(0).name(), "s");
  EXPECT_EQ(loaded->config.services(0).forwarder().selector().max_fails(), 4);
  EXPECT_EQ(loaded->config.services(0).forwarder().selector().fail_timeout(), "1s");
}

TEST(ConfigFile, LoadsJson) {
  auto loaded = parse_config_text(R"({"services": [{"name": "s", "addr": ":1", "handler": {"type": "http"}}]})", "c.json");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->config.services(0).handler().type(), "http");
}

TEST(ConfigFile, UnknownKeysWarnWithLine) {
  auto loaded = parse_config_text("services:\n- name: s\n  colour: blue\n", "c.yaml");
  ASSERT_TRUE(loaded.ok());
  ASSERT_EQ(loaded->warnings.size(), 1u);
  EXPECT_EQ(loaded->warnings[0], "c.yaml:3: services[0].colour: unknown key, ignored");
}

TEST(ConfigFile, ErrorsNameFileLineAndKey) {
  auto syntax = parse_config_text("services:\n  - name: [unclosed\n", "bad.yaml");
  ASSERT_FALSE(syntax.ok());
  EXPECT_NE(syntax.status().message().find("bad.yaml:"), std::string::npos);

  auto wrong_type = parse_config_text("services:\n- name: s\n  forwarder:\n    selector:\n      maxFails: lots\n", "t.yaml");
  ASSERT_FALSE(wrong_type.ok());
  EXPECT_EQ(std::string(wrong_type.status().message()),
            "t.yaml:5: services[0].forwarder.selector.maxFails: expected an integer, got \"lots\"");

  auto not_list = parse_config_text("services: {name: s}\n", "l.yaml");
  ASSERT_FALSE(not_list.ok());
  EXPECT_NE(not_list.status().message().find("services: expected a list"), std::string::npos);
}

TEST(ConfigFile, MissingFileIsAClearError) {
  auto loaded = load_config_argument("/nonexistent/strait.yaml");
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.status().message().find("cannot read config file \"/nonexistent/strait.yaml\""), std::string::npos);
}

TEST(ConfigFile, PrintedYamlAndJsonLoadBackToTheSameConfig) {
  auto loaded = parse_config_text(kGostExample, "gost.yaml");
  ASSERT_TRUE(loaded.ok());
  auto from_yaml = parse_config_text(config_to_yaml(loaded->config), "printed.yaml");
  ASSERT_TRUE(from_yaml.ok()) << from_yaml.status() << "\n" << config_to_yaml(loaded->config);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(from_yaml->config, loaded->config));
  auto from_json = parse_config_text(config_to_json(loaded->config), "printed.json");
  ASSERT_TRUE(from_json.ok());
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(from_json->config, loaded->config));
  EXPECT_NE(config_to_json(loaded->config).find("\"failTimeout\": \"30s\""), std::string::npos);
}

}  // namespace
}  // namespace strait::common
