#pragma once

#include "agent/connector/connector.h"

namespace strait::agent {

// forward: the node itself is the destination; the dialed stream is returned unchanged.
absl::StatusOr<std::unique_ptr<Connector>> make_forward_connector(const config::v1::NodeConfig& node);

}  // namespace strait::agent
