// straitctl: compose services and chains for a whole Strait fleet, kubectl-style.
#include <algorithm>
#include <iostream>

#include <CLI/CLI.hpp>
#include <grpc/grpc.h>
#include <grpcpp/grpcpp.h>

#include "common/strings.h"
#include "controller/ctl/ctl_common.h"
#include "controller/ctl/ctl_config.h"
#include "controller/ctl/fleet_commands.h"
#include "controller/ctl/output.h"
#include "controller/resource/resource.h"
#include "controller/resource/resource_yaml.h"
#include "controller/resource/snapshot.h"
#include "strait/v1/admin.grpc.pb.h"

namespace {

using namespace strait;
using controller::Resource;
using common::str_cat;
using ctl::Ctl;
using ctl::counted;
using ctl::fail;
using ctl::kExitFailure;
using ctl::kExitUsage;
using ctl::labels_text;
using ctl::read_input;

// The resources of every -f file, in file order.
absl::StatusOr<std::vector<Resource>> read_files(const std::vector<std::string>& files) {
  std::vector<Resource> out;
  for (const auto& file : files) {
    std::string text = read_input(file);
    if (text.empty() && file != "-") return absl::NotFoundError(str_cat("cannot read ", file));
    auto parsed = controller::parse_resources(text, file == "-" ? "<stdin>" : file);
    if (!parsed.ok()) return parsed.status();
    for (const auto& warning : parsed->warnings) std::cerr << "straitctl: warning: " << warning << "\n";
    out.insert(out.end(), parsed->resources.begin(), parsed->resources.end());
  }
  if (out.empty()) return absl::InvalidArgumentError("no resources in the given files");
  return out;
}

std::string lower(const std::string& text) { return common::to_lower(text); }

// One line about what a resource does, for `get`'s table.
std::string summary(const Resource& resource) {
  switch (resource.spec_case()) {
    case Resource::kService: {
      const auto& service = resource.service();
      std::string text = str_cat(service.handler().type().empty() ? "auto" : service.handler().type(), "+",
                                 service.listener().type().empty() ? "tcp" : service.listener().type(), " ",
                                 service.addr());
      if (!service.handler().chain().empty()) text += " via " + service.handler().chain();
      if (service.forwarder().nodes_size() > 0) text += str_cat(" -> ", service.forwarder().nodes(0).addr());
      return text;
    }
    case Resource::kChain: return counted(resource.chain().hops_size(), "hop");
    case Resource::kHop: return counted(resource.hop().nodes_size(), "node");
    case Resource::kAuther: return counted(resource.auther().auths_size(), "user");
    default: return "";
  }
}

// Position of a kind in resource_kinds(): what others reference comes first.
size_t kind_rank(const Resource& resource) {
  const auto& kinds = controller::resource_kinds();
  return static_cast<size_t>(std::find(kinds.begin(), kinds.end(), resource.kind()) - kinds.begin());
}

int apply_files(Ctl& ctl, const std::vector<std::string>& files) {
  auto resources = read_files(files);
  if (!resources.ok()) return fail(std::string(resources.status().message()), kExitUsage);
  // The controller refuses a reference to what does not exist yet: referenced kinds first.
  std::stable_sort(resources->begin(), resources->end(),
                   [](const Resource& a, const Resource& b) { return kind_rank(a) < kind_rank(b); });
  int status = 0;
  for (const auto& resource : *resources) {
    admin::v1::ApplyRequest request;
    *request.mutable_resource() = resource;
    admin::v1::ApplyResponse response;
    auto result = ctl.stub().Apply(ctl.context().get(), request, &response);
    std::string key = lower(controller::resource_key(resource));
    if (!result.ok()) {
      std::cerr << "straitctl: " << key << ": " << result.error_message() << "\n";
      status = kExitFailure;
      continue;
    }
    std::cout << key << " " << response.result() << "\n";
  }
  return status;
}

int print_resources(const std::vector<Resource>& resources, const std::string& output, bool single) {
  if (output == "yaml") {
    for (size_t i = 0; i < resources.size(); ++i) {
      if (i > 0) std::cout << "---\n";
      std::cout << controller::resource_to_yaml(resources[i]);
    }
    return 0;
  }
  if (output == "json") {
    if (single && resources.size() == 1) {
      std::cout << controller::resource_to_json(resources[0]);
      return 0;
    }
    std::cout << "{\"items\": [\n";
    for (size_t i = 0; i < resources.size(); ++i) {
      std::string item = controller::resource_to_json(resources[i]);
      std::cout << common::strip_whitespace(item) << (i + 1 < resources.size() ? ",\n" : "\n");
    }
    std::cout << "]}\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& resource : resources) {
    rows.push_back({resource.kind(), resource.metadata().name(), std::to_string(resource.metadata().revision()),
                    labels_text(resource.metadata().placement().match_labels()), summary(resource)});
  }
  std::cout << ctl::format_table({"KIND", "NAME", "REVISION", "PLACEMENT", "SUMMARY"}, rows);
  return 0;
}

int get(Ctl& ctl, const std::string& kind, const std::string& name, const std::string& output, bool show_secrets) {
  if (!name.empty()) {
    admin::v1::GetRequest request;
    request.set_kind(kind);
    request.set_name(name);
    request.set_show_secrets(show_secrets);
    Resource resource;
    if (auto status = ctl.stub().Get(ctl.context().get(), request, &resource); !status.ok()) return fail(status);
    return print_resources({resource}, output, true);
  }
  admin::v1::ListRequest request;
  request.set_kind(kind);
  request.set_show_secrets(show_secrets);
  admin::v1::ListResponse response;
  if (auto status = ctl.stub().List(ctl.context().get(), request, &response); !status.ok()) return fail(status);
  if (response.resources().empty() && output == "table") {
    std::cout << "No resources" << (kind.empty() ? "" : " of kind " + kind) << ".\n";
    return 0;
  }
  return print_resources({response.resources().begin(), response.resources().end()}, output, false);
}

bool runs(const config::v1::Config& snapshot, const Resource& resource) {
  const std::string& name = resource.metadata().name();
  auto named = [&](const auto& list) {
    return std::any_of(list.begin(), list.end(), [&](const auto& item) { return item.name() == name; });
  };
  switch (resource.spec_case()) {
    case Resource::kService: return named(snapshot.services());
    case Resource::kChain: return named(snapshot.chains());
    case Resource::kHop: return named(snapshot.hops());
    case Resource::kAuther: return named(snapshot.authers());
    default: return false;
  }
}

int describe(Ctl& ctl, const std::string& kind, const std::string& name) {
  admin::v1::GetRequest get_request;
  get_request.set_kind(kind);
  get_request.set_name(name);
  Resource resource;
  if (auto status = ctl.stub().Get(ctl.context().get(), get_request, &resource); !status.ok()) return fail(status);
  admin::v1::ListResponse all;
  if (auto status = ctl.stub().List(ctl.context().get(), admin::v1::ListRequest(), &all); !status.ok()) return fail(status);
  admin::v1::AgentsResponse agents;
  if (auto status = ctl.stub().Agents(ctl.context().get(), admin::v1::AgentsRequest(), &agents); !status.ok()) {
    return fail(status);
  }
  std::cout << controller::resource_to_yaml(resource);
  std::vector<Resource> resources(all.resources().begin(), all.resources().end());
  std::vector<std::vector<std::string>> rows;
  for (const auto& agent : agents.agents()) {
    controller::Labels labels(agent.labels().begin(), agent.labels().end());
    if (!runs(controller::compute_snapshot(resources, labels), resource)) continue;
    std::string state = !agent.connected() ? "disconnected"
                        : !agent.last_nack_error().empty() && agent.last_nack_version() == agent.desired_version()
                            ? "refused: " + agent.last_nack_error()
                        : agent.applied_version() == agent.desired_version() ? "applied"
                                                                             : "pending";
    std::string listening = "-";
    for (const auto& service : agent.services()) {
      if (service.name() == name && resource.spec_case() == Resource::kService) {
        listening = str_cat(service.address(), ", ", service.active_connections(), " open");
      }
    }
    rows.push_back({agent.id(), agent.applied_version(), state, listening});
  }
  std::cout << "\nAgents:\n";
  if (rows.empty()) {
    std::cout << "  none (no connected agent matches its placement";
    if (resource.spec_case() != Resource::kService) std::cout << " or references it";
    std::cout << ")\n";
  } else {
    std::cout << ctl::format_table({"AGENT", "APPLIED", "STATE", "SERVICE"}, rows);
  }
  return 0;
}

int remove(Ctl& ctl, const std::string& kind, const std::string& name, const std::vector<std::string>& files) {
  std::vector<std::pair<std::string, std::string>> targets;
  if (!files.empty()) {
    auto resources = read_files(files);
    if (!resources.ok()) return fail(std::string(resources.status().message()), kExitUsage);
    // What is still referenced cannot be deleted: referring kinds first.
    std::stable_sort(resources->begin(), resources->end(),
                     [](const Resource& a, const Resource& b) { return kind_rank(a) > kind_rank(b); });
    for (const auto& resource : *resources) targets.emplace_back(resource.kind(), resource.metadata().name());
  } else {
    if (kind.empty() || name.empty()) return fail("delete needs KIND NAME or -f FILE", kExitUsage);
    targets.emplace_back(kind, name);
  }
  int status = 0;
  for (const auto& [target_kind, target_name] : targets) {
    admin::v1::DeleteRequest request;
    request.set_kind(target_kind);
    request.set_name(target_name);
    admin::v1::DeleteResponse response;
    auto result = ctl.stub().Delete(ctl.context().get(), request, &response);
    if (!result.ok()) {
      std::cerr << "straitctl: " << lower(target_kind) << "/" << target_name << ": " << result.error_message() << "\n";
      status = kExitFailure;
      continue;
    }
    std::cout << lower(controller::resource_key(response.resource())) << " deleted\n";
  }
  return status;
}

// Exit status as kubectl diff: 0 no differences, 1 differences, 2 (or more) an error.
int diff(Ctl& ctl, const std::vector<std::string>& files) {
  auto resources = read_files(files);
  if (!resources.ok()) return fail(std::string(resources.status().message()), kExitUsage);
  admin::v1::DiffRequest request;
  for (const auto& resource : *resources) *request.add_resources() = resource;
  admin::v1::DiffResponse response;
  if (auto status = ctl.stub().Diff(ctl.context().get(), request, &response); !status.ok()) {
    fail(status);
    return kExitUsage;
  }
  bool changed = false;
  for (const auto& item : response.diffs()) {
    std::string key = lower(item.kind()) + "/" + item.name();
    if (item.action() == "unchanged") {
      std::cout << key << ": unchanged\n";
      continue;
    }
    changed = true;
    std::string agents = item.agents().empty() ? "no connected agent" : common::join({item.agents().begin(), item.agents().end()}, ", ");
    std::cout << key << ": " << item.action() << " (agents: " << agents << ")\n";
    Resource current = item.current();
    Resource desired = item.desired();
    current.mutable_metadata()->set_revision(0);
    desired.mutable_metadata()->set_revision(0);
    std::cout << ctl::line_diff(item.has_current() ? controller::resource_to_yaml(current) : "",
                                controller::resource_to_yaml(desired));
  }
  return changed ? 1 : 0;
}

int watch(Ctl& ctl, const std::string& kind) {
  admin::v1::WatchRequest request;
  request.set_kind(kind);
  auto context = ctl.stream_context();
  auto reader = ctl.stub().Watch(context.get(), request);
  admin::v1::WatchEvent event;
  while (reader->Read(&event)) {
    std::cout << event.revision() << " " << (event.type() == admin::v1::WatchEvent::PUT ? "PUT" : "DELETE") << " "
              << lower(controller::resource_key(event.resource())) << std::endl;
  }
  auto status = reader->Finish();
  return status.ok() ? 0 : fail(status);
}

int set_context(const ctl::Context& flags, const std::string& name, bool use) {
  auto path = ctl::config_path();
  auto config = ctl::load_ctl_config(path);
  if (!config.ok()) return fail(std::string(config.status().message()));
  auto it = std::find_if(config->contexts.begin(), config->contexts.end(), [&](auto& c) { return c.name == name; });
  if (it == config->contexts.end()) {
    ctl::Context context;
    context.name = name;
    config->contexts.push_back(context);
    it = std::prev(config->contexts.end());
  }
  if (!flags.controller.empty()) it->controller = flags.controller;
  if (!flags.token.empty()) it->token = flags.token;
  if (!flags.token_file.empty()) it->token_file = flags.token_file;
  if (!flags.ca_file.empty()) it->ca_file = flags.ca_file;
  if (use || config->current_context.empty()) config->current_context = name;
  if (auto status = ctl::save_ctl_config(path, *config); !status.ok()) return fail(std::string(status.message()));
  std::cout << "context \"" << name << "\" saved in " << path
            << (config->current_context == name ? " (current)" : "") << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"straitctl: manage the services and chains of a Strait fleet"};
  app.require_subcommand(1);
  app.set_version_flag("-V,--version", std::string("straitctl ") + STRAIT_VERSION);
  ctl::Context flags;
  std::string context_name;
  app.add_option("--controller", flags.controller, "Admin API address host:port (default 127.0.0.1:7771)");
  app.add_option("--token", flags.token, "admin token (prefer --token-file)");
  app.add_option("--token-file", flags.token_file, "file holding the admin token (the controller's admin.token)");
  app.add_option("--ca-file", flags.ca_file, "CA to trust (the controller's ca.pem)");
  app.add_option("--context", context_name, "context of ~/.config/strait/config.yaml to use");

