#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace strait::common {

// The longest duration any setting accepts: ten years. Longer values are almost always a
// typo, and keeping every deadline this far below the clock's range means `now + timeout`
// can never overflow.
constexpr std::chrono::nanoseconds kMaxDuration = std::chrono::hours(24 * 365 * 10);

// Parses a Go duration string as GOST writes them ("10s", "1m30s", "250ms", "1.5h").
// A bare integer is taken as seconds, as GOST's metadata helpers do. Never throws: a value
// past the range of int64 nanoseconds (about 292 years) is refused as too large, and
// fractions finer than a nanosecond are truncated, as Go's time.ParseDuration does.
absl::StatusOr<std::chrono::nanoseconds> parse_duration(std::string_view text);

// parse_duration, then 0 <= value <= kMaxDuration: what every timeout setting accepts.
absl::StatusOr<std::chrono::nanoseconds> parse_timeout(std::string_view text);

// Formats a duration the way Go prints it ("30s", "1m30s", "250ms").
std::string format_duration(std::chrono::nanoseconds value);

}  // namespace strait::common
