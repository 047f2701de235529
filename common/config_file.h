#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <google/protobuf/message.h>
#include <yaml-cpp/yaml.h>

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

// Fills `message` from a YAML node by the loader's rules (keys match field names
// case-insensitively, unknown keys become warnings, metadata maps keep their text). `path`
// prefixes error messages. Map fields are not supported.
absl::Status yaml_to_message(const YAML::Node& node, google::protobuf::Message& message, std::string_view source,
                             const std::string& path, std::vector<std::string>& warnings);

// Turns every map and list under `node` to block style (one key per line), as people write YAML.
void make_block_style(YAML::Node node);

// A message as GOST's -O prints config: camelCase keys, empty fields omitted.
std::string message_to_json(const google::protobuf::Message& message);
std::string message_to_yaml(const google::protobuf::Message& message);

// The effective config as GOST's -O prints it.
inline std::string config_to_json(const config::v1::Config& config) { return message_to_json(config); }
inline std::string config_to_yaml(const config::v1::Config& config) { return message_to_yaml(config); }

}  // namespace strait::common
