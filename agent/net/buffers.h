#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace strait::agent {

// Per-thread caches of data buffers of one size. A relay or datagram reader takes a buffer
// only once its stream is readable and gives it back as soon as the bytes are written, so
// idle connections and sessions hold none; the data path of a thread never locks.
template <size_t kSize>
class BufferCache {
 public:
  static constexpr size_t kBufferSize = kSize;
  static constexpr size_t kCached = 64;  // kept for reuse per thread; more are freed
  using Buffer = std::unique_ptr<uint8_t[]>;

  static BufferCache& this_thread() {
    thread_local BufferCache cache;
    return cache;
  }
  Buffer take() {
    if (free_.empty()) return std::make_unique_for_overwrite<uint8_t[]>(kSize);
    auto buffer = std::move(free_.back());
    free_.pop_back();
    return buffer;
  }
  void give_back(Buffer buffer) {
    if (buffer && free_.size() < kCached) free_.push_back(std::move(buffer));
  }

 private:
  std::vector<Buffer> free_;
};

using StreamBuffers = BufferCache<64 * 1024>;
// The largest UDP payload: every datagram fits.
using DatagramBuffers = BufferCache<64 * 1024>;

}  // namespace strait::agent
