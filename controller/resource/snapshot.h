#pragma once

#include <string>
#include <vector>

#include "controller/resource/references.h"
#include "controller/resource/resource.h"
#include "strait/v1/config.pb.h"

namespace strait::controller {

// What one agent runs: the Services whose placement matches its labels, plus every Chain,
// Hop, Auther, Bypass, Admission, Limiter, Resolver and Hosts they reference (directly or
// through a chain), so a chain never has to be placed separately. A supporting resource with
// its own placement also goes to the agents it matches. `resources` is the store's list.
// What a snapshot was computed from: the resources placed on the labels and every name they
// reference (existing or not), so a change elsewhere need not recompute it.
class SnapshotInputs {
 public:
  // True when `changed` (a resource as it is after a change, or as it was before a deletion)
  // can alter the snapshot these inputs were recorded for, computed for `agent_labels`.
  bool affected_by(const Resource& changed, const Labels& agent_labels) const;

 private:
  friend config::v1::Config compute_snapshot(const std::vector<Resource>&, const Labels&, SnapshotInputs*);
  References names_;
};

config::v1::Config compute_snapshot(const std::vector<Resource>& resources, const Labels& agent_labels,
                                    SnapshotInputs* inputs = nullptr);

// A short hex digest of a snapshot's content; equal snapshots have equal fingerprints.
std::string snapshot_fingerprint(const config::v1::Config& snapshot);

}  // namespace strait::controller
