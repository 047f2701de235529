#include "agent/connector/ss_options.h"

#include <gtest/gtest.h>

namespace strait::agent {
namespace {

config::v1::AuthConfig auth(const std::string& method, const std::string& password) {
  config::v1::AuthConfig config;
  config.set_username(method);
  config.set_password(password);
  return config;
}

common::Metadata with_key(const std::string& key) {
  common::Metadata metadata;
  (*metadata.mutable_fields())["key"].set_string_value(key);
  return metadata;
}

void expect_refused(const absl::StatusOr<SsKey>& key, const std::string& words) {
  ASSERT_FALSE(key.ok());
  EXPECT_NE(key.status().message().find(words), std::string::npos) << key.status();
}

TEST(SsOptions, MethodAndPasswordGiveTheDerivedKey) {
  auto key = parse_ss_key("ss handler", auth("AEAD_CHACHA20_POLY1305", "secret"), {});
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(key->method.name, "chacha20-ietf-poly1305");
  EXPECT_EQ(key->master_key, ss_wire::password_to_key("secret", 32));
}

TEST(SsOptions, RawKeyMustHaveTheMethodsSize) {
  auto key = parse_ss_key("ss connector", auth("aes-128-gcm", ""), with_key("0123456789abcdef"));
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(key->master_key, "0123456789abcdef");
  expect_refused(parse_ss_key("ss connector", auth("aes-256-gcm", ""), with_key("0123456789abcdef")),
                 "needs exactly 32");
}

TEST(SsOptions, MissingOrUnknownPartsAreRefusedNamingThem) {
  expect_refused(parse_ss_key("ss handler", auth("", ""), {}), "needs a method and password");
  expect_refused(parse_ss_key("ss handler", auth("rc4-md5", "secret"), {}), "unknown method \"rc4-md5\"");
  expect_refused(parse_ss_key("ss handler", auth("aes-128-gcm", ""), {}), "needs a password");
}

}  // namespace
}  // namespace strait::agent
