#pragma once

#include <chrono>
#include <string>

#include "agent/channel/channel.h"
#include "agent/relay/relay.h"
#include "agent/observe/service_stats.h"

namespace strait::agent {

// One summary line per connection: service, peer, target, bytes each way, duration, reason;
// the same figures are added to the service's totals (`stats` may be null).
class SessionLog {
 public:
  SessionLog(std::string service, ServiceStats* stats, const Stream& client);
  void set_target(std::string target) { target_ = std::move(target); }
  void finish(const RelayResult& result);
  void finish(const error_code& reason);

 private:
  std::string service_;
  ServiceStats* stats_;
  std::string peer_;
  std::string target_;
  std::chrono::steady_clock::time_point start_;
};

// Hands both streams to a relay that carries on without the caller (start_relay) and writes
// the session's line when it ends.
void relay_then_log(StreamPtr client, StreamPtr target, const RelayOptions& options, SessionLog session);

}  // namespace strait::agent
