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
  for (const char* bad : {"", "s", "10x", "1..5s", "-", "ms10", ".s", "1.5", "1s2", "+", "1e3s", " 1s", "1s "}) {
    EXPECT_FALSE(parse_duration(bad).ok()) << bad;
  }
  EXPECT_NE(parse_duration("10x").status().message().find("10s"), std::string::npos);
}

TEST(Duration, RefusesValuesPastInt64NanosecondsWithoutThrowing) {
  std::string nines(400, '9');
  for (const std::string& huge : {nines + "s", nines, std::string("999999999999"), std::string("2562048h"),
                                  std::string("9223372036.854775808s"), std::string("1.") + nines + "h" + nines + "h"}) {
    auto parsed = parse_duration(huge);
    ASSERT_FALSE(parsed.ok()) << huge;
    EXPECT_NE(parsed.status().message().find("too large"), std::string::npos) << parsed.status().message();
  }
  // A message about a long value shows its start only.
  EXPECT_LT(parse_duration(nines + "s").status().message().size(), 140u);
}

TEST(Duration, ReachesTheInt64LimitExactly) {
  EXPECT_EQ(parse_duration("9223372036.854775807s")->count(), INT64_MAX);
  EXPECT_EQ(parse_duration("2562047h47m16.854775807s")->count(), INT64_MAX);
  EXPECT_EQ(parse_duration("-2562047h47m16.854775807s")->count(), -INT64_MAX);
}

TEST(Duration, KeepsFractionsToTheNanosecond) {
  EXPECT_EQ(*parse_duration("1.000000001s"), 1'000'000'001ns);
  EXPECT_EQ(*parse_duration("0.5ms"), 500us);
  EXPECT_EQ(*parse_duration(".5s"), 500ms);
  EXPECT_EQ(*parse_duration("1.s"), 1s);
  EXPECT_EQ(*parse_duration("1.0000000001s"), 1s);  // finer than a nanosecond: truncated, as Go does
  EXPECT_EQ(*parse_duration("1h1m1s1ms1us1ns"), 1h + 1min + 1s + 1ms + 1us + 1ns);
  EXPECT_EQ(*parse_duration("3µs"), 3us);
}

TEST(Duration, TimeoutsAreNonNegativeAndAtMostTenYears) {
  EXPECT_EQ(*parse_timeout("87600h"), kMaxDuration);
  for (const char* bad : {"-1s", "87600h1ns", "100000h", "9223372036s"}) {
    auto parsed = parse_timeout(bad);
    EXPECT_FALSE(parsed.ok()) << bad;
  }
  EXPECT_NE(parse_timeout("-1s").status().message().find("negative"), std::string::npos);
  EXPECT_NE(parse_timeout("100000h").status().message().find("at most 87600h0m0s"), std::string::npos);
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
