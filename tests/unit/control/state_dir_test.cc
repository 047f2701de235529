#include "agent/control/state_dir.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/agent_certificate.h"
#include "controller/server/certificates.h"

namespace strait::agent {
namespace {

class StateDirTest : public ::testing::Test {
 protected:
  StateDirTest()
      : path_(std::filesystem::temp_directory_path() / ("strait-state-" + std::to_string(::getpid())) / "nested") {}
  ~StateDirTest() override { std::filesystem::remove_all(path_.parent_path()); }
  std::filesystem::path path_;
};

TEST_F(StateDirTest, KeepsTheLastSnapshotPrivately) {
  auto state = StateDir::open(path_.string());
  ASSERT_TRUE(state.ok()) << state.status();
  struct stat info {};
  ASSERT_EQ(::stat(path_.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0700u) << "snapshots hold proxy passwords";
  EXPECT_FALSE(state->load_snapshot()->has_value()) << "nothing saved yet";

  control::v1::Snapshot first;
  first.set_version("3.abc");
  first.mutable_config()->add_services()->set_name("entry");
  ASSERT_TRUE(state->save_snapshot(first).ok());
  control::v1::Snapshot second = first;
  second.set_version("4.def");
  ASSERT_TRUE(state->save_snapshot(second).ok());
  auto loaded = StateDir::open(path_.string())->load_snapshot();
  ASSERT_TRUE(loaded.ok() && loaded->has_value());
  EXPECT_EQ((*loaded)->version(), "4.def");
  EXPECT_EQ((*loaded)->config().services(0).name(), "entry");
  EXPECT_FALSE(std::filesystem::exists(path_ / "snapshot.pb.tmp")) << "the temporary file is renamed away";
}

TEST_F(StateDirTest, RefusesAFileThatIsNotASnapshot) {
  auto state = StateDir::open(path_.string());
  ASSERT_TRUE(state.ok());
  std::ofstream(path_ / "snapshot.pb") << "\xff\xff\xff garbage";
  auto loaded = state->load_snapshot();
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.status().message().find("is not a snapshot"), std::string::npos);
}

TEST_F(StateDirTest, KeepsTheIdentityPrivatelyAndRefusesAKeyThatIsNotTheCertificates) {
  auto state = StateDir::open(path_.string());
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_FALSE(state->load_identity()->has_value()) << "not enrolled yet";
  bool created = false;
  auto authority = controller::CertificateAuthority::load_or_create(path_.parent_path().string(), created);
  ASSERT_TRUE(authority.ok()) << authority.status();
  auto key = common::make_agent_key("edge-1");
  auto other_key = common::make_agent_key("edge-1");
  auto cert = authority->issue_agent(key->csr_pem, "edge-1", std::chrono::hours(1));
  ASSERT_TRUE(cert.ok()) << cert.status();
  ASSERT_TRUE(state->save_identity({key->key_pem, cert->cert_pem}).ok());
  struct stat info {};
  ASSERT_EQ(::stat(state->identity_path().c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u) << "the agent's private key";
  auto loaded = state->load_identity();
  ASSERT_TRUE(loaded.ok() && loaded->has_value());
  EXPECT_EQ((*loaded)->cert_pem, cert->cert_pem);
  ASSERT_TRUE(state->save_identity({other_key->key_pem, cert->cert_pem}).ok());
  EXPECT_EQ(state->load_identity().status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace strait::agent
