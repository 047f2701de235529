#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

namespace strait::controller {

// The controller's Prometheus metrics. Counters and gauges are atomics written from any
// thread; the histogram takes a short lock. text() renders the exposition format.
class ControllerMetrics {
 public:
  std::atomic<int64_t> agents_connected{0};
  std::atomic<int64_t> agents_known{0};
  std::atomic<uint64_t> snapshots_pushed{0};
  std::atomic<uint64_t> acks{0};
  std::atomic<uint64_t> nacks{0};
  std::atomic<uint64_t> rejected_joins{0};
  std::atomic<uint64_t> admin_requests{0};
  std::atomic<uint64_t> admin_denied{0};
  std::atomic<int64_t> store_revision{0};
  std::atomic<int64_t> resources{0};

  // Seconds from a snapshot being sent to its ACK.
  void observe_push_to_ack(double seconds);
  std::string text() const;

 private:
  static constexpr std::array<double, 12> kBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                      0.5,   1,    2.5,   5,    10,  30};
  mutable std::mutex mutex_;
  std::array<uint64_t, kBuckets.size()> bucket_counts_{};
  uint64_t count_ = 0;
  double sum_ = 0;
};

}  // namespace strait::controller
