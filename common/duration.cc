#include "common/duration.h"

#include <algorithm>
#include <cstdint>

#include "common/strings.h"


namespace strait::common {
namespace {

struct Unit {
  std::string_view suffix;
  int64_t nanoseconds;
};

constexpr Unit kUnits[] = {
    {"ns", 1},         {"us", 1'000},          {"µs", 1'000}, {"μs", 1'000}, {"ms", 1'000'000},
    {"s", 1'000'000'000}, {"m", 60'000'000'000}, {"h", 3'600'000'000'000},
};

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// The unit at the start of `text`, longest suffix first so that "ms" is not read as "m".
const Unit* match_unit(std::string_view text) {
  const Unit* best = nullptr;
  for (const auto& unit : kUnits) {
    if (text.substr(0, unit.suffix.size()) == unit.suffix && (best == nullptr || unit.suffix.size() > best->suffix.size())) {
      best = &unit;
    }
  }
  return best;
}

}  // namespace

absl::StatusOr<std::chrono::nanoseconds> parse_duration(std::string_view text) {
  auto invalid = [&](std::string_view why) {
    std::string_view shown = text.size() > 40 ? text.substr(0, 40) : text;
    return absl::InvalidArgumentError(str_cat("invalid duration \"", shown, text.size() > 40 ? "..." : "", "\": ", why,
                                              " (use e.g. 10s, 1m30s, 250ms)"));
  };
  // Go's limit: the magnitude of an int64 count of nanoseconds.
  constexpr unsigned __int128 kLimit = static_cast<unsigned __int128>(INT64_MAX);
  if (text.empty()) return invalid("empty");
  std::string_view rest = text;
  bool negative = false;
  if (rest.front() == '-' || rest.front() == '+') {
    negative = rest.front() == '-';
    rest.remove_prefix(1);
  }
  if (rest.empty()) return invalid("no number");
  if (rest == "0") return std::chrono::nanoseconds{0};
  unsigned __int128 total = 0;
  bool bare_integer = std::all_of(rest.begin(), rest.end(), is_digit);
  while (!rest.empty()) {
    // Whole part: stop accumulating once past the limit; the check below refuses it.
    unsigned __int128 whole = 0;
    size_t i = 0;
    for (; i < rest.size() && is_digit(rest[i]); ++i) {
      if (whole <= kLimit) whole = whole * 10 + static_cast<unsigned>(rest[i] - '0');
    }
    bool has_whole = i > 0;
    // Fraction: keep up to 18 digits, enough for any unit down to nanoseconds.
    uint64_t fraction = 0;
    uint64_t scale = 1;
    bool has_fraction = false;
    if (i < rest.size() && rest[i] == '.') {
      ++i;
      for (; i < rest.size() && is_digit(rest[i]); ++i) {
        has_fraction = true;
        if (scale < 1'000'000'000'000'000'000ULL) {
          fraction = fraction * 10 + static_cast<uint64_t>(rest[i] - '0');
          scale *= 10;
        }
      }
    }
    if (!has_whole && !has_fraction) return invalid(i == 0 ? "expected a number" : "bad number");
    rest.remove_prefix(i);
    const Unit* unit = nullptr;
    if (bare_integer) {
      static constexpr Unit kSeconds{"", 1'000'000'000};
      unit = &kSeconds;
    } else {
      unit = match_unit(rest);
      if (unit == nullptr) return invalid("missing or unknown unit");
      rest.remove_prefix(unit->suffix.size());
    }
    auto per_unit = static_cast<unsigned __int128>(unit->nanoseconds);
    if (whole > kLimit / per_unit) return invalid("too large");
    total += whole * per_unit + static_cast<unsigned __int128>(fraction) * per_unit / scale;
    if (total > kLimit) return invalid("too large");
  }
  auto ns = static_cast<int64_t>(total);
  return std::chrono::nanoseconds{negative ? -ns : ns};
}

absl::StatusOr<std::chrono::nanoseconds> parse_timeout(std::string_view text) {
  auto value = parse_duration(text);
  if (!value.ok()) return value.status();
  if (value->count() < 0) return absl::InvalidArgumentError(str_cat("duration \"", text, "\" must not be negative"));
  if (*value > kMaxDuration) {
    return absl::InvalidArgumentError(str_cat("duration \"", text.substr(0, 40), text.size() > 40 ? "..." : "",
                                              "\" is too large (at most ", format_duration(kMaxDuration), ")"));
  }
  return *value;
}

std::string format_duration(std::chrono::nanoseconds value) {
  int64_t ns = value.count();
  if (ns == 0) return "0s";
  std::string sign = ns < 0 ? "-" : "";
  if (ns < 0) ns = -ns;
  if (ns < 1'000'000'000LL) {
    if (ns % 1'000'000 == 0) return str_cat(sign, ns / 1'000'000, "ms");
    if (ns % 1'000 == 0) return str_cat(sign, ns / 1'000, "µs");
    return str_cat(sign, ns, "ns");
  }
  int64_t hours = ns / 3'600'000'000'000LL;
  ns %= 3'600'000'000'000LL;
  int64_t minutes = ns / 60'000'000'000LL;
  ns %= 60'000'000'000LL;
  std::string out = sign;
  if (hours > 0) out += str_cat(hours, "h");
  if (hours > 0 || minutes > 0) out += str_cat(minutes, "m");
  int64_t whole = ns / 1'000'000'000LL;
  int64_t frac = ns % 1'000'000'000LL;
  if (frac == 0) {
    out += str_cat(whole, "s");
  } else {
    std::string digits = std::to_string(frac + 1'000'000'000LL).substr(1);
    while (!digits.empty() && digits.back() == '0') digits.pop_back();
    out += str_cat(whole, ".", digits, "s");
  }
  return out;
}

}  // namespace strait::common
