#pragma once

#include <string>
#include <vector>

#include "controller/resource/resource.h"
#include "strait/v1/config.pb.h"

namespace strait::controller {

// What one agent runs: the Services whose placement matches its labels, plus every Chain,
// Hop, Auther, Bypass, Admission, Limiter, Resolver and Hosts they reference (directly or
// through a chain), so a chain never has to be placed separately. A supporting resource with
// its own placement also goes to the agents it matches. `resources` is the store's list.
config::v1::Config compute_snapshot(const std::vector<Resource>& resources, const Labels& agent_labels);

// A short hex digest of a snapshot's content; equal snapshots have equal fingerprints.
std::string snapshot_fingerprint(const config::v1::Config& snapshot);

}  // namespace strait::controller
