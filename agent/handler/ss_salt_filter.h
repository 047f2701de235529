#pragma once

#include <cstddef>
#include <functional>
#include <mutex>
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

}  // namespace strait::agent
