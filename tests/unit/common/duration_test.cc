#include "common/duration.h"

#include <gtest/gtest.h>

namespace strait::common {
namespace {

using namespace std::chrono_literals;

TEST(Duration, ParsesGoDurations) {
  EXPECT_EQ(*parse_duration("10s"), 10s);
  EXPECT_EQ(*parse_duration("1m30s"), 90s);
  EXPECT_EQ(*parse_duration("250ms"), 250ms);
  EXPECT_EQ(*parse_duration("1.5h"), 90min);
  EXPECT_EQ(*parse_duration("0"), 0s);
  EXPECT_EQ(*parse_duration("15"), 15s);  // bare integers are seconds in GOST metadata
}

TEST(Duration, RejectsGarbage) {
  for (const char* bad : {"", "s", "10x", "1..5s", "-", "ms10"}) {
    EXPECT_FALSE(parse_duration(bad).ok()) << bad;
  }
  EXPECT_NE(parse_duration("10x").status().message().find("10s"), std::string::npos);
}

TEST(Duration, FormatsLikeGo) {
  EXPECT_EQ(format_duration(30s), "30s");
  EXPECT_EQ(format_duration(90s), "1m30s");
  EXPECT_EQ(format_duration(250ms), "250ms");
  EXPECT_EQ(format_duration(2h), "2h0m0s");
  EXPECT_EQ(format_duration(1500ms), "1.5s");
}

}  // namespace
}  // namespace strait::common
