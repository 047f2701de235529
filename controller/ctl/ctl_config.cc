#include "controller/ctl/ctl_config.h"

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "common/strings.h"

namespace strait::ctl {
namespace {

using common::str_cat;

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

std::string read_token_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return "";
  std::stringstream contents;
  contents << in.rdbuf();
  return std::string(common::strip_whitespace(contents.str()));
}

}  // namespace

std::string config_path() {
  if (auto path = env("STRAIT_CONFIG"); !path.empty()) return path;
  std::string base = env("XDG_CONFIG_HOME");
  if (base.empty()) base = env("HOME") + "/.config";
  return base + "/strait/config.yaml";
}

absl::StatusOr<CtlConfig> load_ctl_config(const std::string& path) {
  CtlConfig config;
  if (!std::filesystem::exists(path)) return config;
  try {
    YAML::Node root = YAML::LoadFile(path);
    if (root["current-context"]) config.current_context = root["current-context"].as<std::string>();
    for (const auto& node : root["contexts"]) {
      Context context;
      context.name = node["name"].as<std::string>("");
      context.controller = node["controller"].as<std::string>("");
      context.token = node["token"].as<std::string>("");
      context.token_file = node["token-file"].as<std::string>("");
      context.ca_file = node["ca-file"].as<std::string>("");
      config.contexts.push_back(std::move(context));
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(str_cat(path, ":", e.mark.line + 1, ": ", e.msg));
  }
  return config;
}

absl::Status save_ctl_config(const std::string& path, const CtlConfig& config) {
  YAML::Node root;
  root["current-context"] = config.current_context;
  for (const auto& context : config.contexts) {
    YAML::Node node;
    node["name"] = context.name;
    if (!context.controller.empty()) node["controller"] = context.controller;
    if (!context.token.empty()) node["token"] = context.token;
    if (!context.token_file.empty()) node["token-file"] = context.token_file;
    if (!context.ca_file.empty()) node["ca-file"] = context.ca_file;
    root["contexts"].push_back(node);
  }
  std::error_code error;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), error);
  mode_t previous = ::umask(077);  // it may hold a token
  std::ofstream out(path, std::ios::trunc);
  YAML::Emitter emitter;
  emitter << root;
  out << emitter.c_str() << "\n";
  out.close();
  ::umask(previous);
  if (!out) return absl::UnavailableError(str_cat("cannot write ", path));
  return absl::OkStatus();
}

absl::StatusOr<Connection> resolve_connection(const Context& flags, const std::string& context_name) {
  auto config = load_ctl_config(config_path());
  if (!config.ok()) return config.status();
  std::string wanted = !context_name.empty() ? context_name : env("STRAIT_CONTEXT");
  if (wanted.empty()) wanted = config->current_context;
  Context context;
  if (!wanted.empty()) {
    bool found = false;
    for (const auto& candidate : config->contexts) {
      if (candidate.name == wanted) {
        context = candidate;
        found = true;
      }
    }
    if (!found && !context_name.empty()) {
      return absl::NotFoundError(str_cat("context \"", context_name, "\" is not in ", config_path()));
    }
  }
  auto pick = [](const std::string& flag, const char* variable, const std::string& from_context) {
    if (!flag.empty()) return flag;
    if (auto value = env(variable); !value.empty()) return value;
    return from_context;
  };
  Connection connection;
  connection.controller = pick(flags.controller, "STRAIT_CONTROLLER", context.controller);
  connection.ca_file = pick(flags.ca_file, "STRAIT_CA_FILE", context.ca_file);
  // The first source that gives a token wins: flag, flag file, variable, variable file, context.
  std::string token;
  for (auto [value, is_file] : {std::pair{flags.token, false}, std::pair{flags.token_file, true},
                                std::pair{env("STRAIT_TOKEN"), false}, std::pair{env("STRAIT_TOKEN_FILE"), true},
                                std::pair{context.token, false}, std::pair{context.token_file, true}}) {
    if (value.empty()) continue;
    token = is_file ? read_token_file(value) : value;
    break;
  }
  connection.token = token;
  if (connection.controller.empty()) connection.controller = "127.0.0.1:7771";
  return connection;
}

}  // namespace strait::ctl
