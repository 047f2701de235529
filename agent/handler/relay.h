#pragma once

#include "agent/handler/handler.h"

namespace strait::agent {

// GOST's relay protocol, server side (PROTOCOLS.md §3): user/password auth, CONNECT over TCP
// and UDP (datagrams framed on the stream), BIND over TCP and UDP when the handler's `bind`
// option is on (relay_bind.h), forward mode when the service has targets (the client's
// address is then ignored, as GOST does). The OK reply goes out as soon as the
// target is dialed, which GOST clients accept with or without their `nodelay`.
absl::StatusOr<std::unique_ptr<Handler>> make_relay_handler(const config::v1::ServiceConfig& service);

}  // namespace strait::agent
