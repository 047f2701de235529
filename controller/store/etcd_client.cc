#include "controller/store/etcd_client.h"

#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
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

std::string address_of(const Endpoint& endpoint) {
  return is_ip(endpoint.host, AF_INET6) ? str_cat("[", endpoint.host, "]:", endpoint.port)
                                        : str_cat(endpoint.host, ":", endpoint.port);
}

// gRPC's targets for the endpoints: one list of addresses of one family, which gRPC fails
// over between by itself; otherwise one target per endpoint, a name resolved by gRPC's DNS
// resolver (which fails over between the name's addresses).
std::vector<std::string> channel_targets(const std::vector<Endpoint>& endpoints) {
  for (int family : {AF_INET, AF_INET6}) {
    if (std::all_of(endpoints.begin(), endpoints.end(), [&](const Endpoint& e) { return is_ip(e.host, family); })) {
      std::vector<std::string> addresses;
      for (const auto& endpoint : endpoints) addresses.push_back(address_of(endpoint));
      return {str_cat(family == AF_INET ? "ipv4:" : "ipv6:", common::join(addresses, ","))};
    }
  }
  std::vector<std::string> targets;
  for (const auto& endpoint : endpoints) {
    if (is_ip(endpoint.host, AF_INET)) {
      targets.push_back(str_cat("ipv4:", address_of(endpoint)));
    } else if (is_ip(endpoint.host, AF_INET6)) {
      targets.push_back(str_cat("ipv6:", address_of(endpoint)));
    } else {
      targets.push_back(str_cat("dns:///", address_of(endpoint)));
    }
  }
  return targets;
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
  std::vector<std::string> targets = channel_targets(endpoints);
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
  std::vector<std::unique_ptr<Member>> members;
  for (size_t i = 0; i < targets.size(); ++i) {
    std::string where = targets.size() == 1 ? common::join(options.endpoints, ",") : options.endpoints[i];
    members.push_back(std::make_unique<Member>(grpc::CreateCustomChannel(targets[i], credentials, arguments),
                                               str_cat("etcd ", where)));
  }
  std::string where = str_cat("etcd ", common::join(options.endpoints, ","));
  auto client = std::unique_ptr<EtcdClient>(new EtcdClient(options, std::move(members), std::move(where)));
  if (!options.username.empty()) {
    if (auto status = client->authenticate(); !status.ok()) return status;
  }
  return client;
}

EtcdClient::Member::Member(std::shared_ptr<grpc::Channel> channel_to, std::string reaches)
    : channel(std::move(channel_to)),
      where(std::move(reaches)),
      kv(etcdserverpb::KV::NewStub(channel)),
      watch(etcdserverpb::Watch::NewStub(channel)),
      lease(etcdserverpb::Lease::NewStub(channel)),
      maintenance(etcdserverpb::Maintenance::NewStub(channel)),
      auth(etcdserverpb::Auth::NewStub(channel)) {}

EtcdClient::EtcdClient(const EtcdOptions& options, std::vector<std::unique_ptr<Member>> members, std::string where)
    : options_(options), members_(std::move(members)), where_(std::move(where)) {}

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
  const size_t used = current();
  grpc::Status status = members_[used]->auth->Authenticate(&context, request, &response);
  if (!status.ok()) return error("authenticate", status, used);
  std::lock_guard lock(token_mutex_);
  token_ = response.token();
  return absl::OkStatus();
}

absl::Status EtcdClient::error(std::string_view what, const grpc::Status& status, size_t used) {
  std::string message = str_cat(members_[used]->where, ": ", what, ": ", common::text_escaped(status.error_message()));
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      if (members_.size() > 1) {
        // Of several calls that fail on one member at once, one moves on: the others find
        // current_ already past `used`.
        size_t expected = current_.load();
        if (expected % members_.size() == used) current_.compare_exchange_strong(expected, expected + 1);
      }
      return absl::UnavailableError(message);
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
absl::StatusOr<Response> EtcdClient::unary(std::string_view what, Call call, Repeat repeat) {
  bool token_renewed = false;
  size_t members_tried = 1;
  for (;;) {
    grpc::ClientContext context;
    prepare(context, true);
    Response response;
    const size_t used = current();
    grpc::Status status = call(*members_[used], context, response);
    if (status.ok()) return response;
    // A simple-token auth token lasts 5 minutes by default: get another and try again once.
    if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED && !options_.username.empty() && !token_renewed) {
      token_renewed = true;
      if (auto renewed = authenticate(); !renewed.ok()) return renewed;
      continue;
    }
    absl::Status failed = error(what, status, used);
    // A write that failed on the way may have been applied: only what may run twice is asked
    // of the next member at once.
    bool moved_on = current() != used;
    if (repeat == Repeat::kNever || !moved_on || members_tried == members_.size()) return failed;
    ++members_tried;
  }
}

