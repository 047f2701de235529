#include "common/duration.h"

#include <cctype>
#include <cmath>
#include <cstdint>
#include "common/strings.h"


namespace strait::common {
namespace {

struct Unit {
  std::string_view suffix;
  double nanoseconds;
};

// Longest suffixes first so that "ms" is not read as "m" followed by garbage.
constexpr Unit kUnits[] = {
    {"ns", 1.0}, {"us", 1e3}, {"µs", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"m", 60e9}, {"h", 3600e9},
};

}  // namespace

absl::StatusOr<std::chrono::nanoseconds> parse_duration(std::string_view text) {
  auto invalid = [&](std::string_view why) {
    return absl::InvalidArgumentError(
        str_cat("invalid duration \"", text, "\": ", why, " (use e.g. 10s, 1m30s, 250ms)"));
  };
  if (text.empty()) return invalid("empty");
  std::string_view rest = text;
  bool negative = false;
  if (rest.front() == '-' || rest.front() == '+') {
    negative = rest.front() == '-';
    rest.remove_prefix(1);
  }
  if (rest.empty()) return invalid("no number");
  if (rest == "0") return std::chrono::nanoseconds{0};
  bool all_digits = !rest.empty();
  for (char c : rest) all_digits = all_digits && std::isdigit(static_cast<unsigned char>(c));
  if (all_digits) {
    if (rest.size() > 12) return invalid("too large");
    auto seconds = std::stoll(std::string(rest));
    return std::chrono::nanoseconds{(negative ? -seconds : seconds) * 1'000'000'000LL};
  }
  double total = 0;
  while (!rest.empty()) {
    size_t i = 0;
    while (i < rest.size() && (std::isdigit(static_cast<unsigned char>(rest[i])) || rest[i] == '.')) ++i;
    if (i == 0) return invalid("expected a number");
    std::string number(rest.substr(0, i));
    if (number == "." || number.find('.') != number.rfind('.')) return invalid("bad number");
    rest.remove_prefix(i);
    const Unit* unit = nullptr;
    for (const auto& candidate : kUnits) {
      if (rest.substr(0, candidate.suffix.size()) == candidate.suffix &&
          (unit == nullptr || candidate.suffix.size() > unit->suffix.size())) {
        unit = &candidate;
      }
    }
    if (unit == nullptr) return invalid("missing or unknown unit");
    rest.remove_prefix(unit->suffix.size());
    total += std::stod(number) * unit->nanoseconds;
    if (total > 9.2e18) return invalid("too large");
  }
  auto ns = static_cast<int64_t>(std::llround(total));
  return std::chrono::nanoseconds{negative ? -ns : ns};
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
