// AgentControl over real gRPC with TLS on loopback: who may enrol, who may open a stream, and
// what a Hello may carry.
#include "controller/server/agent_service.h"

#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>

#include <filesystem>
#include <thread>

#include "common/agent_certificate.h"
#include "controller/store/sqlite_store.h"

namespace strait::controller {
namespace {

using control::v1::AgentMessage;
using control::v1::ControllerMessage;

class AgentServiceTest : public ::testing::Test {
 protected:
  AgentServiceTest() : dir_(std::filesystem::temp_directory_path() / ("strait-agent-svc-" + std::to_string(::getpid()))) {
    std::filesystem::create_directories(dir_);
    store_ = *open_sqlite_store(":memory:");
    bool created = false;
    authority_.emplace(*CertificateAuthority::load_or_create(dir_.string(), created));
    fleet_ = std::make_unique<Fleet>(*store_, metrics_);
    EXPECT_TRUE(fleet_->load().ok());
    credentials_ = std::make_unique<Credentials>(*store_, "admin");
    token_ = credentials_->create_join_token("test", 3600, {})->token();
    enrollment_ = std::make_unique<Enrollment>(*fleet_, *credentials_, *authority_, metrics_, EnrollmentOptions{});
    service_ = std::make_unique<AgentControlService>(*fleet_, *enrollment_, metrics_);
    auto server_certificate = authority_->issue_server({});
    grpc::SslServerCredentialsOptions ssl(GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
    ssl.pem_root_certs = authority_->cert_pem();
    ssl.pem_key_cert_pairs.push_back({server_certificate->key_pem, server_certificate->cert_pem});
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::SslServerCredentials(ssl), &port_);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
  }
  ~AgentServiceTest() override {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    std::filesystem::remove_all(dir_);
  }

  std::unique_ptr<control::v1::AgentControl::Stub> stub(const std::string& key_pem = "", const std::string& cert_pem = "") {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = authority_->cert_pem();
    ssl.pem_private_key = key_pem;
    ssl.pem_cert_chain = cert_pem;
    grpc::ChannelArguments arguments;
    arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection per stub: one identity each
    return control::v1::AgentControl::NewStub(
        grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port_), grpc::SslCredentials(ssl), arguments));
  }

  static std::unique_ptr<grpc::ClientContext> context() {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return context;
  }

