#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "etcd/rpc.grpc.pb.h"

namespace strait::controller {

struct EtcdOptions {
  // "host:port", "http://host:port" or "https://host:port": IP addresses, or one DNS name
  // (every address it resolves to is tried).
  std::vector<std::string> endpoints;
  std::string ca_file;    // TLS to etcd when set (or when an endpoint says https)
  std::string cert_file;  // client certificate for etcd's --client-cert-auth
  std::string key_file;
  std::string username;   // etcd auth, when set
  std::string password;
  std::chrono::milliseconds call_timeout{5000};
};

// The calls the etcd store makes, on one gRPC channel to the cluster. With auth, every call
// carries the token from Authenticate and one that etcd calls invalid (expired) is renewed
// once. Errors name the endpoints and say what etcd answered. Thread-safe.
class EtcdClient {
 public:
  static absl::StatusOr<std::unique_ptr<EtcdClient>> connect(const EtcdOptions& options);

  absl::StatusOr<etcdserverpb::RangeResponse> range(const etcdserverpb::RangeRequest& request);
  absl::StatusOr<etcdserverpb::TxnResponse> txn(const etcdserverpb::TxnRequest& request);
  absl::StatusOr<etcdserverpb::LeaseGrantResponse> lease_grant(int64_t ttl_seconds);
  // Renews a lease once; its TTL as etcd now holds it, 0 when the lease is gone (expired).
  absl::StatusOr<int64_t> lease_keep_alive(int64_t lease);
  absl::Status lease_revoke(int64_t lease);
  absl::StatusOr<etcdserverpb::StatusResponse> status();

  // One watch stream: start() sends the watch request, next() blocks until a response or
  // the end of the stream, cancel() (any thread, also before start) ends it.
  class WatchStream {
   public:
    bool start(const etcdserverpb::WatchCreateRequest& request);
    bool next(etcdserverpb::WatchResponse& response);
    void cancel();
    // Why the stream ended; PERMISSION_DENIED when etcd no longer takes the auth token.
    absl::Status finish();

   private:
    friend class EtcdClient;
    const EtcdClient* client_ = nullptr;
    std::unique_ptr<grpc::ClientContext> context_;
    std::unique_ptr<grpc::ClientReaderWriter<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>> stream_;
  };
  std::unique_ptr<WatchStream> open_watch();
  // With auth, a fresh token for the calls that follow (a watch stream's token can expire).
  absl::Status renew_authentication();

  const std::string& where() const { return where_; }

 private:
  EtcdClient(const EtcdOptions& options, std::shared_ptr<grpc::Channel> channel, std::string where);

  template <typename Response, typename Call>
  absl::StatusOr<Response> unary(std::string_view what, Call call);
  void prepare(grpc::ClientContext& context, bool deadline);
  absl::Status authenticate();
  absl::Status error(std::string_view what, const grpc::Status& status) const;

  EtcdOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::string where_;
  std::unique_ptr<etcdserverpb::KV::Stub> kv_;
  std::unique_ptr<etcdserverpb::Watch::Stub> watch_;
  std::unique_ptr<etcdserverpb::Lease::Stub> lease_;
  std::unique_ptr<etcdserverpb::Maintenance::Stub> maintenance_;
  std::unique_ptr<etcdserverpb::Auth::Stub> auth_;
  std::mutex token_mutex_;
  std::string token_;
};

// The end of the range of every key that starts with `prefix` (etcd's range_end).
std::string etcd_prefix_end(std::string_view prefix);

}  // namespace strait::controller
