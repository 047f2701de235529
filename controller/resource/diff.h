#pragma once

#include <string>
#include <vector>

#include "controller/resource/resource.h"

namespace strait::controller {

struct AgentLabels {
  std::string id;
  Labels labels;
};

// What applying `desired` over `stored` would do: per desired resource, "create", "update" or
// "unchanged", with the agents whose snapshot it changes (from the labels of `agents`).
std::vector<admin::v1::ResourceDiff> diff_resources(const std::vector<Resource>& stored,
                                                     const std::vector<Resource>& desired,
                                                     const std::vector<AgentLabels>& agents);

// The agents whose snapshot differs between two sets of resources.
std::vector<std::string> affected_agents(const std::vector<Resource>& before, const std::vector<Resource>& after,
                                         const std::vector<AgentLabels>& agents);

}  // namespace strait::controller
