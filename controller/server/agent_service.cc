#include "controller/server/agent_service.h"

#include <grpc/grpc_security_constants.h>
#include <spdlog/spdlog.h>

#include "common/agent_certificate.h"
#include "common/log_escape.h"
#include "common/strings.h"

namespace strait::controller {
namespace {

using control::v1::AgentMessage;
using control::v1::ControllerMessage;

// Hello fields are the agent's own words: bounded, so a Hello costs what a Hello should.
constexpr size_t kMaxHelloString = 128;
constexpr int kMaxCapabilities = 512;

grpc::Status to_grpc(const absl::Status& status) {
  return grpc::Status(static_cast<grpc::StatusCode>(static_cast<int>(status.code())), std::string(status.message()));
}

std::string metadata_value(const grpc::CallbackServerContext& context, const char* key) {
  auto range = context.client_metadata().equal_range(key);
  if (range.first == range.second) return "";
  return std::string(range.first->second.data(), range.first->second.size());
}

// The agent the verified client certificate names; an error when there is none.
absl::StatusOr<AgentIdentity> peer_identity(const grpc::CallbackServerContext& context) {
  auto auth = context.auth_context();
  if (!auth) return absl::UnauthenticatedError("no TLS");
  auto pem = auth->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
  if (pem.empty()) return absl::UnauthenticatedError("no agent certificate: enrol first (a join token gets one)");
  auto facts = common::read_certificate(std::string_view(pem.front().data(), pem.front().size()));
  if (!facts.ok()) return absl::UnauthenticatedError(common::str_cat("agent certificate: ", facts.status().message()));
  if (facts->agent_id.empty()) return absl::UnauthenticatedError("the client certificate names no agent");
  return AgentIdentity{facts->agent_id, facts->serial_hex, facts->not_after_unix};
}

absl::Status check_hello(const control::v1::Hello& hello, const AgentIdentity& identity) {
  if (!hello.agent_id().empty() && hello.agent_id() != identity.id) {
    return absl::PermissionDeniedError(
        common::str_cat("Hello names agent \"", common::text_escaped(hello.agent_id().substr(0, kMaxHelloString)),
                        "\" but the certificate is agent ", identity.id));
  }
  if (hello.agent_version().size() > kMaxHelloString) return absl::InvalidArgumentError("agent_version: too long");
  if (hello.applied_version().size() > kMaxHelloString) return absl::InvalidArgumentError("applied_version: too long");
  if (hello.capabilities_size() > kMaxCapabilities) return absl::InvalidArgumentError("capabilities: too many");
  for (const auto& capability : hello.capabilities()) {
    if (capability.size() > kMaxHelloString) return absl::InvalidArgumentError("capabilities: an entry is too long");
  }
  return absl::OkStatus();
}

class AgentSession final : public grpc::ServerBidiReactor<AgentMessage, ControllerMessage>, public AgentStream {
 public:
  AgentSession(grpc::CallbackServerContext* context, Fleet& fleet, ControllerMetrics& metrics)
      : context_(context), fleet_(fleet), metrics_(metrics), peer_(context->peer()) {
    auto identity = peer_identity(*context);
    if (!identity.ok()) {
      metrics_.refused(Refusal::kNoCertificate);
      spdlog::warn("agent stream from {} refused: {}", peer_, common::to_std(identity.status().message()));
      finish(to_grpc(identity.status()));
      return;
    }
    identity_ = *std::move(identity);
    StartRead(&incoming_);
  }

  void send(std::shared_ptr<const ControllerMessage> message) override {
    std::lock_guard lock(mutex_);
    if (finished_) return;
    if (writing_ || !admitted_) {
      // A newer one before the last write completed, or the first one, which goes out when
      // connect() has returned, carrying the admission.
      next_ = std::move(message);
      return;
    }
    writing_ = true;
    current_ = std::move(message);
    StartWrite(current_.get());
  }

  void close(const absl::Status& status) override { finish(to_grpc(status)); }

  void OnReadDone(bool ok) override {
    if (!ok) {
      finish(grpc::Status::OK);  // the agent closed its side
      return;
    }
    if (!handle(incoming_)) return;
    StartRead(&incoming_);
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard lock(mutex_);
    current_.reset();
    if (!ok || finished_ || next_ == nullptr) {
      writing_ = false;
      next_.reset();
      return;
    }
    current_ = std::move(next_);
    StartWrite(current_.get());
  }

