#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "strait/v1/config.pb.h"

namespace strait::agent {

enum class Strategy { kRound, kRand, kFifo, kHash };

struct SelectorOptions {
  Strategy strategy = Strategy::kRound;
  int max_fails = 1;                                    // failures in a row that exclude a node
  std::chrono::nanoseconds fail_timeout = std::chrono::seconds(30);  // how long it stays excluded
};

// Reads GOST's selector {strategy, maxFails, failTimeout}; empty fields keep the defaults.
absl::StatusOr<SelectorOptions> parse_selector(const config::v1::SelectorConfig& config);

// Picks among the nodes of a hop or the targets of a forwarder. Shared by all workers:
// failure marks are atomics, so the dial path takes no lock.
class Selector {
 public:
  Selector(SelectorOptions options, size_t node_count);

  // Node indices to try, best first: nodes not excluded in strategy order, or every node
  // when all are excluded (so a fully failed hop still gets tried).
  std::vector<size_t> order(std::string_view hash_key);
  void mark_failed(size_t node);
  void mark_ok(size_t node);
  bool excluded(size_t node) const;
  size_t size() const { return count_; }

 private:
  struct Health {
    std::atomic<int> fails{0};
    std::atomic<int64_t> excluded_until_ns{0};
  };

  SelectorOptions options_;
  size_t count_;
  std::unique_ptr<Health[]> health_;
  std::atomic<uint64_t> next_{0};
};

}  // namespace strait::agent
