#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace strait::common {

// One -L or -F argument in GOST's grammar:
//   [scheme://][user[:pass]@]host:port[/target1,target2,...][?key=value&...]
// after GOST's normalisation: a missing scheme becomes "auto", "https" becomes "http+tls".
struct GostUrl {
  std::string scheme;                 // lower-case, e.g. "http+tls"
  std::string first;                  // handler / connector part of the scheme
  std::string second;                 // listener / dialer part; equals first for one word
  bool one_word = true;               // scheme had no '+'
  std::optional<std::string> username;
  std::optional<std::string> password;
  std::string host;                   // authority after userinfo, raw: may hold commas, ranges
  std::string path;                   // percent-decoded, leading '/' kept
  std::vector<std::pair<std::string, std::string>> query;  // decoded, in order, first wins
};

absl::StatusOr<GostUrl> parse_gost_url(std::string_view text);

// Decodes %XX escapes; when plus_is_space, '+' becomes ' ' (query strings).
absl::StatusOr<std::string> percent_decode(std::string_view text, bool plus_is_space);

// Expands "host:8000-8002" into host:8000, host:8001, host:8002; other forms are returned
// unchanged as a single element. Ranges over 65535 entries or reversed are errors.
absl::StatusOr<std::vector<std::string>> expand_port_range(std::string_view host_port);

}  // namespace strait::common
