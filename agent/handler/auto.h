#pragma once

#include "agent/handler/handler.h"

namespace strait::agent {

// auto: HTTP, SOCKS4 and SOCKS5 on one port, told apart by the first byte (4 = SOCKS4,
// 5 = SOCKS5, anything else = HTTP), each with the service's options and auth. GOST's
// handler when a URL names only a channel (`-L :8080`, `-L tls://:443`).
absl::StatusOr<std::unique_ptr<Handler>> make_auto_handler(const config::v1::ServiceConfig& service);

}  // namespace strait::agent
