#include "controller/server/agent_service.h"

#include <deque>
#include <mutex>

#include <spdlog/spdlog.h>

#include "common/strings.h"

namespace strait::controller {
namespace {

using control::v1::AgentMessage;
using control::v1::ControllerMessage;

std::string metadata_value(const grpc::CallbackServerContext& context, const char* key) {
  auto range = context.client_metadata().equal_range(key);
  if (range.first == range.second) return "";
  return std::string(range.first->second.data(), range.first->second.size());
}

class AgentSession final : public grpc::ServerBidiReactor<AgentMessage, ControllerMessage>, public AgentStream {
 public:
  AgentSession(grpc::CallbackServerContext* context, Fleet& fleet, Credentials& credentials,
               ControllerMetrics& metrics)
      : fleet_(fleet), peer_(context->peer()) {
    if (!credentials.join_allowed(metadata_value(*context, "authorization"))) {
      metrics.rejected_joins.fetch_add(1);
      spdlog::warn("agent stream from {} refused: missing or invalid join token", peer_);
      finish(grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "join token missing, unknown or expired"));
      return;
    }
    StartRead(&incoming_);
  }

  void send(ControllerMessage message) override {
    std::lock_guard lock(mutex_);
    if (finished_) return;
    outgoing_.push_back(std::move(message));
    if (!writing_) {
      writing_ = true;
      StartWrite(&outgoing_.front());
    }
  }

  void close(const std::string& reason) override { finish(grpc::Status(grpc::StatusCode::ABORTED, reason)); }

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
    outgoing_.pop_front();
    if (!ok || finished_ || outgoing_.empty()) {
      writing_ = false;
      return;
    }
    StartWrite(&outgoing_.front());
  }

  void OnDone() override {
    if (session_ != 0) fleet_.disconnect(agent_id_, session_);
    delete this;
  }

 private:
  // False when the stream has been finished because of this message.
  bool handle(const AgentMessage& message) {
    if (session_ == 0) {
      if (!message.has_hello() || message.hello().agent_id().empty()) {
        spdlog::warn("agent stream from {}: the first message must be a Hello with an agent id", peer_);
        finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "first message must be a Hello with an agent id"));
        return false;
      }
      agent_id_ = message.hello().agent_id();
      session_ = fleet_.connect(message.hello(), peer_, this);
      return true;
    }
    switch (message.kind_case()) {
      case AgentMessage::kAck: fleet_.on_ack(agent_id_, session_, message.ack()); break;
      case AgentMessage::kStatus: fleet_.on_status(agent_id_, session_, message.status()); break;
      case AgentMessage::kHeartbeat: fleet_.on_heartbeat(agent_id_, session_); break;
      default: break;  // a repeated Hello or a newer message type: ignored
    }
    return true;
  }

  void finish(const grpc::Status& status) {
    std::lock_guard lock(mutex_);
    if (finished_) return;
    finished_ = true;
    Finish(status);
  }

  Fleet& fleet_;
  std::string peer_;
  std::string agent_id_;
  uint64_t session_ = 0;  // set by the Hello; read and written on reactor callbacks only
  AgentMessage incoming_;
  std::mutex mutex_;  // guards the write queue and finished_; never held while calling the fleet
  std::deque<ControllerMessage> outgoing_;
  bool writing_ = false;
  bool finished_ = false;
};

}  // namespace

grpc::ServerBidiReactor<AgentMessage, ControllerMessage>* AgentControlService::Connect(
    grpc::CallbackServerContext* context) {
  return new AgentSession(context, fleet_, credentials_, metrics_);
}

}  // namespace strait::controller
