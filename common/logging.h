#pragma once

#include "absl/status/status.h"
#include "strait/v1/config.pb.h"

namespace strait::common {

// Configures the process-wide spdlog logger from GOST's `log` section (level, format
// text|json, output stdout|stderr|file). Defaults: info, text, stderr.
absl::Status configure_logging(const config::v1::LogConfig& log, bool debug_flag);

}  // namespace strait::common
