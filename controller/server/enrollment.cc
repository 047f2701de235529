#include "controller/server/enrollment.h"

#include <spdlog/spdlog.h>

#include "common/agent_certificate.h"
#include "common/log_escape.h"
#include "common/strings.h"
#include "controller/resource/resource.h"

namespace strait::controller {
namespace {

using common::str_cat;

constexpr size_t kMaxAgentVersion = 64;
constexpr int kMaxRequestedLabels = 64;

int64_t now_unix() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string labels_text(const Labels& labels) {
  std::string text = label_key(labels);
  return text.empty() ? "none" : text;
}

control::v1::EnrollResponse response_for(const AgentRecord& record, const AgentCertificate& certificate) {
  control::v1::EnrollResponse response;
  response.set_agent_id(record.id());
  response.set_certificate_pem(certificate.cert_pem);
  *response.mutable_labels() = record.labels();
  *response.mutable_requested_labels() = record.requested_labels();
  response.set_expires_unix(certificate.not_after_unix);
  return response;
}

}  // namespace

LabelDecision decide_labels(const Labels& requested, const std::map<std::string, std::string>& grants) {
  LabelDecision decision;
  bool any = grants.contains("*");
  for (const auto& [key, value] : requested) {
    auto grant = grants.find(key);
    bool granted = any || (grant != grants.end() && (grant->second == "*" || grant->second == value));
    (granted ? decision.granted : decision.refused)[key] = value;
  }
  return decision;
}

Enrollment::Enrollment(Fleet& fleet, Credentials& credentials, const CertificateAuthority& authority,
                       ControllerMetrics& metrics, EnrollmentOptions options)
    : fleet_(fleet),
      credentials_(credentials),
      authority_(authority),
      metrics_(metrics),
      options_(options),
      rate_tokens_(options.burst),
      rate_updated_(std::chrono::steady_clock::now()) {}

bool Enrollment::admit(const std::string& peer) {
  auto now = std::chrono::steady_clock::now();
  rate_tokens_ = std::min(options_.burst,
                          rate_tokens_ + std::chrono::duration<double>(now - rate_updated_).count() * options_.rate_per_second);
  rate_updated_ = now;
  if (rate_tokens_ >= 1) {
    rate_tokens_ -= 1;
    return true;
  }
  metrics_.refused(Refusal::kRateLimited);
  ++rate_refused_since_log_;
  if (now - rate_logged_ >= std::chrono::seconds(1)) {
    spdlog::warn("enrolment from {} refused: more than {}/s; {} refused since the last such line", peer,
                 options_.rate_per_second, rate_refused_since_log_);
    rate_logged_ = now;
    rate_refused_since_log_ = 0;
  }
  return false;
}

absl::Status Enrollment::refuse(Refusal reason, absl::Status status, const std::string& peer) {
  metrics_.refused(reason);
  spdlog::warn("enrolment from {} refused: {}", peer, common::text_escaped(common::to_std(status.message())));
  return status;
}

absl::StatusOr<control::v1::EnrollResponse> Enrollment::enroll(std::string_view authorization,
                                                               const control::v1::EnrollRequest& request,
                                                               const std::string& peer) {
  std::lock_guard lock(mutex_);
  if (!admit(peer)) return absl::ResourceExhaustedError("too many enrolments; try again later");
  auto token = credentials_.join_token(authorization);
  if (!token) {
    return refuse(Refusal::kJoinToken, absl::UnauthenticatedError("join token missing, unknown, expired or deleted"),
                  peer);
  }
  if (!common::valid_agent_id(request.agent_id())) {
    return refuse(Refusal::kBadEnrolment,
                  absl::InvalidArgumentError(
                      "agent_id: 1-63 of letters, digits, '-', '.' and '_', starting with a letter or digit"),
                  peer);
  }
  if (request.labels_size() > kMaxRequestedLabels) {
    return refuse(Refusal::kBadEnrolment, absl::InvalidArgumentError("labels: more than 64"), peer);
  }
  if (auto status = check_labels(request.labels(), "labels"); !status.ok()) {
    return refuse(Refusal::kBadEnrolment, status, peer);
  }
  if (request.agent_version().size() > kMaxAgentVersion) {
    return refuse(Refusal::kBadEnrolment, absl::InvalidArgumentError("agent_version: longer than 64 bytes"), peer);
  }
  const std::string& id = request.agent_id();
  int64_t now = now_unix();
  AgentCertificate certificate;
  LabelDecision labels;
  bool again = false;
  auto enrolled = fleet_.update_record(id, [&](std::optional<AgentRecord>& record) -> absl::Status {
    if (record && record->certificate_expires_unix() > now) {
      return refuse(Refusal::kIdTaken,
                    absl::AlreadyExistsError(str_cat("agent ", id, " is enrolled and its certificate is valid; ",
                                                     "`straitctl agents delete ", id, "` lets the id enrol again")),
                    peer);
    }
    auto issued = authority_.issue_agent(request.csr_pem(), id, options_.certificate_ttl);
    if (!issued.ok()) return refuse(Refusal::kBadEnrolment, issued.status(), peer);
    certificate = *std::move(issued);
    labels = decide_labels(Labels(request.labels().begin(), request.labels().end()), token->grants);
    again = record.has_value();
    if (again) {
      // A re-enrolment after expiry starts from what this token grants; what the agent held
      // beyond that waits for an operator again.
      for (const auto& [key, value] : record->labels()) {
        if (!labels.granted.contains(key)) labels.refused.emplace(key, value);
      }
    }
    const int64_t revision = record ? record->revision() : 0;  // what this enrolment replaces
    record.emplace();
    record->set_id(id);
    record->set_revision(revision);
    record->mutable_labels()->insert(labels.granted.begin(), labels.granted.end());
    record->mutable_requested_labels()->insert(labels.refused.begin(), labels.refused.end());
    record->set_token_id(token->id);
    record->set_enrolled_unix(now);
    record->add_certificate_serials(certificate.serial_hex);
    record->set_certificate_expires_unix(certificate.not_after_unix);
    record->set_last_seen_unix(now);
    return absl::OkStatus();
  });
  if (!enrolled.ok()) return enrolled.status();
  if (!labels.refused.empty()) {
    metrics_.refused(Refusal::kLabelsNotGranted);
    spdlog::warn("agent {} asked for labels {} that token {} does not grant; recorded as requested", id,
                 labels_text(labels.refused), token->id);
  }
  metrics_.enrolments.fetch_add(1);
  spdlog::info("agent {} enrolled from {} with token {}{} (labels {}, certificate until {})", id, peer, token->id,
               again ? " again, its old certificate expired" : "", labels_text(labels.granted),
               common::utc_timestamp(certificate.not_after_unix));
  return response_for(*enrolled, certificate);
}

absl::StatusOr<control::v1::EnrollResponse> Enrollment::renew(const AgentIdentity& identity,
                                                              const control::v1::RenewRequest& request,
                                                              const std::string& peer) {
  std::lock_guard lock(mutex_);
  if (!admit(peer)) return absl::ResourceExhaustedError("too many renewals; try again later");
  AgentCertificate certificate;
  auto renewed = fleet_.update_record(identity.id, [&](std::optional<AgentRecord>& record) -> absl::Status {
    if (!record || std::find(record->certificate_serials().begin(), record->certificate_serials().end(),
                             identity.serial_hex) == record->certificate_serials().end()) {
      return refuse(Refusal::kRevoked,
                    absl::PermissionDeniedError(str_cat("agent ", identity.id, ": this certificate was revoked")),
                    peer);
    }
    auto issued = authority_.issue_agent(request.csr_pem(), identity.id, options_.certificate_ttl);
    if (!issued.ok()) return refuse(Refusal::kBadEnrolment, issued.status(), peer);
    certificate = *std::move(issued);
    // The renewing certificate stays usable until the next renewal, in case the agent could
    // not keep the new one.
    record->clear_certificate_serials();
    record->add_certificate_serials(certificate.serial_hex);
    record->add_certificate_serials(identity.serial_hex);
    record->set_certificate_expires_unix(certificate.not_after_unix);
    return absl::OkStatus();
  });
  if (!renewed.ok()) return renewed.status();
  metrics_.renewals.fetch_add(1);
  spdlog::info("agent {} renewed its certificate (until {})", identity.id,
               common::utc_timestamp(certificate.not_after_unix));
  return response_for(*renewed, certificate);
}

}  // namespace strait::controller
