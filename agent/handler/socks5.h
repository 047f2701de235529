#pragma once

#include "agent/handler/handler.h"

namespace strait::agent {

// socks5 / socks: SOCKS5 proxy (RFC 1928) with username/password auth (RFC 1929) when the
// service has an auther. CONNECT; BIND with `bind=true`; UDP ASSOCIATE and GOST's UDP over
// TCP (command 0xF3) with `udp=true`. Unknown commands and address types get the protocol's
// refusal code and a log line. GOST's TLS methods: a client offering 0x80 (or 0x82) gets
// TLS with the handler's, the listener's or the agent's default certificate unless `notls`.
absl::StatusOr<std::unique_ptr<Handler>> make_socks5_handler(const config::v1::ServiceConfig& service,
                                                             const config::v1::Config& config);
absl::StatusOr<std::unique_ptr<Handler>> make_socks5_handler(const config::v1::ServiceConfig& service);

}  // namespace strait::agent
