#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

namespace strait::controller {

// Why the controller turned an agent (or someone posing as one) away.
enum class Refusal {
  kJoinToken,        // enrolment with a missing, unknown, expired or deleted token
  kIdTaken,          // enrolment for an id another agent holds
  kRateLimited,      // enrolments beyond the rate
  kBadEnrolment,     // an unusable CSR or agent id
  kLabelsNotGranted, // labels asked for that the token does not grant (enrolment goes on)
  kNoCertificate,    // a stream or renewal without an agent certificate
  kRevoked,          // a certificate of a deleted agent, or one superseded by renewal
  kDuplicateStream,  // a second live stream for one agent
  kBadHello,         // a Hello for another id or with oversized fields
  kCount,
};

// The controller's Prometheus metrics. Counters and gauges are atomics written from any
// thread; the histogram takes a short lock. text() renders the exposition format.
class ControllerMetrics {
 public:
  std::atomic<int64_t> agents_connected{0};
  std::atomic<int64_t> agents_enrolled{0};
  std::atomic<uint64_t> snapshots_pushed{0};
  std::atomic<uint64_t> acks{0};
  std::atomic<uint64_t> nacks{0};
  std::atomic<uint64_t> snapshots_built{0};
  std::atomic<uint64_t> pushes_skipped_on_connect{0};
  std::atomic<uint64_t> enrolments{0};
  std::atomic<uint64_t> renewals{0};
  std::atomic<uint64_t> agents_pruned{0};
  std::atomic<uint64_t> streams_unanswered{0};  // closed: a snapshot unanswered for the ack timeout
  std::atomic<uint64_t> snapshots_oversized{0};  // built larger than the limit, not sent
  std::atomic<uint64_t> admin_requests{0};
  std::atomic<uint64_t> admin_denied{0};
  std::atomic<int64_t> store_revision{0};
  std::atomic<int64_t> resources{0};

  void refused(Refusal reason) { refusals_[static_cast<size_t>(reason)].fetch_add(1); }
  uint64_t refusals(Refusal reason) const { return refusals_[static_cast<size_t>(reason)].load(); }

  // Seconds from a snapshot being sent to its ACK.
  void observe_push_to_ack(double seconds);
  std::string text() const;

 private:
  std::array<std::atomic<uint64_t>, static_cast<size_t>(Refusal::kCount)> refusals_{};
  static constexpr std::array<double, 12> kBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                      0.5,   1,    2.5,   5,    10,  30};
  mutable std::mutex mutex_;
  std::array<uint64_t, kBuckets.size()> bucket_counts_{};
  uint64_t count_ = 0;
  double sum_ = 0;
};

}  // namespace strait::controller
