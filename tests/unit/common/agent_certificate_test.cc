#include "common/agent_certificate.h"

#include <gtest/gtest.h>

namespace strait::common {
namespace {

TEST(AgentCertificateTest, AgentIdsAreShortNamesWithoutSeparators) {
  EXPECT_TRUE(valid_agent_id("edge-1"));
  EXPECT_TRUE(valid_agent_id("Host_2.example"));
  EXPECT_FALSE(valid_agent_id(""));
  EXPECT_FALSE(valid_agent_id("-edge"));
  EXPECT_FALSE(valid_agent_id("edge/1"));
  EXPECT_FALSE(valid_agent_id("edge 1"));
  EXPECT_FALSE(valid_agent_id("edge\n1"));
  EXPECT_FALSE(valid_agent_id(std::string(64, 'a')));
}

TEST(AgentCertificateTest, AKeyComesWithARequestForIt) {
  auto key = make_agent_key("edge-1");
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_NE(key->key_pem.find("-----BEGIN PRIVATE KEY-----"), std::string::npos);
  EXPECT_NE(key->csr_pem.find("-----BEGIN CERTIFICATE REQUEST-----"), std::string::npos);
  EXPECT_FALSE(make_agent_key("not valid").ok());
}

TEST(AgentCertificateTest, WhatIsNotACertificateIsRefused) {
  EXPECT_FALSE(read_certificate("").ok());
  EXPECT_FALSE(read_certificate("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").ok());
  EXPECT_FALSE(read_certificate(std::string(20000, 'x')).ok());
  auto key = make_agent_key("edge-1");
  ASSERT_TRUE(key.ok());
  EXPECT_FALSE(read_certificate(key->csr_pem).ok());
  EXPECT_FALSE(key_matches_certificate(key->key_pem, "not a certificate"));
}

}  // namespace
}  // namespace strait::common
