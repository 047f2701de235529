#pragma once

// Options every proxy connector reads the same way from its node config.

#include <chrono>

#include "absl/status/statusor.h"
#include "common/metadata.h"
#include "strait/v1/config.pb.h"

namespace strait::agent {

// Bounds a hop's handshake (greeting to reply) when the node does not set `timeout`.
constexpr std::chrono::nanoseconds kDefaultHandshakeTimeout = std::chrono::seconds(15);

// The connector's own auth, else the node's (GOST accepts both places).
inline const config::v1::AuthConfig& connector_auth(const config::v1::NodeConfig& node) {
  return node.connector().has_auth() ? node.connector().auth() : node.auth();
}

// GOST's connector key `timeout` (alias `connectTimeout`): the whole handshake with the hop.
inline absl::StatusOr<std::chrono::nanoseconds> connector_timeout(const common::Metadata& metadata) {
  for (const char* key : {"timeout", "connectTimeout"}) {
    auto value = common::metadata_duration(metadata, key);
    if (!value.ok()) return value.status();
    if (*value && (*value)->count() > 0) return **value;
  }
  return kDefaultHandshakeTimeout;
}

}  // namespace strait::agent
