#include "controller/store/etcd_client.h"

#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>

#include <fstream>
#include <sstream>

#include "common/log_escape.h"
#include "common/strings.h"

namespace strait::controller {
namespace {

using common::str_cat;

absl::StatusOr<std::string> read_pem(const std::string& flag, const std::string& path) {
  std::ifstream in(path);
  std::stringstream contents;
  contents << in.rdbuf();
  if (!in || contents.str().empty()) return absl::InvalidArgumentError(str_cat(flag, ": cannot read ", path));
  return contents.str();
}

bool is_ip(std::string_view host, int family) {
  unsigned char address[16];
  return inet_pton(family, std::string(host).c_str(), address) == 1;
}

struct Endpoint {
  std::string host;
  std::string port;
  bool https = false;
};

absl::StatusOr<Endpoint> parse_endpoint(std::string_view text) {
  Endpoint endpoint;
  if (common::istarts_with(text, "https://")) {
    endpoint.https = true;
    text.remove_prefix(8);
  } else if (common::istarts_with(text, "http://")) {
    text.remove_prefix(7);
  }
  while (!text.empty() && text.back() == '/') text.remove_suffix(1);
  size_t colon = text.rfind(':');
  if (text.empty() || colon == std::string_view::npos || colon + 1 == text.size()) {
    return absl::InvalidArgumentError(str_cat("--etcd-endpoints: \"", common::text_escaped(text), "\" is not host:port"));
  }
  endpoint.host = std::string(text.substr(0, colon));
  endpoint.port = std::string(text.substr(colon + 1));
  if (endpoint.host.size() > 2 && endpoint.host.front() == '[' && endpoint.host.back() == ']') {
    endpoint.host = endpoint.host.substr(1, endpoint.host.size() - 2);
  }
  return endpoint;
}

// gRPC's target for the endpoints: a list of addresses it fails over between, or one name
// it resolves (and fails over between the addresses of).
absl::StatusOr<std::string> channel_target(const std::vector<Endpoint>& endpoints) {
  if (endpoints.size() == 1 && !is_ip(endpoints[0].host, AF_INET) && !is_ip(endpoints[0].host, AF_INET6)) {
    return str_cat("dns:///", endpoints[0].host, ":", endpoints[0].port);
  }
  bool v4 = is_ip(endpoints[0].host, AF_INET);
  std::vector<std::string> addresses;
  for (const auto& endpoint : endpoints) {
    if (!is_ip(endpoint.host, v4 ? AF_INET : AF_INET6)) {
      return absl::InvalidArgumentError(str_cat("--etcd-endpoints: several endpoints must all be IPv4 or all IPv6 "
                                                "addresses (or give one DNS name with several addresses): \"",
                                                common::text_escaped(endpoint.host), "\""));
    }
    addresses.push_back(v4 ? str_cat(endpoint.host, ":", endpoint.port) : str_cat("[", endpoint.host, "]:", endpoint.port));
  }
  return str_cat(v4 ? "ipv4:" : "ipv6:", common::join(addresses, ","));
}

}  // namespace

std::string etcd_prefix_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    if (static_cast<unsigned char>(end.back()) < 0xFF) {
      end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key, as etcd reads a range_end of "\0"
}

absl::StatusOr<std::unique_ptr<EtcdClient>> EtcdClient::connect(const EtcdOptions& options) {
  if (options.endpoints.empty()) return absl::InvalidArgumentError("--etcd-endpoints: none given");
  std::vector<Endpoint> endpoints;
  bool tls = !options.ca_file.empty() || !options.cert_file.empty();
  for (const auto& text : options.endpoints) {
    auto endpoint = parse_endpoint(text);
    if (!endpoint.ok()) return endpoint.status();
    tls = tls || endpoint->https;
    endpoints.push_back(*std::move(endpoint));
  }
  auto target = channel_target(endpoints);
  if (!target.ok()) return target.status();
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (tls) {
    grpc::SslCredentialsOptions ssl;
    if (!options.ca_file.empty()) {
      auto ca = read_pem("--etcd-ca-file", options.ca_file);
      if (!ca.ok()) return ca.status();
      ssl.pem_root_certs = *ca;
    }
    if (options.cert_file.empty() != options.key_file.empty()) {
      return absl::InvalidArgumentError("--etcd-cert-file and --etcd-key-file go together");
    }
    if (!options.cert_file.empty()) {
      auto cert = read_pem("--etcd-cert-file", options.cert_file);
      auto key = read_pem("--etcd-key-file", options.key_file);
      if (!cert.ok()) return cert.status();
      if (!key.ok()) return key.status();
      ssl.pem_cert_chain = *cert;
      ssl.pem_private_key = *key;
    }
    credentials = grpc::SslCredentials(ssl);
  }
  grpc::ChannelArguments arguments;
  // Reconnect soon after etcd comes back rather than after gRPC's default 2-minute cap.
  arguments.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 5000);
  arguments.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  arguments.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  arguments.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  arguments.SetMaxReceiveMessageSize(64 << 20);
  auto channel = grpc::CreateCustomChannel(*target, credentials, arguments);
  std::string where = str_cat("etcd ", common::join(options.endpoints, ","));
  auto client = std::unique_ptr<EtcdClient>(new EtcdClient(options, std::move(channel), std::move(where)));
  if (!options.username.empty()) {
    if (auto status = client->authenticate(); !status.ok()) return status;
  }
  return client;
}

