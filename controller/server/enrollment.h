#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "controller/server/certificates.h"
#include "controller/server/credentials.h"
#include "controller/server/fleet.h"
#include "strait/v1/control.pb.h"

namespace strait::controller {

struct EnrollmentOptions {
  std::chrono::seconds certificate_ttl{std::chrono::hours(720)};
  // Enrolments and renewals together, over the whole controller.
  double rate_per_second = 20;
  double burst = 40;
};

// The labels of an enrolment: those the token grants (a grant "k=*" any value of k, "*=*"
// any label), and those it does not (recorded as requested, for an operator to grant).
struct LabelDecision {
  Labels granted;
  Labels refused;
};
LabelDecision decide_labels(const Labels& requested, const std::map<std::string, std::string>& grants);

// Turns a join token and a CSR into an agent certificate and record, and renews
// certificates. An id that holds a certificate still valid is never taken over: it enrols
// again only after `straitctl agents delete` or once that certificate expired.
class Enrollment {
 public:
  Enrollment(Fleet& fleet, Credentials& credentials, const CertificateAuthority& authority, ControllerMetrics& metrics,
             EnrollmentOptions options);

  absl::StatusOr<control::v1::EnrollResponse> enroll(std::string_view authorization,
                                                     const control::v1::EnrollRequest& request, const std::string& peer);
  absl::StatusOr<control::v1::EnrollResponse> renew(const AgentIdentity& identity,
                                                    const control::v1::RenewRequest& request, const std::string& peer);

 private:
  // False when the rate is exceeded (and logs that, once a second at most).
  bool admit(const std::string& peer);
  absl::Status refuse(Refusal reason, absl::Status status, const std::string& peer);

  Fleet& fleet_;
  Credentials& credentials_;
  const CertificateAuthority& authority_;
  ControllerMetrics& metrics_;
  EnrollmentOptions options_;

  std::mutex mutex_;  // one enrolment at a time: checking an id and recording it are one step
  double rate_tokens_;
  std::chrono::steady_clock::time_point rate_updated_;
  std::chrono::steady_clock::time_point rate_logged_;
  uint64_t rate_refused_since_log_ = 0;
};

}  // namespace strait::controller
