#include "controller/ctl/ctl_common.h"

#include <chrono>
#include <fstream>
#include <iostream>
#include <sstream>

#include "common/strings.h"

namespace strait::ctl {

using common::str_cat;

int fail(const std::string& message, int code) {
  std::cerr << "straitctl: " << message << "\n";
  return code;
}

int fail(const grpc::Status& status) {
  std::string hint;
  if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED) hint = " (check --token/--token-file or the context)";
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) hint = " (is the controller running? check --controller and --ca-file)";
  return fail(status.error_message() + hint);
}

std::string read_input(const std::string& path) {
  std::stringstream contents;
  if (path == "-") {
    contents << std::cin.rdbuf();
  } else {
    std::ifstream in(path);
    if (!in) return "";
    contents << in.rdbuf();
  }
  return contents.str();
}

absl::Status Ctl::connect() {
  grpc::SslCredentialsOptions ssl;
  if (!connection_.ca_file.empty()) {
    ssl.pem_root_certs = read_input(connection_.ca_file);
    if (ssl.pem_root_certs.empty()) return absl::NotFoundError(str_cat("cannot read --ca-file ", connection_.ca_file));
  }
  if (connection_.token.empty()) {
    return absl::UnauthenticatedError("no admin token: give --token-file (the controller's admin.token) or a context");
  }
  stub_ = admin::v1::Admin::NewStub(grpc::CreateChannel(connection_.controller, grpc::SslCredentials(ssl)));
  return absl::OkStatus();
}

std::unique_ptr<grpc::ClientContext> Ctl::context() const {
  auto context = stream_context();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  return context;
}

std::unique_ptr<grpc::ClientContext> Ctl::stream_context() const {
  auto context = std::make_unique<grpc::ClientContext>();
  context->AddMetadata("authorization", "Bearer " + connection_.token);
  return context;
}

}  // namespace strait::ctl
