#include "agent/chain/selector.h"

#include <algorithm>
#include <functional>
#include <random>

#include "common/duration.h"
#include "common/strings.h"

namespace strait::agent {
namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

absl::StatusOr<SelectorOptions> parse_selector(const config::v1::SelectorConfig& config) {
  SelectorOptions options;
  std::string strategy = common::to_lower(config.strategy());
  if (strategy.empty() || strategy == "round" || strategy == "roundrobin") {
    options.strategy = Strategy::kRound;
  } else if (strategy == "rand" || strategy == "random") {
    options.strategy = Strategy::kRand;
  } else if (strategy == "fifo" || strategy == "ha") {
    options.strategy = Strategy::kFifo;
  } else if (strategy == "hash") {
    options.strategy = Strategy::kHash;
  } else {
    return absl::InvalidArgumentError(
        common::str_cat("selector.strategy \"", config.strategy(), "\": use round, rand, fifo or hash"));
  }
  if (config.max_fails() < 0) return absl::InvalidArgumentError("selector.maxFails must not be negative");
  if (config.max_fails() > 0) options.max_fails = config.max_fails();
  if (!config.fail_timeout().empty()) {
    auto timeout = common::parse_timeout(config.fail_timeout());
    if (!timeout.ok()) return absl::InvalidArgumentError(common::str_cat("selector.failTimeout: ", timeout.status().message()));
    options.fail_timeout = *timeout;
  }
  return options;
}

Selector::Selector(SelectorOptions options, size_t node_count)
    : options_(options), count_(node_count), health_(std::make_unique<Health[]>(node_count)) {}

bool Selector::excluded(size_t node) const {
  return health_[node].excluded_until_ns.load(std::memory_order_relaxed) > now_ns();
}

std::vector<size_t> Selector::order(std::string_view hash_key) {
  const size_t n = count_;
  std::vector<size_t> healthy;
  for (size_t i = 0; i < n; ++i) {
    if (!excluded(i)) healthy.push_back(i);
  }
  if (healthy.empty()) {
    for (size_t i = 0; i < n; ++i) healthy.push_back(i);
  }
  if (healthy.size() <= 1) return healthy;
  size_t start = 0;
  switch (options_.strategy) {
    case Strategy::kRound:
      start = next_.fetch_add(1, std::memory_order_relaxed) % healthy.size();
      break;
    case Strategy::kRand: {
      thread_local std::minstd_rand random(std::random_device{}());
      std::shuffle(healthy.begin(), healthy.end(), random);
      return healthy;
    }
    case Strategy::kFifo:
      return healthy;
    case Strategy::kHash:
      start = std::hash<std::string_view>{}(hash_key) % healthy.size();
      break;
  }
  std::rotate(healthy.begin(), healthy.begin() + static_cast<std::ptrdiff_t>(start), healthy.end());
  return healthy;
}

void Selector::mark_failed(size_t node) {
  int fails = health_[node].fails.fetch_add(1, std::memory_order_relaxed) + 1;
  if (fails >= options_.max_fails) {
    health_[node].excluded_until_ns.store(now_ns() + options_.fail_timeout.count(), std::memory_order_relaxed);
    health_[node].fails.store(0, std::memory_order_relaxed);
  }
}

void Selector::mark_ok(size_t node) {
  health_[node].fails.store(0, std::memory_order_relaxed);
  health_[node].excluded_until_ns.store(0, std::memory_order_relaxed);
}

}  // namespace strait::agent
