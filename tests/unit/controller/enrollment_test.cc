#include "controller/server/enrollment.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "common/agent_certificate.h"
#include "controller/store/sqlite_store.h"

namespace strait::controller {
namespace {

TEST(DecideLabelsTest, ATokenGrantsWhatItNamesAndAnyValueForAStar) {
  auto decision = decide_labels({{"role", "exit"}, {"zone", "eu"}, {"tier", "gold"}},
                                {{"role", "edge"}, {"zone", "*"}});
  EXPECT_EQ(decision.granted, (Labels{{"zone", "eu"}}));
  EXPECT_EQ(decision.refused, (Labels{{"role", "exit"}, {"tier", "gold"}}));
  EXPECT_TRUE(decide_labels({{"role", "exit"}}, {}).granted.empty());
  EXPECT_EQ(decide_labels({{"role", "exit"}}, {{"*", "*"}}).granted, (Labels{{"role", "exit"}}))
      << "a token from before grants grants any label";
}

class EnrollmentTest : public ::testing::Test {
 protected:
  EnrollmentTest() : dir_(std::filesystem::temp_directory_path() / ("strait-enrol-" + std::to_string(::getpid()))) {
    std::filesystem::create_directories(dir_);
    auto opened = open_sqlite_store(":memory:");
    EXPECT_TRUE(opened.ok());
    store_ = *std::move(opened);
    bool created = false;
    auto authority = CertificateAuthority::load_or_create(dir_.string(), created);
    EXPECT_TRUE(authority.ok() && created);
    authority_.emplace(*std::move(authority));
    fleet_ = std::make_unique<Fleet>(*store_, metrics_);
    EXPECT_TRUE(fleet_->load().ok());
    credentials_ = std::make_unique<Credentials>(*store_, "admin");
  }
  ~EnrollmentTest() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<Enrollment> enrollment(EnrollmentOptions options = {}) {
    return std::make_unique<Enrollment>(*fleet_, *credentials_, *authority_, metrics_, options);
  }

  std::string token(std::map<std::string, std::string> grants, int64_t ttl = 3600) {
    auto created = credentials_->create_join_token("test", ttl, grants);
    EXPECT_TRUE(created.ok()) << created.status();
    return "Bearer " + created->token();
  }

  static control::v1::EnrollRequest request(const std::string& id, Labels labels = {}) {
    control::v1::EnrollRequest request;
    request.set_agent_id(id);
    request.mutable_labels()->insert(labels.begin(), labels.end());
    auto key = common::make_agent_key(id);
    EXPECT_TRUE(key.ok());
    request.set_csr_pem(key->csr_pem);
    return request;
  }

