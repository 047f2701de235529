#include "common/address.h"

#include <gtest/gtest.h>

namespace strait::common {
namespace {

TEST(HostPort, ParsesForms) {
  EXPECT_EQ(*parse_host_port("example.com:80"), (HostPort{"example.com", 80}));
  EXPECT_EQ(*parse_host_port("[::1]:443"), (HostPort{"::1", 443}));
  EXPECT_EQ(*parse_host_port(":8080"), (HostPort{"", 8080}));
  EXPECT_EQ(*parse_host_port(":0", true), (HostPort{"", 0}));
}

TEST(HostPort, RejectsBadPortsAndHosts) {
  for (const char* bad : {"host", "host:", "host:0", "host:65536", "host:8x", "::1:80", "[::1]80", "[]:1", "a/b:1"}) {
    EXPECT_FALSE(parse_host_port(bad).ok()) << bad;
  }
}

TEST(HostPort, FormatsIpv6WithBrackets) {
  EXPECT_EQ((HostPort{"::1", 80}).to_string(), "[::1]:80");
  EXPECT_EQ((HostPort{"10.0.0.1", 80}).to_string(), "10.0.0.1:80");
}

}  // namespace
}  // namespace strait::common
