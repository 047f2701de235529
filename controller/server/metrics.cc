#include "controller/server/metrics.h"

#include <spdlog/fmt/fmt.h>

namespace strait::controller {

void ControllerMetrics::observe_push_to_ack(double seconds) {
  std::lock_guard lock(mutex_);
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) ++bucket_counts_[i];
  }
  ++count_;
  sum_ += seconds;
}

std::string ControllerMetrics::text() const {
  std::string out;
  auto metric = [&](const char* name, const char* type, const char* help, auto value) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name, type, name, value);
  };
  metric("strait_controller_agents_connected", "gauge", "Agents with an open control stream.", agents_connected.load());
  metric("strait_controller_agents_enrolled", "gauge", "Agents holding a certificate of this controller.",
         agents_enrolled.load());
  metric("strait_controller_snapshots_pushed_total", "counter", "Snapshots sent to agents.", snapshots_pushed.load());
  metric("strait_controller_acks_total", "counter", "Snapshots agents accepted.", acks.load());
  metric("strait_controller_nacks_total", "counter", "Snapshots agents refused.", nacks.load());
  metric("strait_controller_snapshots_built_total", "counter", "Snapshots computed, one per distinct label set.",
         snapshots_built.load());
  metric("strait_controller_pushes_skipped_on_connect_total", "counter",
         "Connecting agents that already served their snapshot.", pushes_skipped_on_connect.load());
  metric("strait_controller_streams_unanswered_total", "counter",
         "Agent streams closed because a snapshot went unanswered for the ack timeout.", streams_unanswered.load());
  metric("strait_controller_snapshots_oversized_total", "counter",
         "Snapshots larger than the limit, not sent.", snapshots_oversized.load());
  metric("strait_controller_enrolments_total", "counter", "Agents enrolled.", enrolments.load());
  metric("strait_controller_renewals_total", "counter", "Agent certificates renewed.", renewals.load());
  metric("strait_controller_agents_pruned_total", "counter", "Agents forgotten after their retention.",
         agents_pruned.load());
  static constexpr std::array<const char*, static_cast<size_t>(Refusal::kCount)> kReasons = {
      "join_token", "id_taken", "rate_limited", "bad_enrolment", "labels_not_granted",
      "no_certificate", "revoked", "duplicate_stream", "bad_hello"};
  out += "# HELP strait_controller_refusals_total Enrolments, streams and label requests refused, by reason.\n"
         "# TYPE strait_controller_refusals_total counter\n";
  for (size_t i = 0; i < kReasons.size(); ++i) {
    out += fmt::format("strait_controller_refusals_total{{reason=\"{}\"}} {}\n", kReasons[i], refusals_[i].load());
  }
  metric("strait_controller_admin_requests_total", "counter", "Admin API calls.", admin_requests.load());
  metric("strait_controller_admin_denied_total", "counter", "Admin API calls refused for their token.",
         admin_denied.load());
  metric("strait_controller_store_revision", "gauge", "Revision of the resource store.", store_revision.load());
  metric("strait_controller_resources", "gauge", "Resources in the store.", resources.load());
  std::lock_guard lock(mutex_);
  const char* name = "strait_controller_push_to_ack_seconds";
  out += fmt::format("# HELP {} Time from sending a snapshot to its ACK.\n# TYPE {} histogram\n", name, name);
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, kBuckets[i], bucket_counts_[i]);
  }
  out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n", name, count_, name, sum_, name, count_);
  return out;
}

}  // namespace strait::controller
