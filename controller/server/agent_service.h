#pragma once

#include "controller/server/credentials.h"
#include "controller/server/fleet.h"
#include "strait/v1/control.grpc.pb.h"

namespace strait::controller {

// AgentControl.Connect: one reactor per agent stream (gRPC's callback API, so a thousand
// agents cost a thousand small objects, not a thousand threads).
class AgentControlService final : public control::v1::AgentControl::CallbackService {
 public:
  AgentControlService(Fleet& fleet, Credentials& credentials, ControllerMetrics& metrics)
      : fleet_(fleet), credentials_(credentials), metrics_(metrics) {}

  grpc::ServerBidiReactor<control::v1::AgentMessage, control::v1::ControllerMessage>* Connect(
      grpc::CallbackServerContext* context) override;

 private:
  Fleet& fleet_;
  Credentials& credentials_;
  ControllerMetrics& metrics_;
};

}  // namespace strait::controller
