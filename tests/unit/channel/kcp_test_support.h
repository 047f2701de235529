#pragma once

// Shared by the kcp channel's tests: options from metadata written as key/value pairs.

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "agent/channel/kcp_options.h"

namespace strait::agent::kcp_test {

using Pairs = std::vector<std::pair<std::string, std::string>>;

inline google::protobuf::Struct metadata(const Pairs& values) {
  google::protobuf::Struct result;
  for (const auto& [key, value] : values) (*result.mutable_fields())[key].set_string_value(value);
  return result;
}

inline KcpConfig config_of(const Pairs& values) {
  auto config = parse_kcp_config(metadata(values));
  if (!config.ok()) throw std::runtime_error(std::string(config.status().message()));
  return *config;
}

}  // namespace strait::agent::kcp_test
