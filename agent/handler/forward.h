#pragma once

#include "agent/handler/handler.h"

namespace strait::agent {

// tcp / udp / forward: port forwarding to the service's targets (GOST local forwarding).
absl::StatusOr<std::unique_ptr<Handler>> make_tcp_forward_handler(const config::v1::ServiceConfig& service);
absl::StatusOr<std::unique_ptr<Handler>> make_udp_forward_handler(const config::v1::ServiceConfig& service);

}  // namespace strait::agent
