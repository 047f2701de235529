#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "etcd/rpc.grpc.pb.h"

namespace strait::controller {

struct EtcdOptions {
  // "host:port", "http://host:port" or "https://host:port", each an IP address or a DNS name
  // (every address a name resolves to is tried, and the name is resolved again on reconnect).
  std::vector<std::string> endpoints;
  std::string ca_file;    // TLS to etcd when set (or when an endpoint says https)
  std::string cert_file;  // client certificate for etcd's --client-cert-auth
  std::string key_file;
  std::string username;   // etcd auth, when set
  std::string password;
  std::chrono::milliseconds call_timeout{5000};
};

// The calls the etcd store makes. Endpoints that are all IP addresses share one gRPC channel,
// which fails over between them; with DNS names, each endpoint is a channel of its own and a
// call that finds its member unreachable moves the next calls to the next endpoint. With auth, every call
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
    EtcdClient* client_ = nullptr;
    size_t member_ = 0;
    std::unique_ptr<grpc::ClientContext> context_;
    std::unique_ptr<grpc::ClientReaderWriter<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>> stream_;
  };
  std::unique_ptr<WatchStream> open_watch();
  // With auth, a fresh token for the calls that follow (a watch stream's token can expire).
  absl::Status renew_authentication();

  const std::string& where() const { return where_; }

 private:
  // One gRPC channel and the stubs on it.
  struct Member {
    explicit Member(std::shared_ptr<grpc::Channel> channel, std::string where);
    std::shared_ptr<grpc::Channel> channel;
    std::string where;  // for messages: the endpoint(s) it reaches
    std::unique_ptr<etcdserverpb::KV::Stub> kv;
    std::unique_ptr<etcdserverpb::Watch::Stub> watch;
    std::unique_ptr<etcdserverpb::Lease::Stub> lease;
    std::unique_ptr<etcdserverpb::Maintenance::Stub> maintenance;
    std::unique_ptr<etcdserverpb::Auth::Stub> auth;
  };

  EtcdClient(const EtcdOptions& options, std::vector<std::unique_ptr<Member>> members, std::string where);

  // Whether a call that found its member unreachable is made again on the next one.
  enum class Repeat { kNever, kOnAnotherMember };
  template <typename Response, typename Call>
  absl::StatusOr<Response> unary(std::string_view what, Call call, Repeat repeat);
  void prepare(grpc::ClientContext& context, bool deadline);
  absl::Status authenticate();
  size_t current() const { return current_.load() % members_.size(); }
  // Why a call through members_[used] failed; an unreachable member hands the next calls on.
  absl::Status error(std::string_view what, const grpc::Status& status, size_t used);

  EtcdOptions options_;
  std::vector<std::unique_ptr<Member>> members_;
  std::atomic<size_t> current_{0};
  std::string where_;
  std::mutex token_mutex_;
  std::string token_;
};

// The end of the range of every key that starts with `prefix` (etcd's range_end).
std::string etcd_prefix_end(std::string_view prefix);

}  // namespace strait::controller