absl::StatusOr<etcdserverpb::RangeResponse> EtcdClient::range(const etcdserverpb::RangeRequest& request) {
  return unary<etcdserverpb::RangeResponse>(
      "range",
      [&](Member& member, grpc::ClientContext& context, auto& response) {
        return member.kv->Range(&context, request, &response);
      },
      Repeat::kOnAnotherMember);
}

absl::StatusOr<etcdserverpb::TxnResponse> EtcdClient::txn(const etcdserverpb::TxnRequest& request) {
  return unary<etcdserverpb::TxnResponse>(
      "transaction",
      [&](Member& member, grpc::ClientContext& context, auto& response) {
        return member.kv->Txn(&context, request, &response);
      },
      Repeat::kNever);
}

absl::StatusOr<etcdserverpb::LeaseGrantResponse> EtcdClient::lease_grant(int64_t ttl_seconds) {
  etcdserverpb::LeaseGrantRequest request;
  request.set_ttl(ttl_seconds);
  return unary<etcdserverpb::LeaseGrantResponse>(
      "lease grant",
      [&](Member& member, grpc::ClientContext& context, auto& response) {
        return member.lease->LeaseGrant(&context, request, &response);
      },
      Repeat::kNever);
}

absl::StatusOr<int64_t> EtcdClient::lease_keep_alive(int64_t lease) {
  // The keep-alive call is a stream; one request and its answer renew the lease once.
  auto renew = [&](Member& member, grpc::ClientContext& context, etcdserverpb::LeaseKeepAliveResponse& response) {
    auto stream = member.lease->LeaseKeepAlive(&context);
    etcdserverpb::LeaseKeepAliveRequest request;
    request.set_id(lease);
    if (stream->Write(request)) {
      stream->WritesDone();
      stream->Read(&response);
    }
    return stream->Finish();
  };
  auto renewed = unary<etcdserverpb::LeaseKeepAliveResponse>("lease keep-alive", renew, Repeat::kOnAnotherMember);
  if (!renewed.ok()) return renewed.status();
  return renewed->ttl();
}

absl::Status EtcdClient::lease_revoke(int64_t lease) {
  etcdserverpb::LeaseRevokeRequest request;
  request.set_id(lease);
  return unary<etcdserverpb::LeaseRevokeResponse>("lease revoke", [&](Member& member, grpc::ClientContext& context, auto& response) {
           return member.lease->LeaseRevoke(&context, request, &response);
         }, Repeat::kOnAnotherMember)
      .status();
}

absl::StatusOr<etcdserverpb::StatusResponse> EtcdClient::status() {
  etcdserverpb::StatusRequest request;
  return unary<etcdserverpb::StatusResponse>(
      "status",
      [&](Member& member, grpc::ClientContext& context, auto& response) {
        return member.maintenance->Status(&context, request, &response);
      },
      Repeat::kOnAnotherMember);
}

std::unique_ptr<EtcdClient::WatchStream> EtcdClient::open_watch() {
  auto stream = std::make_unique<WatchStream>();
  stream->client_ = this;
  stream->member_ = current();
  stream->context_ = std::make_unique<grpc::ClientContext>();
  prepare(*stream->context_, false);
  // A member cut off from the others ends the stream instead of going quiet.
  stream->context_->AddMetadata("hasleader", "true");
  stream->stream_ = members_[stream->member_]->watch->Watch(stream->context_.get());
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
  return client_->error("watch", status, member_);
}

}  // namespace strait::controller
