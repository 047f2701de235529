#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include <google/protobuf/struct.pb.h>

#include "absl/status/statusor.h"

namespace strait::common {

// Typed reads of GOST metadata (handler/connector/service options). Keys match
// case-insensitively, as GOST's do. Values arrive as strings from the command line and as
// strings, numbers or booleans from YAML/JSON; each reader accepts all of those forms.
// A missing key gives nullopt; a present key of the wrong form is an error naming the key.
using Metadata = google::protobuf::Struct;

absl::StatusOr<std::optional<bool>> metadata_bool(const Metadata& metadata, std::string_view key);
absl::StatusOr<std::optional<std::chrono::nanoseconds>> metadata_duration(const Metadata& metadata,
                                                                          std::string_view key);
absl::StatusOr<std::optional<int64_t>> metadata_int(const Metadata& metadata, std::string_view key);
std::optional<std::string> metadata_string(const Metadata& metadata, std::string_view key);

}  // namespace strait::common
