#include "common/gost_url.h"

#include <gtest/gtest.h>

namespace strait::common {
namespace {

TEST(GostUrl, AddsAutoSchemeWhenMissing) {
  auto url = parse_gost_url(":8080");
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(url->scheme, "auto");
  EXPECT_EQ(url->host, ":8080");
  auto bare = parse_gost_url("1.2.3.4:8080");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->scheme, "auto");
  EXPECT_EQ(bare->host, "1.2.3.4:8080");
}

TEST(GostUrl, RewritesHttpsToHttpOverTls) {
  auto url = parse_gost_url("https://:443");
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(url->first, "http");
  EXPECT_EQ(url->second, "tls");
  EXPECT_FALSE(url->one_word);
}

TEST(GostUrl, SplitsSchemeUserinfoTargetsAndQuery) {
  auto url = parse_gost_url("  relay+wss://user:p%40ss@example.com:8443/a:1,b:2?path=/ws&ttl=5s&ttl=9s  ");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_EQ(url->first, "relay");
  EXPECT_EQ(url->second, "wss");
  EXPECT_EQ(*url->username, "user");
  EXPECT_EQ(*url->password, "p@ss");
  EXPECT_EQ(url->host, "example.com:8443");
  EXPECT_EQ(url->path, "/a:1,b:2");
  ASSERT_EQ(url->query.size(), 2u);
  EXPECT_EQ(url->query[0].first, "path");
  EXPECT_EQ(url->query[0].second, "/ws");
  EXPECT_EQ(url->query[1].second, "5s");  // first value wins, as in GOST
}

TEST(GostUrl, UsernameWithoutPassword) {
  auto url = parse_gost_url("ss://YWVzLTEyOC1nY206cGFzcw@:8338");
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(*url->username, "YWVzLTEyOC1nY206cGFzcw");
  EXPECT_FALSE(url->password.has_value());
}

TEST(GostUrl, KeepsIpv6Hosts) {
  auto url = parse_gost_url("http://[::1]:8080");
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(url->host, "[::1]:8080");
}

TEST(GostUrl, RejectsEmptyAndMalformed) {
  EXPECT_FALSE(parse_gost_url("").ok());
  EXPECT_FALSE(parse_gost_url("   ").ok());
  EXPECT_FALSE(parse_gost_url("a+b+c://:1").ok());
  EXPECT_FALSE(parse_gost_url("ht tp://:1").ok());
  EXPECT_FALSE(parse_gost_url("http://:1?x=%zz").ok());
  EXPECT_FALSE(parse_gost_url("http://:1/%4").ok());
}

TEST(GostUrl, ExpandsPortRanges) {
  auto ports = expand_port_range(":8000-8002");
  ASSERT_TRUE(ports.ok());
  EXPECT_EQ(*ports, (std::vector<std::string>{":8000", ":8001", ":8002"}));
  auto single = expand_port_range("host:80");
  ASSERT_TRUE(single.ok());
  EXPECT_EQ(*single, std::vector<std::string>{"host:80"});
  EXPECT_FALSE(expand_port_range(":9-1").ok());
  EXPECT_FALSE(expand_port_range(":1-70000").ok());
}

}  // namespace
}  // namespace strait::common
