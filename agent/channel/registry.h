#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/channel/channel.h"
#include "strait/v1/config.pb.h"

namespace strait::agent {

// A listener type builds its factory from the whole service (address, listener.type,
// listener.tls, listener.metadata) and the agent's config (the top-level tls section),
// parsing its own options once, as GOST's Listener.Init(metadata) does.
using ListenerMaker = absl::StatusOr<std::unique_ptr<ListenerFactory>> (*)(const config::v1::ServiceConfig& service,
                                                                          const config::v1::Config& config);
// A dialer type builds itself from its chain node (dialer.type, dialer.tls, dialer.metadata,
// node.tls).
using DialerMaker = absl::StatusOr<std::unique_ptr<Dialer>> (*)(const config::v1::NodeConfig& node);

// The service's listener.type (tcp when empty).
absl::StatusOr<std::unique_ptr<ListenerFactory>> make_listener_factory(const config::v1::ServiceConfig& service,
                                                                       const config::v1::Config& config);
// The node's dialer.type (tcp when empty).
absl::StatusOr<std::unique_ptr<Dialer>> make_dialer(const config::v1::NodeConfig& node);
std::vector<std::string> listener_types();
std::vector<std::string> dialer_types();

}  // namespace strait::agent
