#include "agent/chain/chain.h"

#include "agent/channel/registry.h"
#include "agent/connector/registry.h"
#include "common/address.h"
#include "common/resource_error.h"
#include "common/strings.h"

namespace strait::agent {
namespace {

absl::Status in_chain(const std::string& chain, const std::string& hop, const absl::Status& status) {
  return common::with_resource(
      absl::Status(status.code(), common::str_cat("chain ", chain, " hop ", hop, ": ", status.message())), "chain",
      chain);
}

absl::Status in_node(const std::string& chain, const std::string& hop, const std::string& node,
                     const absl::Status& status) {
  return common::with_resource(
      absl::Status(status.code(), common::str_cat("chain ", chain, " hop ", hop, " node ", node, ": ", status.message())),
      "chain", chain);
}

}  // namespace

absl::StatusOr<std::shared_ptr<const Chain>> build_chain(const config::v1::ChainConfig& chain_config,
                                                         const config::v1::Config& config) {
  auto chain = std::make_shared<Chain>();
  chain->name = chain_config.name();
  if (chain_config.hops().empty()) {
    return common::with_resource(absl::InvalidArgumentError(common::str_cat("chain ", chain->name, ": has no hops")),
                                 "chain", chain->name);
  }
  for (const auto& listed_hop : chain_config.hops()) {
    const config::v1::HopConfig* hop_config = &listed_hop;
    if (listed_hop.nodes().empty()) {
      hop_config = nullptr;
      for (const auto& shared_hop : config.hops()) {
        if (shared_hop.name() == listed_hop.name()) hop_config = &shared_hop;
      }
      if (hop_config == nullptr || hop_config->nodes().empty()) {
        return in_chain(chain->name, listed_hop.name(),
                        absl::InvalidArgumentError("has no nodes and no top-level hop of that name"));
      }
    }
    ChainHop hop;
    hop.name = hop_config->name();
    auto selector = parse_selector(hop_config->selector());
    if (!selector.ok()) return in_chain(chain->name, hop.name, selector.status());
    for (const auto& node_config : hop_config->nodes()) {
      ChainNode node;
      node.name = node_config.name();
      node.address = node_config.addr();
      if (auto parsed = common::parse_host_port(node.address); !parsed.ok()) {
        return in_node(chain->name, hop.name, node.name, parsed.status());
      }
      auto dialer = make_dialer(node_config);
      if (!dialer.ok()) return in_node(chain->name, hop.name, node.name, dialer.status());
      auto connector = make_connector(node_config);
      if (!connector.ok()) return in_node(chain->name, hop.name, node.name, connector.status());
      node.dialer = *std::move(dialer);
      node.connector = *std::move(connector);
      hop.nodes.push_back(std::move(node));
    }
    hop.selector = std::make_unique<Selector>(*selector, hop.nodes.size());
    chain->hops.push_back(std::move(hop));
  }
  return std::shared_ptr<const Chain>(std::move(chain));
}

}  // namespace strait::agent
