#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/channel/channel.h"

namespace strait::agent {

absl::StatusOr<std::unique_ptr<ListenerFactory>> make_listener_factory(const std::string& type);
absl::StatusOr<std::unique_ptr<Dialer>> make_dialer(const std::string& type);
std::vector<std::string> listener_types();
std::vector<std::string> dialer_types();

}  // namespace strait::agent
