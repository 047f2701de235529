#include "agent/chain/selector.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>

namespace strait::agent {
namespace {

using namespace std::chrono_literals;

SelectorOptions options(Strategy strategy, int max_fails = 1, std::chrono::nanoseconds timeout = 30s) {
  return {strategy, max_fails, timeout};
}

TEST(Selector, RoundRobinRotates) {
  Selector selector(options(Strategy::kRound), 3);
  std::vector<size_t> firsts;
  for (int i = 0; i < 6; ++i) firsts.push_back(selector.order("").front());
  EXPECT_EQ(firsts, (std::vector<size_t>{0, 1, 2, 0, 1, 2}));
  EXPECT_EQ(selector.order("").size(), 3u);
}

TEST(Selector, FifoPrefersFirstHealthy) {
  Selector selector(options(Strategy::kFifo), 3);
  EXPECT_EQ(selector.order("").front(), 0u);
  selector.mark_failed(0);
  EXPECT_EQ(selector.order(""), (std::vector<size_t>{1, 2}));
  selector.mark_ok(0);
  EXPECT_EQ(selector.order("").front(), 0u);
}

TEST(Selector, HashIsStablePerKey) {
  Selector selector(options(Strategy::kHash), 5);
  auto first = selector.order("example.com").front();
  for (int i = 0; i < 10; ++i) EXPECT_EQ(selector.order("example.com").front(), first);
}

TEST(Selector, RandomCoversAllNodes) {
  Selector selector(options(Strategy::kRand), 4);
  std::set<size_t> seen;
  for (int i = 0; i < 200; ++i) seen.insert(selector.order("").front());
  EXPECT_EQ(seen.size(), 4u);
}

TEST(Selector, MaxFailsExcludesOnlyAfterThatManyFailures) {
  Selector selector(options(Strategy::kFifo, 2), 2);
  selector.mark_failed(0);
  EXPECT_FALSE(selector.excluded(0));
  selector.mark_failed(0);
  EXPECT_TRUE(selector.excluded(0));
  EXPECT_EQ(selector.order(""), std::vector<size_t>{1});
}

TEST(Selector, ExclusionEndsAfterFailTimeout) {
  Selector selector(options(Strategy::kFifo, 1, 20ms), 2);
  selector.mark_failed(0);
  EXPECT_TRUE(selector.excluded(0));
  // Waiting out the fail timeout is the behaviour under test, not synchronisation.
  std::this_thread::sleep_for(30ms);
  EXPECT_FALSE(selector.excluded(0));
  EXPECT_EQ(selector.order("").front(), 0u);
}

TEST(Selector, AllExcludedMeansAllAreCandidatesAgain) {
  Selector selector(options(Strategy::kFifo), 2);
  selector.mark_failed(0);
  selector.mark_failed(1);
  EXPECT_EQ(selector.order(""), (std::vector<size_t>{0, 1}));
}

TEST(SelectorConfig, ParsesAndRejects) {
  config::v1::SelectorConfig config;
  config.set_strategy("hash");
  config.set_max_fails(3);
  config.set_fail_timeout("1m");
  auto parsed = parse_selector(config);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->strategy, Strategy::kHash);
  EXPECT_EQ(parsed->max_fails, 3);
  EXPECT_EQ(parsed->fail_timeout, 60s);
  config.set_strategy("sometimes");
  EXPECT_FALSE(parse_selector(config).ok());
  config.set_strategy("round");
  config.set_fail_timeout("soon");
  EXPECT_FALSE(parse_selector(config).ok());
  EXPECT_EQ(parse_selector({})->max_fails, 1);
}

}  // namespace
}  // namespace strait::agent