EtcdClient::EtcdClient(const EtcdOptions& options, std::shared_ptr<grpc::Channel> channel, std::string where)
    : options_(options),
      channel_(std::move(channel)),
      where_(std::move(where)),
      kv_(etcdserverpb::KV::NewStub(channel_)),
      watch_(etcdserverpb::Watch::NewStub(channel_)),
      lease_(etcdserverpb::Lease::NewStub(channel_)),
      maintenance_(etcdserverpb::Maintenance::NewStub(channel_)),
      auth_(etcdserverpb::Auth::NewStub(channel_)) {}

void EtcdClient::prepare(grpc::ClientContext& context, bool deadline) {
  if (deadline) context.set_deadline(std::chrono::system_clock::now() + options_.call_timeout);
  std::lock_guard lock(token_mutex_);
  if (!token_.empty()) context.AddMetadata("token", token_);
}

absl::Status EtcdClient::authenticate() {
  etcdserverpb::AuthenticateRequest request;
  request.set_name(options_.username);
  request.set_password(options_.password);
  etcdserverpb::AuthenticateResponse response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + options_.call_timeout);
  grpc::Status status = auth_->Authenticate(&context, request, &response);
  if (!status.ok()) return error("authenticate", status);
  std::lock_guard lock(token_mutex_);
  token_ = response.token();
  return absl::OkStatus();
}

absl::Status EtcdClient::error(std::string_view what, const grpc::Status& status) const {
  std::string message = str_cat(where_, ": ", what, ": ", common::text_escaped(status.error_message()));
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::CANCELLED:
      return absl::UnavailableError(message);
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::PERMISSION_DENIED:
      return absl::PermissionDeniedError(message);
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::FAILED_PRECONDITION:
      return absl::InvalidArgumentError(message);
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return absl::ResourceExhaustedError(message);
    default:
      return absl::InternalError(message);
  }
}

template <typename Response, typename Call>
absl::StatusOr<Response> EtcdClient::unary(std::string_view what, Call call) {
  for (int attempt = 0;; ++attempt) {
    grpc::ClientContext context;
    prepare(context, true);
    Response response;
    grpc::Status status = call(context, response);
    if (status.ok()) return response;
    // A simple-token auth token lasts 5 minutes by default: get another and try again once.
    bool stale_token = status.error_code() == grpc::StatusCode::UNAUTHENTICATED && !options_.username.empty();
    if (!stale_token || attempt > 0) return error(what, status);
    if (auto renewed = authenticate(); !renewed.ok()) return renewed;
  }
}

