#pragma once

#include "controller/server/credentials.h"
#include "controller/server/fleet.h"
#include "strait/v1/admin.grpc.pb.h"

namespace strait::controller {

// The Admin API (straitctl). Every call first checks the admin token.
class AdminService final : public admin::v1::Admin::Service {
 public:
  AdminService(Store& store, Fleet& fleet, Credentials& credentials, ControllerMetrics& metrics)
      : store_(store), fleet_(fleet), credentials_(credentials), metrics_(metrics) {}

  grpc::Status Apply(grpc::ServerContext* context, const admin::v1::ApplyRequest* request,
                     admin::v1::ApplyResponse* response) override;
  grpc::Status Get(grpc::ServerContext* context, const admin::v1::GetRequest* request,
                   admin::v1::Resource* response) override;
  grpc::Status List(grpc::ServerContext* context, const admin::v1::ListRequest* request,
                    admin::v1::ListResponse* response) override;
  grpc::Status Delete(grpc::ServerContext* context, const admin::v1::DeleteRequest* request,
                      admin::v1::DeleteResponse* response) override;
  grpc::Status Diff(grpc::ServerContext* context, const admin::v1::DiffRequest* request,
                    admin::v1::DiffResponse* response) override;
  grpc::Status Watch(grpc::ServerContext* context, const admin::v1::WatchRequest* request,
                     grpc::ServerWriter<admin::v1::WatchEvent>* writer) override;
  grpc::Status Agents(grpc::ServerContext* context, const admin::v1::AgentsRequest* request,
                      admin::v1::AgentsResponse* response) override;
  grpc::Status CreateToken(grpc::ServerContext* context, const admin::v1::CreateTokenRequest* request,
                           admin::v1::CreateTokenResponse* response) override;
  grpc::Status ListTokens(grpc::ServerContext* context, const admin::v1::ListTokensRequest* request,
                          admin::v1::ListTokensResponse* response) override;
  grpc::Status DeleteToken(grpc::ServerContext* context, const admin::v1::DeleteTokenRequest* request,
                           admin::v1::DeleteTokenResponse* response) override;
  grpc::Status DeleteAgent(grpc::ServerContext* context, const admin::v1::DeleteAgentRequest* request,
                           admin::v1::DeleteAgentResponse* response) override;
  grpc::Status LabelAgent(grpc::ServerContext* context, const admin::v1::LabelAgentRequest* request,
                          admin::v1::AgentInfo* response) override;

 private:
  grpc::Status authorize(grpc::ServerContext& context);
  // Refuses `resource` when, applied, it would make some agent's snapshot too large to send.
  absl::Status check_snapshot_sizes_with(const Resource& resource);

  Store& store_;
  Fleet& fleet_;
  Credentials& credentials_;
  ControllerMetrics& metrics_;
};

}  // namespace strait::controller
