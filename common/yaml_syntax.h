#pragma once

#include <string_view>

#include "absl/status/status.h"

namespace strait::common {

// Checks that `text` is UTF-8 and well-formed YAML (every document), with libyaml, before yaml-cpp reads
// it: yaml-cpp 0.7 (Debian 12) can loop forever on some malformed flow collections, while
// libyaml is a strict, well-fuzzed parser. The error names source:line:column and the
// problem. Aliases are not expanded here.
absl::Status check_yaml_syntax(std::string_view text, std::string_view source);

}  // namespace strait::common