  // An enrolled agent's key and certificate.
  std::pair<std::string, std::string> enrol(const std::string& id) {
    auto key = common::make_agent_key(id);
    control::v1::EnrollRequest request;
    request.set_agent_id(id);
    request.set_csr_pem(key->csr_pem);
    auto call = context();
    call->AddMetadata("authorization", "Bearer " + token_);
    control::v1::EnrollResponse response;
    grpc::Status status = stub()->Enroll(call.get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return {key->key_pem, response.certificate_pem()};
  }

  // Opens a stream, sends `hello` and returns how the stream ended (or OK with a snapshot).
  grpc::Status hello(control::v1::AgentControl::Stub& stub, const control::v1::Hello& hello,
                     ControllerMessage* first = nullptr) {
    auto call = context();
    auto stream = stub.Connect(call.get());
    AgentMessage message;
    *message.mutable_hello() = hello;
    stream->Write(message);
    ControllerMessage incoming;
    if (stream->Read(&incoming)) {
      if (first != nullptr) *first = incoming;
      call->TryCancel();
      stream->Finish();
      return grpc::Status::OK;
    }
    return stream->Finish();
  }

  // Enrols `id` and opens its first stream, which ends after its first message, `first`.
  std::unique_ptr<control::v1::AgentControl::Stub> enrol_and_connect(const std::string& id, ControllerMessage& first) {
    auto [key, cert] = enrol(id);
    auto agent = stub(key, cert);
    control::v1::Hello greeting;
    greeting.set_agent_id(id);
    EXPECT_TRUE(hello(*agent, greeting, &first).ok());
    return agent;
  }

  std::filesystem::path dir_;
  std::unique_ptr<Store> store_;
  std::optional<CertificateAuthority> authority_;
  ControllerMetrics metrics_;
  std::unique_ptr<Fleet> fleet_;
  std::unique_ptr<Credentials> credentials_;
  std::string token_;
  std::unique_ptr<Enrollment> enrollment_;
  std::unique_ptr<AgentControlService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

TEST_F(AgentServiceTest, AnEnrolledAgentConnectsWithItsCertificateAndGetsItsSnapshot) {
  ControllerMessage first;
  enrol_and_connect("edge-1", first);
  EXPECT_TRUE(first.has_snapshot());
}

TEST_F(AgentServiceTest, AnAgentHoldingItsSnapshotIsToldItIsServedAndSentNothing) {
  ControllerMessage first;
  auto agent = enrol_and_connect("edge-1", first);
  ASSERT_TRUE(first.has_snapshot());
  // That stream is cancelled; once the fleet saw it go, the agent comes back serving it.
  auto gone = [&] {
    for (const auto& info : fleet_->agents()) {
      if (info.connected()) return false;
    }
    return true;
  };
  for (int i = 0; i < 500 && !gone(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(gone());
  control::v1::Hello greeting;
  greeting.set_agent_id("edge-1");
  greeting.set_applied_version(first.snapshot().version());
  auto call = context();
  auto stream = agent->Connect(call.get());
  AgentMessage message;
  *message.mutable_hello() = greeting;
  ASSERT_TRUE(stream->Write(message));
  stream->WaitForInitialMetadata();
  const auto& metadata = call->GetServerInitialMetadata();
  EXPECT_NE(metadata.find(kAdmittedMetadata), metadata.end());
  EXPECT_EQ(metrics_.pushes_skipped_on_connect.load(), 1u);
  call->TryCancel();
  stream->Finish();
}

TEST_F(AgentServiceTest, AStreamWithoutAnAgentCertificateIsRefused) {
  auto anonymous = stub();
  control::v1::Hello greeting;
  greeting.set_agent_id("edge-1");
  grpc::Status status = hello(*anonymous, greeting);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(metrics_.refusals(Refusal::kNoCertificate), 1u);
}

TEST_F(AgentServiceTest, AHelloForAnotherIdOrWithOversizedFieldsIsRefused) {
  auto [key, cert] = enrol("edge-1");
  auto agent = stub(key, cert);
  control::v1::Hello impostor;
  impostor.set_agent_id("exit-1");
  EXPECT_EQ(hello(*agent, impostor).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  control::v1::Hello oversized;
  oversized.set_agent_version(std::string(4096, 'v'));
  EXPECT_EQ(hello(*agent, oversized).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  control::v1::Hello many;
  for (int i = 0; i < 600; ++i) many.add_capabilities("handler/x");
  EXPECT_EQ(hello(*agent, many).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(metrics_.refusals(Refusal::kBadHello), 3u);
  // The agent itself still gets in.
  EXPECT_TRUE(hello(*agent, control::v1::Hello()).ok());
}

TEST_F(AgentServiceTest, RenewalNeedsTheAgentsCertificate) {
  control::v1::RenewRequest request;
  request.set_csr_pem(common::make_agent_key("edge-1")->csr_pem);
  control::v1::EnrollResponse response;
  auto call = context();
  EXPECT_EQ(stub()->Renew(call.get(), request, &response).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  auto [key, cert] = enrol("edge-1");
  auto renewed_call = context();
  grpc::Status status = stub(key, cert)->Renew(renewed_call.get(), request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(common::read_certificate(response.certificate_pem())->agent_id, "edge-1");
}

TEST_F(AgentServiceTest, ACertificateFromAnotherAuthorityDoesNotGetThrough) {
  bool created = false;
  auto foreign_dir = dir_ / "foreign";
  std::filesystem::create_directories(foreign_dir);
  auto foreign = CertificateAuthority::load_or_create(foreign_dir.string(), created);
  ASSERT_TRUE(foreign.ok());
  auto key = common::make_agent_key("edge-1");
  auto forged = foreign->issue_agent(key->csr_pem, "edge-1", std::chrono::hours(1));
  ASSERT_TRUE(forged.ok());
  enrol("edge-1");  // the real edge-1 exists
  auto impostor = stub(key->key_pem, forged->cert_pem);
  control::v1::Hello greeting;
  EXPECT_FALSE(hello(*impostor, greeting).ok()) << "the TLS handshake refuses it";
  for (const auto& agent : fleet_->agents()) EXPECT_FALSE(agent.connected());
}

}  // namespace
}  // namespace strait::controller
