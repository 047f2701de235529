#pragma once

#include <string>
#include <vector>

#include "agent/handler/handler.h"

namespace strait::agent {

absl::StatusOr<std::unique_ptr<Handler>> make_handler(const config::v1::ServiceConfig& service,
                                                      const config::v1::Config& config);
std::vector<std::string> handler_types();

}  // namespace strait::agent
