#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "controller/store/etcd_client.h"
#include "controller/store/store.h"

namespace strait::controller {

struct EtcdStoreOptions {
  EtcdOptions etcd;
  // Every key of the store starts with it, so several fleets can share one etcd cluster.
  std::string prefix = "/strait/";
  // How long an expired join token stays listed before etcd drops it (its lease runs out).
  std::chrono::seconds expired_token_retention{std::chrono::hours(24 * 7)};
  // How long the first read may wait for etcd at start.
  std::chrono::seconds start_timeout{30};
  // This controller's name among those sharing the store (no '/'): its presence entries
  // carry it.
  std::string controller_name = "controller";
  // The lease of this controller's presence entries: they go this long after it stops
  // renewing (killed, or cut off from etcd).
  std::chrono::seconds presence_ttl{15};
};

// The store on etcd, for several controllers over one cluster. Every write is one etcd
// transaction (a resource's expected revision is a compare on its mod revision); a watch
// on the prefix keeps an in-memory copy current, changes made through any controller
// included. Reads come from that copy, so they keep working while etcd is away; writes are
// refused then, with the reason. A write returns once this controller's copy has it.
//
// Keys under the prefix: resources/<kind>/<name> (Resource), revision (rewritten by every
// resource change: its mod revision is the store's revision), tokens/<id> (StoredJoinToken,
// on a lease that ends `expired_token_retention` after the token expires), agents/<id>
// (AgentRecord), presence/<agent id>/<controller name> (AgentInfo, on the lease of the
// controller holding the agent's stream). Resource revisions are etcd revisions.
absl::StatusOr<std::unique_ptr<Store>> open_etcd_store(const EtcdStoreOptions& options);

}  // namespace strait::controller
