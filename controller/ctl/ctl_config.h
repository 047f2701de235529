#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace strait::ctl {

// Where straitctl connects and how it proves it is an admin: a context of
// ~/.config/strait/config.yaml (or $STRAIT_CONFIG), overridden by STRAIT_* variables, then by
// flags, as kubectl does.
struct Connection {
  std::string controller;  // host:port of the Admin API
  std::string token;
  std::string ca_file;
};

struct Context {
  std::string name;
  std::string controller;
  std::string token;
  std::string token_file;
  std::string ca_file;
};

struct CtlConfig {
  std::string current_context;
  std::vector<Context> contexts;
};

std::string config_path();
absl::StatusOr<CtlConfig> load_ctl_config(const std::string& path);
absl::Status save_ctl_config(const std::string& path, const CtlConfig& config);

// Flags win over STRAIT_CONTROLLER / STRAIT_TOKEN / STRAIT_TOKEN_FILE / STRAIT_CA_FILE, which win
// over the context (--context, else $STRAIT_CONTEXT, else current-context).
absl::StatusOr<Connection> resolve_connection(const Context& flags, const std::string& context_name);

}  // namespace strait::ctl
