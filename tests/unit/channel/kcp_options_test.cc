#include "agent/channel/kcp_options.h"

#include <gtest/gtest.h>

#include <fstream>

namespace strait::agent {
namespace {

google::protobuf::Struct metadata(std::initializer_list<std::pair<const char*, const char*>> values) {
  google::protobuf::Struct result;
  for (const auto& [key, value] : values) (*result.mutable_fields())[key].set_string_value(value);
  return result;
}

// PROTOCOLS.md §5, Strait's rule: the wire as the newest GOST, the tuning as DefaultConfig.
TEST(KcpOptions, DefaultsFollowStraitsRule) {
  auto config = parse_kcp_config(metadata({}));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->key, "");
  EXPECT_EQ(config->derived_key, kcp::derive_key(""));
  EXPECT_EQ(config->crypt_resolved, "aes");
  EXPECT_EQ(config->data_shards, 10);
  EXPECT_EQ(config->parity_shards, 3);
  EXPECT_FALSE(config->no_compression);
  EXPECT_EQ(config->smux_version, 1);
  EXPECT_EQ(config->mode, "fast");
  EXPECT_EQ(config->mtu, 1350);
  EXPECT_EQ(config->send_window, 1024);
  EXPECT_EQ(config->receive_window, 1024);
  EXPECT_EQ(config->keepalive_seconds, 10);
  EXPECT_EQ(config->interval_ms, 30);
  EXPECT_EQ(config->resend, 2);
  EXPECT_TRUE(config->no_congestion);
  EXPECT_EQ(config->max_sessions, 4096u);
  EXPECT_EQ(config->packet_overhead(), 28u);
  auto smux = config->smux_config();
  EXPECT_EQ(smux.max_receive_buffer, 4194304u);
  EXPECT_EQ(smux.max_stream_buffer, 2097152u);
  EXPECT_EQ(smux.keepalive_interval, std::chrono::seconds(10));
  auto tuning = config->tuning();
  EXPECT_EQ(tuning.reserved, 28u);
  EXPECT_EQ(tuning.mtu, 1350u);
}

TEST(KcpOptions, KeysWithAndWithoutPrefix) {
  auto prefixed = parse_kcp_config(metadata({{"kcp.key", "secret"}, {"kcp.crypt", "salsa20"}, {"kcp.mtu", "1200"},
                                             {"kcp.nocomp", "true"}, {"kcp.smuxver", "2"}, {"kcp.keepalive", "5"}}));
  ASSERT_TRUE(prefixed.ok()) << prefixed.status();
  EXPECT_EQ(prefixed->key, "secret");
  EXPECT_EQ(prefixed->crypt_resolved, "salsa20");
  EXPECT_EQ(prefixed->mtu, 1200);
  EXPECT_TRUE(prefixed->no_compression);
  EXPECT_EQ(prefixed->smux_version, 2);
  EXPECT_EQ(prefixed->keepalive_seconds, 5);
  auto bare = parse_kcp_config(metadata({{"key", "k"}, {"crypt", "null"}, {"datashard", "0"}, {"sndwnd", "256"}}));
  ASSERT_TRUE(bare.ok()) << bare.status();
  EXPECT_EQ(bare->key, "k");
  EXPECT_FALSE(bare->has_crypt());
  EXPECT_FALSE(bare->has_fec());
  EXPECT_EQ(bare->packet_overhead(), 0u);
  EXPECT_EQ(bare->send_window, 256);
  // The prefixed key wins over the bare one.
  auto both = parse_kcp_config(metadata({{"kcp.mtu", "1000"}, {"mtu", "1100"}}));
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(both->mtu, 1000);
}

TEST(KcpOptions, ModesReplaceTheTimingKnobs) {
  for (auto [mode, nodelay, interval] : {std::tuple{"normal", false, 40}, std::tuple{"fast", false, 30},
                                         std::tuple{"fast2", true, 20}, std::tuple{"fast3", true, 10}}) {
    auto config = parse_kcp_config(metadata({{"kcp.mode", mode}, {"kcp.interval", "100"}}));
    ASSERT_TRUE(config.ok()) << config.status();
    EXPECT_EQ(config->nodelay, nodelay) << mode;
    EXPECT_EQ(config->interval_ms, interval) << mode;
  }
  auto manual = parse_kcp_config(metadata({{"kcp.mode", "manual"}, {"kcp.interval", "100"}, {"kcp.nodelay", "1"},
                                           {"kcp.resend", "0"}, {"kcp.nc", "0"}}));
  ASSERT_TRUE(manual.ok()) << manual.status();
  EXPECT_EQ(manual->interval_ms, 100);
  EXPECT_TRUE(manual->nodelay);
  EXPECT_EQ(manual->resend, 0);
  EXPECT_TRUE(manual->tuning().congestion_control);
}

TEST(KcpOptions, JsonFileAndMapUseKcptunNames) {
  std::string path = ::testing::TempDir() + "kcp_options_test.json";
  {
    std::ofstream file(path);
    file << R"({"key": "from-file", "crypt": "none", "mode": "fast3", "mtu": 1400, "sndwnd": 512,
              "datashard": 5, "parityshard": 2, "nocomp": true, "smuxbuf": 0, "streambuf": 0, "sockbuf": 1048576,
              "remoteaddr": "ignored:1"})";
  }
  auto config = parse_kcp_config(metadata({{"kcp.configFile", path.c_str()}, {"kcp.mtu", "1300"}}));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->key, "from-file");
  EXPECT_EQ(config->crypt_resolved, "none");
  EXPECT_EQ(config->interval_ms, 10);
  EXPECT_EQ(config->mtu, 1300);  // metadata over the file
  EXPECT_EQ(config->send_window, 512);
  EXPECT_EQ(config->data_shards, 5);
  EXPECT_EQ(config->parity_shards, 2);
  EXPECT_TRUE(config->no_compression);
  EXPECT_EQ(config->smux_buffer, 1048576);  // GOST Init: 0 → sockbuf
  EXPECT_EQ(config->stream_buffer, 524288);  // and sockbuf / 2
  auto short_name = parse_kcp_config(metadata({{"c", path.c_str()}}));
  ASSERT_TRUE(short_name.ok()) << short_name.status();
  EXPECT_EQ(short_name->key, "from-file");

  google::protobuf::Struct with_map;
  auto& map = *(*with_map.mutable_fields())["kcp.config"].mutable_struct_value()->mutable_fields();
  map["rcvwnd"].set_number_value(2048);
  map["crypt"].set_string_value("aes-128");
  auto from_map = parse_kcp_config(with_map);
  ASSERT_TRUE(from_map.ok()) << from_map.status();
  EXPECT_EQ(from_map->receive_window, 2048);
  EXPECT_EQ(from_map->crypt_resolved, "aes-128");
  map["rcvwnd"].set_number_value(0);
  auto bad_map = parse_kcp_config(with_map);
  ASSERT_FALSE(bad_map.ok());
  EXPECT_NE(bad_map.status().message().find("rcvwnd"), std::string::npos) << bad_map.status();

  auto missing = parse_kcp_config(metadata({{"kcp.configFile", "/nonexistent/kcp.json"}}));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("kcp.configFile"), std::string::npos) << missing.status();
}

