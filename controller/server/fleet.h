#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "controller/resource/diff.h"
#include "controller/server/metrics.h"
#include "controller/store/store.h"
#include "strait/v1/admin.pb.h"
#include "strait/v1/control.pb.h"

namespace strait::controller {

// The controller side of one agent's stream (the gRPC reactor implements it).
class AgentStream {
 public:
  virtual ~AgentStream() = default;
  // Queues a message; never blocks. Ignored once the stream is ending.
  virtual void send(control::v1::ControllerMessage message) = 0;
  // Ends the stream (a newer stream of the same agent replaced it).
  virtual void close(const std::string& reason) = 0;
};

// The connected agents, what each was sent and what each acknowledged. On every change in the
// store it recomputes each connected agent's snapshot and pushes the ones that changed;
// changes that arrive within `coalesce` of each other go out as one push.
class Fleet {
 public:
  Fleet(Store& store, ControllerMetrics& metrics, std::chrono::milliseconds coalesce = std::chrono::milliseconds(20));
  ~Fleet();

  // Registers a stream after its Hello and sends the agent its snapshot. Returns the session
  // number the stream passes back; a newer session of the same agent closes the older one.
  uint64_t connect(const control::v1::Hello& hello, const std::string& peer, AgentStream* stream);
  void disconnect(const std::string& agent_id, uint64_t session);
  void on_ack(const std::string& agent_id, uint64_t session, const control::v1::Ack& ack);
  void on_status(const std::string& agent_id, uint64_t session, const control::v1::Status& status);
  void on_heartbeat(const std::string& agent_id, uint64_t session);

  std::vector<admin::v1::AgentInfo> agents() const;
  std::vector<AgentLabels> agent_labels() const;

 private:
  struct Agent {
    admin::v1::AgentInfo info;  // id, labels, versions, status as reported
    Labels labels;
    AgentStream* stream = nullptr;  // null while disconnected
    uint64_t session = 0;
    std::string sent_fingerprint;
    std::string sent_nonce;
    std::chrono::steady_clock::time_point sent_at;
  };

  void run();
  // Sends `agent` its snapshot computed from `resources` when it differs from the last one sent.
  void push_locked(Agent& agent, const std::vector<Resource>& resources, int64_t revision);
  Agent* find_session_locked(const std::string& agent_id, uint64_t session);

  Store& store_;
  ControllerMetrics& metrics_;
  std::chrono::milliseconds coalesce_;
  int watch_id_ = 0;

  mutable std::mutex mutex_;  // guards everything below; never held while calling the store
  std::condition_variable wake_;
  std::map<std::string, Agent> agents_;
  uint64_t next_session_ = 0;
  uint64_t next_nonce_ = 0;
  bool dirty_ = false;
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace strait::controller
