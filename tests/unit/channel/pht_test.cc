#include "agent/channel/pht.h"

#include "pht_test_support.h"

namespace strait::agent {
namespace {

using namespace pht_test;

TEST(PhtOptions, BadValuesAreConfigErrorsNamingTheKey) {
  auto service = pht_service("pht", {{"pushPath", "push"}});
  auto factory = make_pht_listener_factory(service, config::v1::Config{});
  ASSERT_FALSE(factory.ok());
  EXPECT_NE(factory.status().message().find("pushPath"), std::string::npos) << factory.status();
  auto sessions = make_pht_listener_factory(pht_service("pht", {{"pht.maxSessions", "0"}}), config::v1::Config{});
  ASSERT_FALSE(sessions.ok());
  EXPECT_NE(sessions.status().message().find("pht.maxSessions"), std::string::npos) << sessions.status();
  auto node = pht_node("pht");
  (*node.mutable_dialer()->mutable_metadata()->mutable_fields())["pullPath"].set_string_value("/pull me");
  auto dialer = make_pht_dialer(node);
  ASSERT_FALSE(dialer.ok());
  EXPECT_NE(dialer.status().message().find("pullPath"), std::string::npos) << dialer.status();
}

}  // namespace
}  // namespace strait::agent
