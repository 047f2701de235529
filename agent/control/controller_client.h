#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>

#include "absl/status/status.h"
#include "agent/control/state_dir.h"
#include "common/agent_certificate.h"
#include "strait/v1/control.grpc.pb.h"
#include "strait/v1/control.pb.h"

namespace strait::agent {

struct ControllerClientOptions {
  // host:port of the controller's agent port, one per replica: the client moves to the next
  // each time a stream ends or cannot start.
  std::vector<std::string> addresses;
  // For enrolment, when the state dir holds no usable certificate: the token, or the file it
  // is read from at each attempt (so an operator can put a fresh one there).
  std::string join_token;
  std::string join_token_file;
  std::string ca_pem;  // the CA to trust; empty: the system's roots
  std::string agent_id;                        // asked for at enrolment
  std::map<std::string, std::string> labels;  // asked for at enrolment
  std::optional<StoredIdentity> identity;      // from the state dir, when it holds one
  std::string agent_version;
  std::vector<std::string> capabilities;
  std::chrono::milliseconds heartbeat_interval{5000};
  std::chrono::milliseconds initial_backoff{500};
  std::chrono::milliseconds max_backoff{30000};
};

// The agent's side of AgentControl, on its own thread: enrols when the state dir holds no
// usable certificate, connects with it (mTLS), says Hello, applies each snapshot through
// `apply` (the runtime's single entry point), persists it in the state dir, ACKs or NACKs,
// reports status, and renews the certificate once two thirds of its life are gone;
// reconnects with jittered exponential backoff, which a refusal or a replaced stream does
// not reset.
class ControllerClient {
 public:
  using Apply = std::function<absl::Status(const config::v1::Config&)>;
  using Report = std::function<control::v1::Status()>;

  // `applied` is the snapshot already being served (from the state dir), if any.
  ControllerClient(ControllerClientOptions options, StateDir state, Apply apply, Report report,
                   std::optional<control::v1::Snapshot> applied);
  ~ControllerClient();

  void start();
  // Ends the stream and the thread; safe to call twice.
  void stop();

 private:
  // The replica this client talks to now (only its own thread moves it).
  const std::string& address() const { return options_.addresses[current_address_]; }

  // An identity the state dir holds and what its certificate says.
  struct Identity {
    StoredIdentity files;
    common::CertificateFacts facts;
  };
  enum class SessionEnd { kServed, kFailed, kRefused };

  void run();
  // A certificate that is valid for a while yet, enrolling for one when needed.
  bool ensure_identity();
  // One stream from connect to its end.
  SessionEnd session();
  void renew_if_due(control::v1::AgentControl::Stub& stub);
  // TLS to the controller, with the agent's certificate when `identity` is given.
  std::shared_ptr<grpc::Channel> channel(const Identity* identity) const;
  void adopt(StoredIdentity files, const std::string& how);
  std::string join_token() const;
  control::v1::Ack handle(const control::v1::Snapshot& snapshot);
  std::string applied_version();
  control::v1::Status status_report();
  // Sleeps `delay` unless stop() comes first; false once stopping.
  bool wait(std::chrono::milliseconds delay);

  ControllerClientOptions options_;
  size_t current_address_ = 0;
  StateDir state_;
  Apply apply_;
  Report report_;

  // Used on this client's thread, and by a session's ticker while that thread only reads.
  std::optional<Identity> identity_;
  bool told_no_token_ = false;

  std::mutex mutex_;  // guards what follows
  std::string applied_version_;
  std::condition_variable wake_;
  bool stopping_ = false;
  grpc::ClientContext* current_ = nullptr;  // the stream to cancel on stop()
  std::thread thread_;
};

}  // namespace strait::agent