  void OnDone() override {
    if (session_ != 0) fleet_.disconnect(identity_.id, session_);
    delete this;
  }

 private:
  // False when the stream has been finished because of this message.
  bool handle(const AgentMessage& message) {
    if (session_ == 0) {
      if (!message.has_hello()) {
        return refuse(Refusal::kBadHello, absl::InvalidArgumentError("the first message must be a Hello"));
      }
      if (auto status = check_hello(message.hello(), identity_); !status.ok()) return refuse(Refusal::kBadHello, status);
      auto session = fleet_.connect(identity_, message.hello(), peer_, this);
      if (!session.ok()) {
        // The fleet counted it.
        spdlog::warn("agent {} stream from {} refused: {}", identity_.id, peer_, common::to_std(session.status().message()));
        finish(to_grpc(session.status()));
        return false;
      }
      session_ = *session;
      admit();
      return true;
    }
    switch (message.kind_case()) {
      case AgentMessage::kAck: fleet_.on_ack(identity_.id, session_, message.ack()); break;
      case AgentMessage::kStatus: fleet_.on_status(identity_.id, session_, message.status()); break;
      case AgentMessage::kHeartbeat: fleet_.on_heartbeat(identity_.id, session_); break;
      default: break;  // a repeated Hello or a newer message type: ignored
    }
    return true;
  }

  bool refuse(Refusal reason, const absl::Status& status) {
    metrics_.refused(reason);
    spdlog::warn("agent {} stream from {} refused: {}", identity_.id, peer_, common::to_std(status.message()));
    finish(to_grpc(status));
    return false;
  }

  // Tells the agent it is served: its first snapshot, or the initial metadata alone when it
  // holds its snapshot already.
  void admit() {
    std::lock_guard lock(mutex_);
    if (finished_) return;
    admitted_ = true;
    context_->AddInitialMetadata(kAdmittedMetadata, "1");
    if (next_ == nullptr) {
      StartSendInitialMetadata();
      return;
    }
    writing_ = true;
    current_ = std::move(next_);
    StartWrite(current_.get());
  }

  void finish(const grpc::Status& status) {
    std::lock_guard lock(mutex_);
    if (finished_) return;
    finished_ = true;
    Finish(status);
  }

  grpc::CallbackServerContext* context_;
  Fleet& fleet_;
  ControllerMetrics& metrics_;
  std::string peer_;
  AgentIdentity identity_;
  uint64_t session_ = 0;  // set by the Hello; read and written on reactor callbacks only
  AgentMessage incoming_;
  std::mutex mutex_;  // guards the writes and finished_; never held while calling the fleet
  std::shared_ptr<const ControllerMessage> current_;  // being written
  std::shared_ptr<const ControllerMessage> next_;
  bool writing_ = false;
  bool admitted_ = false;
  bool finished_ = false;
};

}  // namespace

grpc::ServerBidiReactor<AgentMessage, ControllerMessage>* AgentControlService::Connect(
    grpc::CallbackServerContext* context) {
  return new AgentSession(context, fleet_, metrics_);
}

grpc::ServerUnaryReactor* AgentControlService::Enroll(grpc::CallbackServerContext* context,
                                                      const control::v1::EnrollRequest* request,
                                                      control::v1::EnrollResponse* response) {
  auto* reactor = context->DefaultReactor();
  auto enrolled = enrollment_.enroll(metadata_value(*context, "authorization"), *request, context->peer());
  if (enrolled.ok()) *response = *std::move(enrolled);
  reactor->Finish(enrolled.ok() ? grpc::Status::OK : to_grpc(enrolled.status()));
  return reactor;
}

grpc::ServerUnaryReactor* AgentControlService::Renew(grpc::CallbackServerContext* context,
                                                     const control::v1::RenewRequest* request,
                                                     control::v1::EnrollResponse* response) {
  auto* reactor = context->DefaultReactor();
  auto identity = peer_identity(*context);
  if (!identity.ok()) {
    metrics_.refused(Refusal::kNoCertificate);
    spdlog::warn("certificate renewal from {} refused: {}", context->peer(), common::to_std(identity.status().message()));
    reactor->Finish(to_grpc(identity.status()));
    return reactor;
  }
  auto renewed = enrollment_.renew(*identity, *request, context->peer());
  if (renewed.ok()) *response = *std::move(renewed);
  reactor->Finish(renewed.ok() ? grpc::Status::OK : to_grpc(renewed.status()));
  return reactor;
}

}  // namespace strait::controller
