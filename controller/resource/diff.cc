#include "controller/resource/diff.h"

#include <algorithm>

#include "controller/resource/snapshot.h"

namespace strait::controller {
namespace {

// `resources` with `change` put in place of the resource of the same kind and name, kept in
// the store's order (kind, then name) so that snapshots compare equal when nothing changed.
std::vector<Resource> with_change(std::vector<Resource> resources, const Resource& change) {
  auto same = [&](const Resource& r) {
    return r.kind() == change.kind() && r.metadata().name() == change.metadata().name();
  };
  auto it = std::find_if(resources.begin(), resources.end(), same);
  if (it != resources.end()) {
    *it = change;
    return resources;
  }
  auto position = std::find_if(resources.begin(), resources.end(), [&](const Resource& r) {
    return std::tie(r.kind(), r.metadata().name()) > std::tie(change.kind(), change.metadata().name());
  });
  resources.insert(position, change);
  return resources;
}

}  // namespace

std::vector<std::string> affected_agents(const std::vector<Resource>& before, const std::vector<Resource>& after,
                                         const std::vector<AgentLabels>& agents) {
  std::vector<std::string> out;
  for (const auto& agent : agents) {
    if (snapshot_fingerprint(compute_snapshot(before, agent.labels)) !=
        snapshot_fingerprint(compute_snapshot(after, agent.labels))) {
      out.push_back(agent.id);
    }
  }
  return out;
}

std::vector<admin::v1::ResourceDiff> diff_resources(const std::vector<Resource>& stored,
                                                     const std::vector<Resource>& desired,
                                                     const std::vector<AgentLabels>& agents) {
  std::vector<admin::v1::ResourceDiff> diffs;
  for (const auto& resource : desired) {
    admin::v1::ResourceDiff diff;
    diff.set_kind(resource.kind());
    diff.set_name(resource.metadata().name());
    *diff.mutable_desired() = resource;
    auto current = std::find_if(stored.begin(), stored.end(), [&](const Resource& r) {
      return r.kind() == resource.kind() && r.metadata().name() == resource.metadata().name();
    });
    if (current == stored.end()) {
      diff.set_action("create");
    } else {
      *diff.mutable_current() = *current;
      diff.set_action(same_content(*current, resource) ? "unchanged" : "update");
    }
    if (diff.action() != "unchanged") {
      for (auto& id : affected_agents(stored, with_change(stored, resource), agents)) diff.add_agents(id);
    }
    diffs.push_back(std::move(diff));
  }
  return diffs;
}

}  // namespace strait::controller
