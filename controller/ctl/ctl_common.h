#pragma once

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "controller/ctl/ctl_config.h"
#include "strait/v1/admin.grpc.pb.h"

namespace strait::ctl {

// What every straitctl command shares: its exit codes, how it fails, and its Admin API client.

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

// Prints "straitctl: <message>" to stderr and returns code, so that a command can end with it.
int fail(const std::string& message, int code = kExitFailure);
// The same for a failed call, with a hint at the usual cause.
int fail(const grpc::Status& status);

// A file's contents, or stdin's for "-"; empty if it cannot be read.
std::string read_input(const std::string& path);

class Ctl {
 public:
  explicit Ctl(const Connection& connection) : connection_(connection) {}

  absl::Status connect();

  // For a unary call: authorized, and bounded so that a dead controller ends the command.
  std::unique_ptr<grpc::ClientContext> context() const;
  // For a stream that lasts until the user stops it.
  std::unique_ptr<grpc::ClientContext> stream_context() const;

  admin::v1::Admin::Stub& stub() { return *stub_; }

 private:
  Connection connection_;
  std::unique_ptr<admin::v1::Admin::Stub> stub_;
};

}  // namespace strait::ctl
