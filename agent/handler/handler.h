#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "agent/chain/forwarder.h"
#include "agent/chain/router.h"
#include "agent/channel/channel.h"
#include "agent/auth/auther.h"
#include "agent/relay/relay.h"
#include "agent/observe/service_stats.h"
#include "strait/v1/config.pb.h"

namespace strait::agent {

// What a handler needs from its service; built once per applied config, immutable, shared
// by all workers.
struct HandlerContext {
  std::string service;
  std::shared_ptr<const Router> router;
  std::shared_ptr<const Forwarder> forwarder;  // null unless the service has targets
  std::shared_ptr<const Auther> auther;        // null when no auth is configured
  std::shared_ptr<ServiceStats> stats;         // null in tests that do not count
  RelayOptions relay;
};

// Server half of a processing-layer protocol.
class Handler {
 public:
  virtual ~Handler() = default;
  // Serves one accepted client stream until it ends, or until it has handed the stream to a
  // relay that serves it on (start_relay). Never throws for I/O or peer errors.
  virtual asio::awaitable<void> handle(StreamPtr client, const HandlerContext& ctx) const = 0;
};

using HandlerFactory = absl::StatusOr<std::unique_ptr<Handler>> (*)(const config::v1::ServiceConfig& service);

}  // namespace strait::agent
