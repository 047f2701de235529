#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "agent/channel/channel.h"
#include "strait/v1/config.pb.h"

namespace strait::agent {

// Client half of a processing-layer protocol, used by chain nodes.
class Connector {
 public:
  virtual ~Connector() = default;
  // Asks the node at the far end of `tunnel` to open a stream to `target` (host:port) over
  // `network`; returns the stream that now leads to the target.
  virtual asio::awaitable<Result<StreamPtr>> connect(StreamPtr tunnel, Network network, const std::string& target) = 0;
};

using ConnectorFactory = absl::StatusOr<std::unique_ptr<Connector>> (*)(const config::v1::NodeConfig& node);

}  // namespace strait::agent
