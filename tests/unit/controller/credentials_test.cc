#include "controller/server/credentials.h"

#include <gtest/gtest.h>

#include "controller/store/sqlite_store.h"

namespace strait::controller {
namespace {

class CredentialsTest : public ::testing::Test {
 protected:
  CredentialsTest() {
    auto opened = open_sqlite_store(":memory:");
    EXPECT_TRUE(opened.ok());
    store_ = *std::move(opened);
    credentials_ = std::make_unique<Credentials>(*store_, "admin");
  }

  std::unique_ptr<Store> store_;
  std::unique_ptr<Credentials> credentials_;
};

TEST_F(CredentialsTest, AnImportedTokenLetsAgentsJoinWithTheGrantsGiven) {
  const std::string secret = "sj_k8sChosenValueOf40CharactersAbcdefghijklm";
  auto id = credentials_->import_join_token(secret, "bootstrap", 0, {{"role", "*"}});
  ASSERT_TRUE(id.ok()) << id.status();
  auto token = credentials_->join_token("Bearer " + secret);
  ASSERT_TRUE(token.has_value());
  EXPECT_EQ(token->id, *id);
  EXPECT_EQ(token->grants, (std::map<std::string, std::string>{{"role", "*"}}));
  EXPECT_EQ(token->expires_unix, 0);
}

TEST_F(CredentialsTest, ImportingTheSameSecretAgainKeepsTheTokenItMade) {
  const std::string secret(48, 'x');
  auto first = credentials_->import_join_token(secret, "bootstrap", 3600, {});
  auto second = credentials_->import_join_token(secret, "bootstrap", 3600, {});
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(*first, *second);
  auto tokens = store_->list_tokens();
  ASSERT_TRUE(tokens.ok());
  EXPECT_EQ(tokens->size(), 1u) << "a controller restart must not add a token, nor renew an expired one";
}

TEST_F(CredentialsTest, AnImportedTokenMustBeLongPrintableAscii) {
  auto short_one = credentials_->import_join_token(std::string(31, 'a'), "bootstrap", 0, {});
  EXPECT_FALSE(short_one.ok());
  EXPECT_NE(short_one.status().message().find("32 to 256"), std::string::npos) << short_one.status();
  EXPECT_FALSE(credentials_->import_join_token(std::string(257, 'a'), "bootstrap", 0, {}).ok());
  EXPECT_FALSE(credentials_->import_join_token(std::string(40, 'a') + " b", "bootstrap", 0, {}).ok());
  EXPECT_FALSE(credentials_->import_join_token(std::string(40, 'a') + "\x01", "bootstrap", 0, {}).ok());
  EXPECT_FALSE(credentials_->import_join_token(std::string(40, 'a'), "bootstrap", 0, {{"bad key!", "x"}}).ok());
  auto tokens = store_->list_tokens();
  ASSERT_TRUE(tokens.ok());
  EXPECT_TRUE(tokens->empty());
}

TEST_F(CredentialsTest, GeneratedTokensNameTheirId) {
  auto created = credentials_->create_join_token("test", 60, {});
  ASSERT_TRUE(created.ok());
  EXPECT_EQ(created->token().substr(0, 3 + created->id().size()), "sj_" + created->id());
  EXPECT_TRUE(credentials_->join_token("Bearer " + created->token()).has_value());
}

}  // namespace
}  // namespace strait::controller
