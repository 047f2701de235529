#pragma once

#include "agent/connector/connector.h"

namespace strait::agent {

// http: HTTP CONNECT through an HTTP proxy hop, with Basic proxy auth when the node has auth.
absl::StatusOr<std::unique_ptr<Connector>> make_http_connector(const config::v1::NodeConfig& node);

}  // namespace strait::agent