  std::vector<std::string> files, label_changes;
  std::string kind, name, id, output = "table", ttl = "24h", description, grants;
  bool show_secrets = false, use = false, revoke_agents = false;
  auto add_output = [&](CLI::App* command) {
    command->add_option("-o,--output", output, "table, yaml or json")->check(CLI::IsMember({"table", "yaml", "json"}));
  };
  auto* apply_command = app.add_subcommand("apply", "create or update the resources of YAML files");
  apply_command->add_option("-f,--filename", files, "file (- for stdin); repeatable")->required();
  auto* get_command = app.add_subcommand("get", "list resources, or show one");
  get_command->add_option("kind", kind, "Service, Chain, Hop, Auther, ... (any case, plural)");
  get_command->add_option("name", name, "resource name");
  get_command->add_flag("--show-secrets", show_secrets, "print passwords instead of ********");
  add_output(get_command);
  auto* describe_command = app.add_subcommand("describe", "a resource and the agents running it");
  describe_command->add_option("kind", kind)->required();
  describe_command->add_option("name", name)->required();
  auto* delete_command = app.add_subcommand("delete", "remove resources");
  delete_command->add_option("kind", kind);
  delete_command->add_option("name", name);
  delete_command->add_option("-f,--filename", files, "delete what these files define");
  auto* diff_command = app.add_subcommand("diff", "what applying files would change, and on which agents");
  diff_command->add_option("-f,--filename", files, "file (- for stdin); repeatable")->required();
  auto* agents_command = app.add_subcommand("agents", "the fleet: labels, connection, applied version, status");
  agents_command->require_subcommand(0, 1);  // plain `agents` lists
  add_output(agents_command);
  auto* agents_delete =
      agents_command->add_subcommand("delete", "revoke an agent's certificate; its id may enrol again");
  agents_delete->add_option("id", id, "agent id")->required();
  auto* agents_label = agents_command->add_subcommand("label", "set (key=value) or remove (key-) an agent's labels");
  agents_label->add_option("id", id, "agent id")->required();
  agents_label->add_option("labels", label_changes, "key=value to set, key- to remove")->required();
  auto* watch_command = app.add_subcommand("watch", "print every change of the resources as it happens");
  watch_command->add_option("kind", kind);
  auto* token_command = app.add_subcommand("token", "join tokens for agents");
  token_command->require_subcommand(1);
  auto* token_create = token_command->add_subcommand("create", "create a join token and print it");
  // 24h unless told otherwise, as kubeadm's tokens: a forgotten join token should not stay valid.
  token_create->add_option("--ttl", ttl, "lifetime, e.g. 1h or 720h; 0 never expires")->capture_default_str();
  token_create->add_option("--description", description, "what the token is for");
  token_create->add_option("--labels", grants, "labels it grants, k=v,k2=v2 (v * grants any value of k)");
  auto* token_list = token_command->add_subcommand("list", "join tokens, what they grant, who enrolled with them");
  add_output(token_list);
  auto* token_delete = token_command->add_subcommand("delete", "a join token enrols no one any more");
  token_delete->add_option("id", id, "token id (token list's ID)")->required();
  token_delete->add_flag("--revoke-agents", revoke_agents, "also delete the agents it enrolled");
  auto* config_command = app.add_subcommand("config", "contexts in ~/.config/strait/config.yaml");
  config_command->require_subcommand(1);
  auto* set_context_command = config_command->add_subcommand("set-context", "create or update a context");
  set_context_command->add_option("name", name)->required();
  set_context_command->add_flag("--use", use, "make it the current context");
  auto* use_context_command = config_command->add_subcommand("use-context", "switch the current context");
  use_context_command->add_option("name", name)->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitUsage;
  }

  if (config_command->parsed()) return set_context(flags, name, use || use_context_command->parsed());
  auto connection = ctl::resolve_connection(flags, context_name);
  if (!connection.ok()) return fail(std::string(connection.status().message()), kExitUsage);
  // gRPC's last shutdown runs here, blocking, once the channel is gone: left to the library
  // it ends on a detached thread racing the process exit.
  grpc_init();
  int code = kExitUsage;
  {
    Ctl ctl(*connection);
    if (auto status = ctl.connect(); !status.ok()) {
      code = fail(std::string(status.message()), kExitUsage);
    } else if (apply_command->parsed()) {
      code = apply_files(ctl, files);
    } else if (get_command->parsed()) {
      code = get(ctl, kind, name, output, show_secrets);
    } else if (describe_command->parsed()) {
      code = describe(ctl, kind, name);
    } else if (delete_command->parsed()) {
      code = remove(ctl, kind, name, files);
    } else if (diff_command->parsed()) {
      code = diff(ctl, files);
    } else if (agents_delete->parsed()) {
      code = ctl::delete_agent(ctl, id);
    } else if (agents_label->parsed()) {
      code = ctl::label_agent(ctl, id, label_changes);
    } else if (agents_command->parsed()) {
      code = ctl::agents(ctl, output);
    } else if (watch_command->parsed()) {
      code = watch(ctl, kind);
    } else if (token_create->parsed()) {
      code = ctl::create_token(ctl, ttl, description, grants);
    } else if (token_list->parsed()) {
      code = ctl::list_tokens(ctl, output);
    } else if (token_delete->parsed()) {
      code = ctl::delete_token(ctl, id, revoke_agents);
    }
  }
  grpc_shutdown_blocking();
  return code;
}
