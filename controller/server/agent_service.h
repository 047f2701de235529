#pragma once

#include "controller/server/enrollment.h"
#include "controller/server/fleet.h"
#include "strait/v1/control.grpc.pb.h"

namespace strait::controller {

// Initial metadata of a stream the fleet took: the agent knows it is served even when it
// holds its snapshot already, so that nothing else comes down the stream.
inline constexpr char kAdmittedMetadata[] = "strait-admitted";

// AgentControl: one reactor per agent stream (gRPC's callback API, so a thousand agents cost
// a thousand small objects, not a thousand threads), and enrolment and renewal.
class AgentControlService final : public control::v1::AgentControl::CallbackService {
 public:
  AgentControlService(Fleet& fleet, Enrollment& enrollment, ControllerMetrics& metrics)
      : fleet_(fleet), enrollment_(enrollment), metrics_(metrics) {}

  grpc::ServerBidiReactor<control::v1::AgentMessage, control::v1::ControllerMessage>* Connect(
      grpc::CallbackServerContext* context) override;
  grpc::ServerUnaryReactor* Enroll(grpc::CallbackServerContext* context, const control::v1::EnrollRequest* request,
                                   control::v1::EnrollResponse* response) override;
  grpc::ServerUnaryReactor* Renew(grpc::CallbackServerContext* context, const control::v1::RenewRequest* request,
                                  control::v1::EnrollResponse* response) override;

 private:
  Fleet& fleet_;
  Enrollment& enrollment_;
  ControllerMetrics& metrics_;
};

}  // namespace strait::controller
