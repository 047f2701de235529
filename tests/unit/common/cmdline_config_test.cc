#include "common/cmdline_config.h"

#include <gtest/gtest.h>

namespace strait::common {
namespace {

KnownTypes known() {
  return {{"http", "tcp", "udp", "forward", "auto", "socks5", "relay"},
          {"tcp", "udp", "tls", "wss"},
          {"http", "forward", "socks5", "relay"},
          {"tcp", "udp", "tls", "wss"}};
}

TEST(CmdlineConfig, SeedExampleMakesForwardThroughOneHopChain) {
  auto config = build_config_from_cmdline({"tcp://:8080/192.168.1.1:80"}, {"http://192.168.1.2:8080"}, known());
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->services_size(), 1);
  const auto& service = config->services(0);
  EXPECT_EQ(service.name(), "service-0");
  EXPECT_EQ(service.addr(), ":8080");
  EXPECT_EQ(service.handler().type(), "tcp");
  EXPECT_EQ(service.listener().type(), "tcp");
  EXPECT_EQ(service.handler().chain(), "chain-0");
  ASSERT_EQ(service.forwarder().nodes_size(), 1);
  EXPECT_EQ(service.forwarder().nodes(0).name(), "target-0");
  EXPECT_EQ(service.forwarder().nodes(0).addr(), "192.168.1.1:80");
  ASSERT_EQ(config->chains_size(), 1);
  const auto& hop = config->chains(0).hops(0);
  EXPECT_EQ(hop.name(), "hop-0");
  EXPECT_EQ(hop.nodes(0).name(), "node-0");
  EXPECT_EQ(hop.nodes(0).addr(), "192.168.1.2:8080");
  EXPECT_EQ(hop.nodes(0).connector().type(), "http");
  EXPECT_EQ(hop.nodes(0).dialer().type(), "tcp");
}

TEST(CmdlineConfig, OneWordSchemesExpandAsGostDoes) {
  auto config = build_config_from_cmdline({"http://u:p@:8080", "wss://:443", ":1080", "tls://:8443/:8080"}, {}, known());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->services(0).handler().type(), "http");
  EXPECT_EQ(config->services(0).listener().type(), "tcp");
  EXPECT_EQ(config->services(0).handler().auth().username(), "u");
  EXPECT_EQ(config->services(0).handler().auth().password(), "p");
  EXPECT_EQ(config->services(1).handler().type(), "auto");
  EXPECT_EQ(config->services(1).listener().type(), "wss");
  EXPECT_EQ(config->services(2).handler().type(), "auto");
  EXPECT_EQ(config->services(2).listener().type(), "tcp");
  EXPECT_EQ(config->services(3).handler().type(), "forward");  // targets on a non-forward listener
  EXPECT_EQ(config->services(3).forwarder().nodes(0).addr(), ":8080");
}

TEST(CmdlineConfig, SeveralTargetsAndSelectorKeys) {
  auto config = build_config_from_cmdline({"tcp://:8080/a:1,b:2?strategy=fifo&maxFails=3"}, {}, known());
  ASSERT_TRUE(config.ok()) << config.status();
  const auto& forwarder = config->services(0).forwarder();
  ASSERT_EQ(forwarder.nodes_size(), 2);
  EXPECT_EQ(forwarder.nodes(1).name(), "target-1");
  EXPECT_EQ(forwarder.selector().strategy(), "fifo");
  EXPECT_EQ(forwarder.selector().max_fails(), 3);
  EXPECT_EQ(forwarder.selector().fail_timeout(), "30s");
  EXPECT_FALSE(config->services(0).handler().metadata().fields().contains("strategy"));
}

TEST(CmdlineConfig, PortRangesMapServiceToTarget) {
  auto config = build_config_from_cmdline({"tcp://:8000-8002/h:9000-9002"}, {}, known());
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->services_size(), 3);
  EXPECT_EQ(config->services(2).addr(), ":8002");
  ASSERT_EQ(config->services(2).forwarder().nodes_size(), 1);
  EXPECT_EQ(config->services(2).forwarder().nodes(0).addr(), "h:9002");
}

TEST(CmdlineConfig, QueryParametersBecomeMetadataWithPrefixes) {
  auto config = build_config_from_cmdline({"http://:8080?readTimeout=5s&handler.realm=r&listener.backlog=9"},
                                          {"http://h:1?hop.x=1&connector.y=2&nodelay=true"}, known());
  ASSERT_TRUE(config.ok()) << config.status();
  const auto& service = config->services(0);
  EXPECT_EQ(service.handler().metadata().fields().at("readTimeout").string_value(), "5s");
  EXPECT_EQ(service.listener().metadata().fields().at("readTimeout").string_value(), "5s");
  EXPECT_EQ(service.metadata().fields().at("readTimeout").string_value(), "5s");
  EXPECT_EQ(service.handler().metadata().fields().at("realm").string_value(), "r");
  EXPECT_FALSE(service.listener().metadata().fields().contains("realm"));
  EXPECT_EQ(service.listener().metadata().fields().at("backlog").string_value(), "9");
  const auto& hop = config->chains(0).hops(0);
  EXPECT_EQ(hop.metadata().fields().at("x").string_value(), "1");
  EXPECT_EQ(hop.nodes(0).connector().metadata().fields().at("y").string_value(), "2");
  EXPECT_EQ(hop.nodes(0).dialer().metadata().fields().at("nodelay").string_value(), "true");
}

