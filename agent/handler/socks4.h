#pragma once

#include "agent/handler/handler.h"

namespace strait::agent {

// socks4 / socks4a: SOCKS4 proxy with the 4a host-name extension. CONNECT; BIND with
// `bind=true`. With an auther, the request's user id must be a user whose password is
// empty (SOCKS4 carries no password), else the reply is 93, as GOST does.
absl::StatusOr<std::unique_ptr<Handler>> make_socks4_handler(const config::v1::ServiceConfig& service);

}  // namespace strait::agent