TEST(KcpOptions, UnknownCryptNameMeansAesAsGost) {
  auto config = parse_kcp_config(metadata({{"kcp.crypt", "rot13"}}));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->crypt_resolved, "aes");
}

TEST(KcpOptions, BadValuesNameTheKey) {
  for (auto [key, value] : {std::pair{"kcp.mtu", "40"}, std::pair{"kcp.mtu", "1501"}, std::pair{"kcp.sndwnd", "0"},
                            std::pair{"kcp.rcvwnd", "100000"}, std::pair{"kcp.datashard", "300"},
                            std::pair{"kcp.dscp", "64"}, std::pair{"kcp.interval", "5"}, std::pair{"kcp.resend", "-1"},
                            std::pair{"kcp.smuxver", "3"}, std::pair{"kcp.smuxbuf", "999999999"},
                            std::pair{"kcp.keepalive", "x"}, std::pair{"kcp.nocomp", "maybe"},
                            std::pair{"kcp.mode", "fastest"}, std::pair{"kcp.crypt", "twofish"},
                            std::pair{"kcp.maxSessions", "0"}, std::pair{"kcp.tcp", "true"}, std::pair{"mtu", "x"}}) {
    auto config = parse_kcp_config(metadata({{key, value}}));
    ASSERT_FALSE(config.ok()) << key << "=" << value << " was taken";
    EXPECT_NE(config.status().message().find(key), std::string::npos) << config.status();
  }
  auto shards = parse_kcp_config(metadata({{"kcp.datashard", "200"}, {"kcp.parityshard", "100"}}));
  ASSERT_FALSE(shards.ok());
  EXPECT_NE(shards.status().message().find("kcp.datashard"), std::string::npos) << shards.status();
}

}  // namespace
}  // namespace strait::agent
