#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "strait/v1/config.pb.h"

namespace strait::common {

// The type names an agent has registered, per kind. GOST's command line falls back between
// kinds using them (an unknown listener word means tcp, and so on).
struct KnownTypes {
  std::vector<std::string> handlers;
  std::vector<std::string> listeners;
  std::vector<std::string> connectors;
  std::vector<std::string> dialers;
};

// Builds the services and the chain that GOST builds from -L and -F arguments
// (go-gost/x config/cmd/cmd.go): services service-N, one chain chain-0 whose hops hop-N are
// the -F arguments in order. Errors name the argument and what to change.
absl::StatusOr<config::v1::Config> build_config_from_cmdline(const std::vector<std::string>& services,
                                                             const std::vector<std::string>& nodes,
                                                             const KnownTypes& known);

// Appends everything in `extra` after what `base` holds (GOST merges -C with -L/-F this
// way); single objects (log, tls, api, metrics) from `extra` replace the base's when set.
void merge_config(config::v1::Config& base, const config::v1::Config& extra);

}  // namespace strait::common
