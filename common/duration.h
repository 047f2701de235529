#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace strait::common {

// Parses a Go duration string as GOST writes them ("10s", "1m30s", "250ms", "1.5h").
// A bare integer is taken as seconds, as GOST's metadata helpers do.
absl::StatusOr<std::chrono::nanoseconds> parse_duration(std::string_view text);

// Formats a duration the way Go prints it ("30s", "1m30s", "250ms").
std::string format_duration(std::chrono::nanoseconds value);

}  // namespace strait::common
