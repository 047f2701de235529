#pragma once

#include <memory>
#include <string>

#include "agent/channel/channel.h"
#include "agent/channel/pht_session.h"
#include "agent/protocol/pht.h"

namespace strait::agent {

struct PhtListenerConfig {
  std::string name = "pht listener";  // for log lines
  std::string authorize_path{pht::kAuthorizePath};
  std::string push_path{pht::kPushPath};
  std::string pull_path{pht::kPullPath};
  size_t backlog = 128;  // tunnels waiting for accept() per worker; more are refused (429)
  PhtLimits limits;
};

// Listeners whose accept() returns pht tunnels (agent/channel/pht.h tells the exchange).
// Each worker's listener accepts connections from its `base` listener itself (a coroutine
// started by the first accept()), runs their handshake (TLS for phts) and serves HTTP/1.1
// on them, one coroutine per connection. The tunnels live in one PhtHub per factory, that
// is per service: a client's requests may reach any worker, and a request for a tunnel of
// another worker runs its step on that worker. A tunnel is accepted by the worker whose
// connection opened it. close() stops taking connections; those already open go on serving
// the tunnels they have, and refuse new ones (503).
std::unique_ptr<ListenerFactory> make_pht_session_listener_factory(std::unique_ptr<ListenerFactory> base,
                                                                   PhtListenerConfig config);

}  // namespace strait::agent
