#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <google/protobuf/struct.pb.h>

#include "absl/status/statusor.h"

namespace strait::common {

// Typed reads of GOST metadata (service, handler, listener, connector, dialer options). Keys
// match case-insensitively, as GOST's do. Values arrive as strings from the command line and
// as strings, numbers or booleans from YAML/JSON; each reader accepts all of those forms.
// A missing key gives nullopt; a present key of the wrong form or out of its range is an
// error naming the key. Readers never throw.
using Metadata = google::protobuf::Struct;

// kStringMap: a map of names to strings, such as the HTTP headers of `header`.
enum class MetadataKind { kBool, kDuration, kInteger, kString, kStringMap };

// A metadata key some Strait type reads: its form and, for numbers, its range. The table
// of these (metadata.cc) is the one place ranges live: the readers below enforce them, and
// validate_metadata checks a whole map against them wherever a config enters.
struct MetadataKey {
  std::string_view name;
  MetadataKind kind;
  int64_t min = 0;          // integers only
  int64_t max = INT64_MAX;  // integers only; durations are 0..kMaxDuration
  std::string_view help;    // what the key does, for docs and messages
};

const std::vector<MetadataKey>& known_metadata_keys();
const MetadataKey* find_metadata_key(std::string_view name);

absl::StatusOr<std::optional<bool>> metadata_bool(const Metadata& metadata, std::string_view key);
// Durations from metadata are timeouts: 0 <= value <= kMaxDuration.
absl::StatusOr<std::optional<std::chrono::nanoseconds>> metadata_duration(const Metadata& metadata,
                                                                          std::string_view key);
// Integers within the key's range (int64 when the key is not in the table).
absl::StatusOr<std::optional<int64_t>> metadata_int(const Metadata& metadata, std::string_view key);
std::optional<std::string> metadata_string(const Metadata& metadata, std::string_view key);

// Checks every key of `metadata` that the table knows against its form and range; `where`
// prefixes the error ("handler.metadata"). The names of keys the table does not know are
// appended to `unknown` (when given): GOST ignores them, so they are worth a warning, not an error.
absl::Status validate_metadata(const Metadata& metadata, std::string_view where, std::vector<std::string>* unknown);

}  // namespace strait::common
