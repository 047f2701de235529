#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/client_context.h>

#include "absl/status/status.h"
#include "agent/control/state_dir.h"
#include "strait/v1/control.pb.h"

namespace strait::agent {

struct ControllerClientOptions {
  std::string address;  // host:port of the controller's agent port
  std::string join_token;
  std::string ca_pem;  // the CA to trust; empty: the system's roots
  std::string agent_id;
  std::map<std::string, std::string> labels;
  std::string agent_version;
  std::vector<std::string> capabilities;
  std::chrono::milliseconds heartbeat_interval{5000};
  std::chrono::milliseconds initial_backoff{500};
  std::chrono::milliseconds max_backoff{30000};
};

// The agent's side of AgentControl.Connect, on its own thread: connects, says Hello, applies
// each snapshot through `apply` (the runtime's single entry point), persists it in the state
// dir, ACKs or NACKs, and reports status; reconnects with jittered exponential backoff.
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
  void run();
  // One stream from connect to its end; true when it got at least one snapshot.
  bool session();
  control::v1::Ack handle(const control::v1::Snapshot& snapshot);
  std::string applied_version();
  control::v1::Status status_report();
  // Sleeps `delay` unless stop() comes first; false once stopping.
  bool wait(std::chrono::milliseconds delay);

  ControllerClientOptions options_;
  StateDir state_;
  Apply apply_;
  Report report_;

  std::mutex mutex_;  // guards what follows
  std::string applied_version_;
  std::condition_variable wake_;
  bool stopping_ = false;
  grpc::ClientContext* current_ = nullptr;  // the stream to cancel on stop()
  std::thread thread_;
};

}  // namespace strait::agent
