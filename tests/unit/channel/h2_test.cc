#include "agent/channel/h2.h"

#include <gtest/gtest.h>

#include "h2_test_support.h"

namespace strait::agent {
namespace {

using namespace h2_test;

void expect_refused(const absl::Status& status, const std::string& key) {
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find(key), std::string::npos) << status;
}

// A bad value is refused when the config is loaded, naming its key, for listeners and dialers.
TEST(H2Options, BadValuesAreConfigErrorsNamingTheKey) {
  config::v1::Config config;
  expect_refused(make_h2c_listener_factory(service("h2c", "tunnel"), config).status(), "path");
  expect_refused(make_h2c_dialer(node("h2c", "no-slash")).status(), "path");
  for (const char* backlog : {"0", "-1", "65536", "many"}) {
    auto listener = service("h2c");
    set_meta(*listener.mutable_listener()->mutable_metadata(), "backlog", backlog);
    expect_refused(make_h2c_listener_factory(listener, config).status(), "backlog");
  }
  auto headers = node("h2");
  set_meta(*headers.mutable_dialer()->mutable_metadata(), "header", "not a map");
  expect_refused(make_h2_dialer(headers).status(), "header");
  auto pseudo = node("h2");
  auto& map = *(*pseudo.mutable_dialer()->mutable_metadata()->mutable_fields())["header"].mutable_struct_value();
  (*map.mutable_fields())[":path"].set_string_value("/x");
  expect_refused(make_h2_dialer(pseudo).status(), "header");
}

TEST(H2Options, GoodValuesMakeEveryType) {
  config::v1::Config config;
  auto listener = service("h2c", "/tunnel");
  set_meta(*listener.mutable_listener()->mutable_metadata(), "backlog", "16");
  EXPECT_TRUE(make_h2c_listener_factory(listener, config).ok());
  EXPECT_TRUE(make_h2_listener_factory(service("h2"), config).ok());
  EXPECT_TRUE(make_http2_listener_factory(service("http2"), config).ok());
  EXPECT_TRUE(make_h2_dialer(node("h2", "/tunnel")).ok());
  EXPECT_TRUE(make_h2c_dialer(node("h2c")).ok());
  EXPECT_TRUE(make_http2_dialer(node("http2")).ok());
}

}  // namespace
}  // namespace strait::agent
