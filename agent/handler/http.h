#pragma once

#include "agent/handler/handler.h"

namespace strait::agent {

// http: forward HTTP proxy. CONNECT tunnels and absolute-URI requests with keep-alive,
// Basic proxy auth (407 + Proxy-Authenticate), hop-by-hop headers removed.
absl::StatusOr<std::unique_ptr<Handler>> make_http_handler(const config::v1::ServiceConfig& service);

}  // namespace strait::agent
