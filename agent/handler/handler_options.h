#pragma once

// Options that several proxy handlers read the same way from their handler metadata.

#include <chrono>

#include "absl/status/statusor.h"
#include "common/metadata.h"

namespace strait::agent {

// How long a client may take to send its request (GOST `readTimeout`, default 15 s).
inline absl::StatusOr<std::chrono::nanoseconds> handler_read_timeout(const common::Metadata& metadata) {
  auto timeout = common::metadata_duration(metadata, "readTimeout");
  if (!timeout.ok()) return timeout.status();
  if (*timeout && (*timeout)->count() > 0) return **timeout;
  return std::chrono::seconds(15);
}

// A GOST on/off switch such as `bind` or `udp`; absent means off.
inline absl::StatusOr<bool> handler_flag(const common::Metadata& metadata, std::string_view key) {
  auto value = common::metadata_bool(metadata, key);
  if (!value.ok()) return value.status();
  return value->value_or(false);
}

}  // namespace strait::agent
