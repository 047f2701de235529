#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/chain/selector.h"
#include "agent/channel/channel.h"
#include "agent/connector/connector.h"
#include "strait/v1/config.pb.h"

namespace strait::agent {

struct ChainNode {
  std::string name;
  std::string address;
  std::unique_ptr<Dialer> dialer;
  std::unique_ptr<Connector> connector;
};

struct ChainHop {
  std::string name;
  std::vector<ChainNode> nodes;
  std::unique_ptr<Selector> selector;
};

// An immutable chain built from config; shared by every worker and connection using it.
struct Chain {
  std::string name;
  std::vector<ChainHop> hops;
};

// Builds a chain; hops given by name only (no nodes) are taken from the top-level `hops`.
absl::StatusOr<std::shared_ptr<const Chain>> build_chain(const config::v1::ChainConfig& chain,
                                                         const config::v1::Config& config);

}  // namespace strait::agent
