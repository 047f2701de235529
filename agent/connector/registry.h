#pragma once

#include <string>
#include <vector>

#include "agent/connector/connector.h"

namespace strait::agent {

// Builds the connector a node names (node.connector.type, GOST names and aliases).
absl::StatusOr<std::unique_ptr<Connector>> make_connector(const config::v1::NodeConfig& node);
std::vector<std::string> connector_types();

}  // namespace strait::agent