  std::filesystem::path dir_;
  std::unique_ptr<Store> store_;
  std::optional<CertificateAuthority> authority_;
  ControllerMetrics metrics_;
  std::unique_ptr<Fleet> fleet_;
  std::unique_ptr<Credentials> credentials_;
};

TEST_F(EnrollmentTest, TheCertificateNamesTheAgentAndItsRecordHoldsOnlyGrantedLabels) {
  auto enrol = enrollment();
  auto response = enrol->enroll(token({{"role", "edge"}}), request("laptop-7", {{"role", "exit"}}), "peer");
  ASSERT_TRUE(response.ok()) << response.status();
  auto facts = common::read_certificate(response->certificate_pem());
  ASSERT_TRUE(facts.ok()) << facts.status();
  EXPECT_EQ(facts->agent_id, "laptop-7");
  EXPECT_TRUE(response->labels().empty());
  EXPECT_EQ(response->requested_labels().at("role"), "exit");
  auto record = fleet_->record("laptop-7");
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->certificate_serials(0), facts->serial_hex);
  EXPECT_EQ(metrics_.refusals(Refusal::kLabelsNotGranted), 1u);
}

TEST_F(EnrollmentTest, BadTokensIdsAndRequestsAreRefusedWithTheirReason) {
  auto enrol = enrollment();
  std::string good = token({});
  EXPECT_EQ(enrol->enroll("Bearer sj_made_up", request("a"), "peer").status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(enrol->enroll("", request("a"), "peer").status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(enrol->enroll(good, request("a"), "peer").status().code(), absl::StatusCode::kOk);
  EXPECT_EQ(enrol->enroll(good, request("a"), "peer").status().code(), absl::StatusCode::kAlreadyExists);
  auto bad_id = request("b");
  bad_id.set_agent_id("b\nINFO forged line");
  EXPECT_EQ(enrol->enroll(good, bad_id, "peer").status().code(), absl::StatusCode::kInvalidArgument);
  auto bad_csr = request("c");
  bad_csr.set_csr_pem("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n");
  EXPECT_EQ(enrol->enroll(good, bad_csr, "peer").status().code(), absl::StatusCode::kInvalidArgument);
  auto bad_label = request("d", {{"role", "a b"}});
  EXPECT_EQ(enrol->enroll(good, bad_label, "peer").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(metrics_.refusals(Refusal::kJoinToken), 2u);
  EXPECT_EQ(metrics_.refusals(Refusal::kIdTaken), 1u);
  EXPECT_EQ(metrics_.refusals(Refusal::kBadEnrolment), 3u);
}

TEST_F(EnrollmentTest, AnExpiredTokenEnrolsNoOne) {
  auto enrol = enrollment();
  auto created = credentials_->create_join_token("short", 1, {});
  ASSERT_TRUE(created.ok());
  // Tokens are checked against the clock in whole seconds: two seconds later it is gone.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  absl::StatusCode code = absl::StatusCode::kOk;
  for (int i = 0; std::chrono::steady_clock::now() < deadline; ++i) {
    code = enrol->enroll("Bearer " + created->token(), request("t" + std::to_string(i)), "peer").status().code();
    if (code != absl::StatusCode::kOk) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(code, absl::StatusCode::kUnauthenticated);
}

TEST_F(EnrollmentTest, AFloodOfEnrolmentsIsCutAtTheRate) {
  EnrollmentOptions options;
  options.rate_per_second = 0.1;
  options.burst = 3;
  auto enrol = enrollment(options);
  std::string good = token({});
  int admitted = 0;
  int limited = 0;
  for (int i = 0; i < 20; ++i) {
    auto code = enrol->enroll(good, request("flood-" + std::to_string(i)), "peer").status().code();
    admitted += code == absl::StatusCode::kOk;
    limited += code == absl::StatusCode::kResourceExhausted;
  }
  EXPECT_EQ(admitted, 3);
  EXPECT_EQ(limited, 17);
  EXPECT_EQ(metrics_.refusals(Refusal::kRateLimited), 17u);
}

TEST_F(EnrollmentTest, RenewalIssuesANewCertificateAndKeepsOnlyTheLastTwo) {
  EnrollmentOptions options;
  options.certificate_ttl = std::chrono::hours(1);
  auto enrol = enrollment(options);
  auto enrolled = enrol->enroll(token({}), request("edge-1"), "peer");
  ASSERT_TRUE(enrolled.ok());
  auto first = common::read_certificate(enrolled->certificate_pem());
  AgentIdentity identity{"edge-1", first->serial_hex, first->not_after_unix};
  control::v1::RenewRequest renew;
  renew.set_csr_pem(request("edge-1").csr_pem());
  auto renewed = enrol->renew(identity, renew, "peer");
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  auto second = common::read_certificate(renewed->certificate_pem());
  EXPECT_NE(second->serial_hex, first->serial_hex);
  AgentIdentity newer{"edge-1", second->serial_hex, second->not_after_unix};
  ASSERT_TRUE(enrol->renew(newer, renew, "peer").ok());
  // The first certificate is two renewals old: revoked.
  EXPECT_EQ(enrol->renew(identity, renew, "peer").status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(fleet_->record("edge-1")->certificate_serials_size(), 2);
}

TEST_F(EnrollmentTest, AnIdWhoseCertificateExpiredEnrolsAgainWithOnlyWhatTheNewTokenGrants) {
  EnrollmentOptions options;
  options.certificate_ttl = std::chrono::seconds(1);
  auto enrol = enrollment(options);
  ASSERT_TRUE(enrol->enroll(token({{"role", "*"}}), request("edge-1", {{"role", "exit"}}), "peer").ok());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  std::string narrow = token({{"role", "edge"}});
  absl::StatusOr<control::v1::EnrollResponse> again = absl::UnknownError("not tried");
  while (std::chrono::steady_clock::now() < deadline) {
    again = enrol->enroll(narrow, request("edge-1", {{"role", "edge"}}), "peer");
    if (again.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->labels().at("role"), "edge");
}

}  // namespace
}  // namespace strait::controller
