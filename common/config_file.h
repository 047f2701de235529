#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "strait/v1/config.pb.h"

namespace strait::common {

struct LoadedConfig {
  config::v1::Config config;
  std::vector<std::string> warnings;  // unknown keys, each with file:line and the key path
};

// Parses GOST-style YAML or JSON text (JSON is read as YAML). Keys match case-insensitively
// as in GOST (viper); errors and warnings start with "<source>:<line>: <key path>".
absl::StatusOr<LoadedConfig> parse_config_text(std::string_view text, std::string_view source);

// Reads -C's argument: a file path (.yaml/.yml/.json), or inline JSON when it starts with '{'.
absl::StatusOr<LoadedConfig> load_config_argument(const std::string& argument);

// The effective config as GOST's -O prints it: camelCase keys, empty fields omitted.
std::string config_to_json(const config::v1::Config& config);
std::string config_to_yaml(const config::v1::Config& config);

}  // namespace strait::common