absl::StatusOr<etcdserverpb::RangeResponse> EtcdClient::range(const etcdserverpb::RangeRequest& request) {
  return unary<etcdserverpb::RangeResponse>("range", [&](grpc::ClientContext& context, auto& response) {
    return kv_->Range(&context, request, &response);
  });
}

absl::StatusOr<etcdserverpb::TxnResponse> EtcdClient::txn(const etcdserverpb::TxnRequest& request) {
  return unary<etcdserverpb::TxnResponse>("transaction", [&](grpc::ClientContext& context, auto& response) {
    return kv_->Txn(&context, request, &response);
  });
}

absl::StatusOr<etcdserverpb::LeaseGrantResponse> EtcdClient::lease_grant(int64_t ttl_seconds) {
  etcdserverpb::LeaseGrantRequest request;
  request.set_ttl(ttl_seconds);
  return unary<etcdserverpb::LeaseGrantResponse>("lease grant", [&](grpc::ClientContext& context, auto& response) {
    return lease_->LeaseGrant(&context, request, &response);
  });
}

absl::StatusOr<int64_t> EtcdClient::lease_keep_alive(int64_t lease) {
  // The keep-alive call is a stream; one request and its answer renew the lease once.
  auto renew = [&](grpc::ClientContext& context, etcdserverpb::LeaseKeepAliveResponse& response) {
    auto stream = lease_->LeaseKeepAlive(&context);
    etcdserverpb::LeaseKeepAliveRequest request;
    request.set_id(lease);
    if (stream->Write(request)) {
      stream->WritesDone();
      stream->Read(&response);
    }
    return stream->Finish();
  };
  auto renewed = unary<etcdserverpb::LeaseKeepAliveResponse>("lease keep-alive", renew);
  if (!renewed.ok()) return renewed.status();
  return renewed->ttl();
}

absl::Status EtcdClient::lease_revoke(int64_t lease) {
  etcdserverpb::LeaseRevokeRequest request;
  request.set_id(lease);
  return unary<etcdserverpb::LeaseRevokeResponse>("lease revoke", [&](grpc::ClientContext& context, auto& response) {
           return lease_->LeaseRevoke(&context, request, &response);
         })
      .status();
}

absl::StatusOr<etcdserverpb::StatusResponse> EtcdClient::status() {
  etcdserverpb::StatusRequest request;
  return unary<etcdserverpb::StatusResponse>("status", [&](grpc::ClientContext& context, auto& response) {
    return maintenance_->Status(&context, request, &response);
  });
}

std::unique_ptr<EtcdClient::WatchStream> EtcdClient::open_watch() {
  auto stream = std::make_unique<WatchStream>();
  stream->client_ = this;
  stream->context_ = std::make_unique<grpc::ClientContext>();
  prepare(*stream->context_, false);
  // A member cut off from the others ends the stream instead of going quiet.
  stream->context_->AddMetadata("hasleader", "true");
  stream->stream_ = watch_->Watch(stream->context_.get());
  return stream;
}

absl::Status EtcdClient::renew_authentication() {
  if (options_.username.empty()) return absl::OkStatus();
  return authenticate();
}

bool EtcdClient::WatchStream::start(const etcdserverpb::WatchCreateRequest& request) {
  etcdserverpb::WatchRequest create;
  *create.mutable_create_request() = request;
  return stream_->Write(create);
}

bool EtcdClient::WatchStream::next(etcdserverpb::WatchResponse& response) { return stream_->Read(&response); }

void EtcdClient::WatchStream::cancel() { context_->TryCancel(); }

absl::Status EtcdClient::WatchStream::finish() {
  grpc::Status status = stream_->Finish();
  if (status.ok()) return absl::OkStatus();
  return client_->error("watch", status);
}

}  // namespace strait::controller
