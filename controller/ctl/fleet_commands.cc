#include "controller/ctl/fleet_commands.h"

#include <chrono>
#include <iostream>

#include "common/config_file.h"
#include "common/duration.h"
#include "common/strings.h"
#include "controller/ctl/ctl_common.h"
#include "controller/ctl/output.h"
#include "controller/resource/resource.h"
#include "strait/v1/admin.grpc.pb.h"

namespace strait::ctl {
namespace {

using common::str_cat;

int64_t now_unix() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

int64_t now_millis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// One "key=value" as kubectl writes labels; the key must not be empty, the value may be.
absl::Status add_label(std::string_view entry, LabelMap& labels) {
  size_t equals = entry.find('=');
  if (equals == std::string_view::npos || equals == 0) {
    return absl::InvalidArgumentError(str_cat("\"", entry, "\" is not key=value"));
  }
  std::string key(entry.substr(0, equals));
  if (!labels.insert({key, std::string(entry.substr(equals + 1))}).second) {
    return absl::InvalidArgumentError(str_cat("label key \"", key, "\" given twice"));
  }
  return absl::OkStatus();
}

// "k=v,k2=v2", as --labels takes it.
absl::StatusOr<LabelMap> parse_label_list(std::string_view text) {
  LabelMap labels;
  for (auto entry : common::split(text, ',', true)) {
    if (auto status = add_label(common::strip_whitespace(entry), labels); !status.ok()) return status;
  }
  return labels;
}

std::string agent_status(const admin::v1::AgentInfo& agent) {
  // Enrolled but never sent a snapshot: "in sync" would claim more than we know.
  if (!agent.connected() && agent.desired_version().empty()) return "not connected";
  if (!agent.last_nack_error().empty() && agent.last_nack_version() == agent.desired_version()) {
    return "refused: " + agent.last_nack_error();
  }
  return agent.applied_version() == agent.desired_version() ? "in sync" : "pending";
}

// kubectl label's arguments: "key=value" sets a label, "key-" removes one.
absl::Status add_label_change(std::string_view change, admin::v1::LabelAgentRequest& request) {
  if (change.find('=') != std::string_view::npos) return add_label(change, *request.mutable_set());
  if (change.size() > 1 && change.back() == '-') {
    request.add_remove(std::string(change.substr(0, change.size() - 1)));
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(str_cat("\"", change, "\" is neither key=value nor key-"));
}

absl::StatusOr<admin::v1::LabelAgentRequest> label_request(const std::string& id,
                                                           const std::vector<std::string>& changes) {
  admin::v1::LabelAgentRequest request;
  request.set_id(id);
  for (const auto& change : changes) {
    if (auto status = add_label_change(change, request); !status.ok()) return status;
  }
  // The controller removes before it sets, so "k=v k-" would quietly keep k: refuse, as kubectl does.
  for (const auto& key : request.remove()) {
    if (request.set().contains(key)) {
      return absl::InvalidArgumentError(str_cat("label \"", key, "\" both set and removed"));
    }
  }
  if (auto status = controller::check_labels(request.set(), "label"); !status.ok()) return status;
  return request;
}

// A token grants "*" as "any value of this key", which no label value may spell; the key
// itself is checked as any label key.
absl::Status check_grants(const LabelMap& grants) {
  LabelMap checked;
  for (const auto& [key, value] : grants) checked[key] = value == "*" ? "" : value;
  return controller::check_labels(checked, "--labels");
}

// A TTL of 0 never expires; anything else is whole seconds, so a sub-second one (which would
// round to 0, "never") is refused rather than inverted.
absl::StatusOr<int64_t> ttl_seconds(const std::string& ttl) {
  auto duration = common::parse_timeout(ttl);
  if (!duration.ok()) return duration.status();
  int64_t seconds = std::chrono::duration_cast<std::chrono::seconds>(*duration).count();
  if (seconds == 0 && duration->count() > 0) {
    return absl::InvalidArgumentError("shorter than a second (0 never expires)");
  }
  return seconds;
}

std::string token_expiry(const admin::v1::TokenInfo& token, int64_t now) {
  if (token.expired()) return "expired";  // the controller's clock decides, not ours
  return ctl::until(token.expires_unix(), now);
}

// The ids while they fit a table cell, a count beyond.
std::string token_agents(const admin::v1::TokenInfo& token) {
  constexpr int kMaxListed = 3;
  if (token.agents().empty()) return "-";
  if (token.agents_size() > kMaxListed) return counted(token.agents_size(), "agent");
  return common::join({token.agents().begin(), token.agents().end()}, ",");
}

}  // namespace

int agents(Ctl& ctl, const std::string& output) {
  admin::v1::AgentsResponse response;
  if (auto status = ctl.stub().Agents(ctl.context().get(), admin::v1::AgentsRequest(), &response); !status.ok()) {
    return fail(status);
  }
  if (output == "json" || output == "yaml") {
    std::cout << (output == "json" ? common::message_to_json(response) : common::message_to_yaml(response));
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  int64_t now = now_millis();
  for (const auto& agent : response.agents()) {
    rows.push_back({agent.id(), labels_text(agent.labels()), labels_text(agent.requested_labels(), "-"),
                    agent.connected() ? "yes" : "no", agent.controller().empty() ? "-" : agent.controller(),
                    agent.applied_version().empty() ? "-" : agent.applied_version(),
                    std::to_string(agent.services_size()), ctl::age(agent.last_seen_unix_millis(), now),
                    agent_status(agent)});
  }
  if (rows.empty()) {
    std::cout << "No agents are enrolled yet.\n";
    return 0;
  }
  std::cout << ctl::format_table(
      {"ID", "LABELS", "REQUESTED", "CONNECTED", "CONTROLLER", "APPLIED", "SERVICES", "LAST SEEN", "STATUS"}, rows);
  return 0;
}

int delete_agent(Ctl& ctl, const std::string& id) {
  admin::v1::DeleteAgentRequest request;
  request.set_id(id);
  admin::v1::DeleteAgentResponse response;
  if (auto status = ctl.stub().DeleteAgent(ctl.context().get(), request, &response); !status.ok()) return fail(status);
  std::cout << "agent " << id << " deleted: its certificate no longer connects\n";
  return 0;
}

int label_agent(Ctl& ctl, const std::string& id, const std::vector<std::string>& changes) {
  auto request = label_request(id, changes);
  if (!request.ok()) return fail(std::string(request.status().message()), kExitUsage);
  admin::v1::AgentInfo agent;
  if (auto status = ctl.stub().LabelAgent(ctl.context().get(), *request, &agent); !status.ok()) return fail(status);
  std::cout << "agent " << id << " labelled: " << labels_text(agent.labels()) << "\n";
  return 0;
}

int create_token(Ctl& ctl, const std::string& ttl, const std::string& description, const std::string& grants) {
  admin::v1::CreateTokenRequest request;
  request.set_description(description);
  auto seconds = ttl_seconds(ttl);
  if (!seconds.ok()) return fail(str_cat("--ttl: ", seconds.status().message()), kExitUsage);
  request.set_ttl_seconds(*seconds);
  auto labels = parse_label_list(grants);
  if (!labels.ok()) return fail(str_cat("--labels: ", labels.status().message()), kExitUsage);
  if (auto status = check_grants(*labels); !status.ok()) return fail(std::string(status.message()), kExitUsage);
  *request.mutable_labels() = *labels;
  admin::v1::CreateTokenResponse response;
  if (auto status = ctl.stub().CreateToken(ctl.context().get(), request, &response); !status.ok()) return fail(status);
  std::cout << response.token() << "\n";
  return 0;
}

int list_tokens(Ctl& ctl, const std::string& output) {
  admin::v1::ListTokensResponse response;
  if (auto status = ctl.stub().ListTokens(ctl.context().get(), admin::v1::ListTokensRequest(), &response);
      !status.ok()) {
    return fail(status);
  }
  if (output == "json" || output == "yaml") {
    std::cout << (output == "json" ? common::message_to_json(response) : common::message_to_yaml(response));
    return 0;
  }
  if (response.tokens().empty()) {
    std::cout << "No join tokens.\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  int64_t now = now_unix();
  for (const auto& token : response.tokens()) {
    rows.push_back({token.id(), token.description().empty() ? "-" : token.description(),
                    labels_text(token.labels(), "-"), token_expiry(token, now), token_agents(token)});
  }
  std::cout << ctl::format_table({"ID", "DESCRIPTION", "GRANTS", "EXPIRES", "AGENTS"}, rows);
  return 0;
}

int delete_token(Ctl& ctl, const std::string& id, bool revoke_agents) {
  admin::v1::DeleteTokenRequest request;
  request.set_id(id);
  request.set_revoke_agents(revoke_agents);
  admin::v1::DeleteTokenResponse response;
  if (auto status = ctl.stub().DeleteToken(ctl.context().get(), request, &response); !status.ok()) return fail(status);
  std::cout << "token " << id << " deleted\n";
  for (const auto& agent : response.revoked_agents()) std::cout << "agent " << agent << " revoked\n";
  return 0;
}

}  // namespace strait::ctl
