#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_set>

namespace strait::agent {

// The salts a Shadowsocks service has seen lately, so that a recorded connection replayed by
// a prober is refused (SIP004 recommends it; shadowsocks-libev keeps a Bloom filter). Two
// generations of at most `generation_size` salts each: once the newer one is full the older is
// dropped, so it remembers between `generation_size` and twice that many salts and its memory
// is bounded (about 40 bytes a salt). Salts are random, so a 64-bit hash of one stands for it;
// a false match costs one honest client a retry with 2^-64 odds. Shared by all workers.
class SaltFilter {
 public:
  static constexpr size_t kDefaultGenerationSize = 32768;

  explicit SaltFilter(size_t generation_size = kDefaultGenerationSize) : generation_size_(generation_size) {}

  // Records `salt`; false when it was seen before (a replay).
  bool insert(std::string_view salt) {
    size_t key = std::hash<std::string_view>{}(salt);
    std::lock_guard lock(mutex_);
    if (current_.contains(key) || previous_.contains(key)) return false;
    if (current_.size() >= generation_size_) {
      previous_.swap(current_);
      current_.clear();
    }
    current_.insert(key);
    return true;
  }

 private:
  size_t generation_size_;
  std::mutex mutex_;  // one short section per new connection
  std::unordered_set<size_t> current_;
  std::unordered_set<size_t> previous_;
};

// SIP022 §3.1.4: every salt a 2022 service accepted in the last 60 s, kept whole (the spec
// forbids filters with false positives) in two generations by time: a salt stays between one
// and two periods. A request's timestamp is at most 30 s off, so a replay arrives within
// 60 s of the original and is caught. Bounded: once `capacity` salts are held, new requests
// are refused until a generation ages out (refusing is safe; forgetting young salts is not).
// Shared by all workers.
class RecentSaltFilter {
 public:
  static constexpr size_t kDefaultCapacity = 200'000;  // about 3,000 new connections a second
  enum class Outcome { kNew, kReplayed, kFull };

  explicit RecentSaltFilter(size_t capacity = kDefaultCapacity, std::chrono::seconds period = std::chrono::seconds(60))
      : capacity_(capacity), period_(period) {}

  Outcome insert(std::string_view salt, std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now()) {
    std::lock_guard lock(mutex_);
    if (now - current_start_ >= period_) {
      previous_ = std::move(current_);
      current_.clear();
      current_start_ = now;
    }
    std::string key(salt);
    if (current_.contains(key) || previous_.contains(key)) return Outcome::kReplayed;
    if (current_.size() + previous_.size() >= capacity_) return Outcome::kFull;
    current_.insert(std::move(key));
    return Outcome::kNew;
  }

 private:
  size_t capacity_;
  std::chrono::steady_clock::duration period_;
  std::mutex mutex_;  // one short section per new connection
  std::chrono::steady_clock::time_point current_start_{};
  std::unordered_set<std::string> current_;
  std::unordered_set<std::string> previous_;
};

}  // namespace strait::agent