TEST(CmdlineConfig, EachFIsOneHopAndCommasMakeNodes) {
  auto config = build_config_from_cmdline({"http://:8080"}, {"http://a:1,b:2", "socks5+tls://c:3"}, known());
  ASSERT_TRUE(config.ok()) << config.status();
  const auto& chain = config->chains(0);
  ASSERT_EQ(chain.hops_size(), 2);
  EXPECT_EQ(chain.hops(0).nodes_size(), 2);
  EXPECT_EQ(chain.hops(0).nodes(1).name(), "node-1");
  EXPECT_EQ(chain.hops(0).nodes(1).addr(), "b:2");
  EXPECT_EQ(chain.hops(1).name(), "hop-1");
  EXPECT_EQ(chain.hops(1).nodes(0).connector().type(), "socks5");
  EXPECT_EQ(chain.hops(1).nodes(0).dialer().type(), "tls");
}

TEST(CmdlineConfig, DialerOnlyWordFallsBackToHttpConnector) {
  auto config = build_config_from_cmdline({}, {"tls://a:1"}, known());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->chains(0).hops(0).nodes(0).connector().type(), "http");
  EXPECT_EQ(config->chains(0).hops(0).nodes(0).dialer().type(), "tls");
}

TEST(CmdlineConfig, UnknownTypesListTheKnownOnes) {
  auto config = build_config_from_cmdline({"sock5://:1080"}, {}, known());
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("unknown type \"sock5\""), std::string::npos);
  EXPECT_NE(config.status().message().find("socks5"), std::string::npos);
  EXPECT_FALSE(build_config_from_cmdline({"http+foo://:1"}, {}, known()).ok());
  EXPECT_FALSE(build_config_from_cmdline({}, {"foo://a:1"}, known()).ok());
}

TEST(CmdlineConfig, ExplainsAMissingAutoHandler) {
  KnownTypes without_auto = known();
  std::erase(without_auto.handlers, "auto");
  auto config = build_config_from_cmdline({":8080"}, {}, without_auto);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("GOST's auto handler"), std::string::npos);
  EXPECT_NE(config.status().message().find("http"), std::string::npos);
}

TEST(CmdlineConfig, RefusesPoliciesItCannotEnforce) {
  auto config = build_config_from_cmdline({"http://:8080?bypass=10.0.0.0/8"}, {}, known());
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("bypass"), std::string::npos);
}

TEST(CmdlineConfig, NodeTlsKeysGoToNodeTls) {
  auto config = build_config_from_cmdline({}, {"http+tls://a:1?secure=true&serverName=x.example"}, known());
  ASSERT_TRUE(config.ok()) << config.status();
  const auto& node = config->chains(0).hops(0).nodes(0);
  EXPECT_TRUE(node.tls().secure());
  EXPECT_EQ(node.tls().server_name(), "x.example");
  EXPECT_FALSE(node.connector().metadata().fields().contains("secure"));
}

TEST(CmdlineConfig, MergeKeepsFileObjectsFirst) {
  config::v1::Config file;
  file.add_services()->set_name("from-file");
  file.mutable_log()->set_level("debug");
  auto flags = build_config_from_cmdline({"http://:8080"}, {}, known());
  ASSERT_TRUE(flags.ok());
  merge_config(file, *flags);
  ASSERT_EQ(file.services_size(), 2);
  EXPECT_EQ(file.services(0).name(), "from-file");
  EXPECT_EQ(file.services(1).name(), "service-0");
  EXPECT_EQ(file.log().level(), "debug");
}

KnownTypes known_with_ss() {
  return {{"ss", "ssu", "http", "udp"}, {"tcp", "udp"}, {"ss", "ssu", "http"}, {"tcp", "udp"}};
}

TEST(CmdlineConfig, SsUserinfoIsMethodAndPasswordOrSip002Base64) {
  auto config = build_config_from_cmdline(
      {"ss://aes-128-gcm:pass@:8388", "ssu://YWVzLTEyOC1nY206czNjcmV0Lyt4@:8389", "ss://plainuser@:8390?key=0123456789abcdef"},
      {"ss://Y2hhY2hhMjAtaWV0Zi1wb2x5MTMwNTpwdw==@127.0.0.1:8388"}, known_with_ss());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->services(0).handler().auth().username(), "aes-128-gcm");
  EXPECT_EQ(config->services(0).handler().auth().password(), "pass");
  EXPECT_EQ(config->services(1).handler().type(), "ssu");
  EXPECT_EQ(config->services(1).listener().type(), "udp");
  EXPECT_EQ(config->services(1).handler().auth().username(), "aes-128-gcm");
  EXPECT_EQ(config->services(1).handler().auth().password(), "s3cret/+x");
  // Not base64 of "method:password": a plain username; `key` stays the cipher key.
  EXPECT_EQ(config->services(2).handler().auth().username(), "plainuser");
  EXPECT_EQ(config->services(2).handler().metadata().fields().at("key").string_value(), "0123456789abcdef");
  EXPECT_FALSE(config->services(2).listener().has_tls());
  const auto& node = config->chains(0).hops(0).nodes(0);
  EXPECT_EQ(node.connector().auth().username(), "chacha20-ietf-poly1305");
  EXPECT_EQ(node.connector().auth().password(), "pw");
}

}  // namespace
}  // namespace strait::common
