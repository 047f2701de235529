#pragma once

#include "agent/connector/connector.h"

namespace strait::agent {

// Shadowsocks AEAD client over a stream (`ss`, PROTOCOLS.md §6), TCP targets only. The target
// header goes in the same chunk as the first payload, as GOST and shadowsocks-libev send it;
// if the application has written nothing 50 ms after the connect, the header goes alone, so
// a target that speaks first (SSH, SMTP) is never left waiting (GOST waits forever there
// unless `nodelay` is on). `nodelay=true` sends the header at once.
absl::StatusOr<std::unique_ptr<Connector>> make_ss_connector(const config::v1::NodeConfig& node);

}  // namespace strait::agent
