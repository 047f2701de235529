#include "controller/server/admin_service.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>

#include <spdlog/spdlog.h>

#include "common/log_escape.h"
#include "common/strings.h"
#include "controller/resource/diff.h"
#include "controller/resource/resource.h"
#include "controller/resource/validate.h"

namespace strait::controller {
namespace {

using grpc::Status;
using grpc::StatusCode;

Status to_grpc(const absl::Status& status) {
  auto code = static_cast<StatusCode>(static_cast<int>(status.code()));  // both follow google.rpc.Code
  return Status(code, std::string(status.message()));
}

std::string canonical_or_empty(const std::string& kind) { return kind.empty() ? "" : canonical_kind(kind); }

int64_t now_unix() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

Resource redacted(Resource resource, bool show_secrets) {
  if (!show_secrets) redact_secrets(resource);
  return resource;
}

}  // namespace

Status AdminService::authorize(grpc::ServerContext& context) {
  metrics_.admin_requests.fetch_add(1);
  auto range = context.client_metadata().equal_range("authorization");
  std::string_view value;
  if (range.first != range.second) value = std::string_view(range.first->second.data(), range.first->second.size());
  if (credentials_.admin_allowed(value)) return Status::OK;
  metrics_.admin_denied.fetch_add(1);
  spdlog::warn("admin call from {} refused: missing or wrong admin token", context.peer());
  return Status(StatusCode::UNAUTHENTICATED, "admin token missing or wrong");
}

Status AdminService::Apply(grpc::ServerContext* context, const admin::v1::ApplyRequest* request,
                           admin::v1::ApplyResponse* response) {
  if (auto status = authorize(*context); !status.ok()) return status;
  Resource resource = request->resource();
  if (auto status = normalize_resource(resource); !status.ok()) return to_grpc(status);
  auto stored_exists = [this](const std::string& kind, const std::string& name) { return store_.get(kind, name).ok(); };
  if (auto status = validate_resource(resource, stored_exists, nullptr); !status.ok()) {
    spdlog::warn("apply of {} refused: {}", resource_key(resource), common::to_std(status.message()));
    return to_grpc(status);
  }
  std::optional<int64_t> expected;
  if (resource.metadata().revision() > 0) expected = resource.metadata().revision();
  auto current = store_.get(resource.kind(), resource.metadata().name());
  if (current.ok() && !expected && same_content(*current, resource)) {
    *response->mutable_resource() = redacted(*current, false);
    response->set_result("unchanged");
    return Status::OK;
  }
  if (auto status = check_snapshot_sizes_with(resource); !status.ok()) {
    spdlog::warn("apply of {} refused: {}", resource_key(resource), common::to_std(status.message()));
    return to_grpc(status);
  }
  auto stored = store_.put(resource, expected);
  if (!stored.ok()) return to_grpc(stored.status());
  *response->mutable_resource() = redacted(*stored, false);
  response->set_result(current.ok() ? "configured" : "created");
  spdlog::info("{} {} (revision {})", resource_key(*stored), response->result(), stored->metadata().revision());
  return Status::OK;
}

absl::Status AdminService::check_snapshot_sizes_with(const Resource& resource) {
  auto all = store_.list("");
  if (!all.ok()) return all.status();
  auto same = [&](const Resource& stored) {
    return stored.kind() == resource.kind() && stored.metadata().name() == resource.metadata().name();
  };
  if (auto it = std::find_if(all->begin(), all->end(), same); it != all->end()) {
    *it = resource;
  } else {
    all->push_back(resource);
  }
  return fleet_.check_snapshot_sizes(*all);
}

Status AdminService::Get(grpc::ServerContext* context, const admin::v1::GetRequest* request,
                         admin::v1::Resource* response) {
  if (auto status = authorize(*context); !status.ok()) return status;
  std::string kind = canonical_or_empty(request->kind());
  if (kind.empty()) return Status(StatusCode::INVALID_ARGUMENT, "unknown kind \"" + request->kind() + "\"");
  auto resource = store_.get(kind, request->name());
  if (!resource.ok()) return to_grpc(resource.status());
  *response = redacted(*resource, request->show_secrets());
  return Status::OK;
}

Status AdminService::List(grpc::ServerContext* context, const admin::v1::ListRequest* request,
                          admin::v1::ListResponse* response) {
  if (auto status = authorize(*context); !status.ok()) return status;
  std::string kind = canonical_or_empty(request->kind());
  if (!request->kind().empty() && kind.empty()) {
    return Status(StatusCode::INVALID_ARGUMENT, "unknown kind \"" + request->kind() + "\"");
  }
  auto all = store_.read_all();
  if (!all.ok()) return to_grpc(all.status());
  for (auto& resource : all->resources) {
    if (kind.empty() || resource.kind() == kind) {
      *response->add_resources() = redacted(std::move(resource), request->show_secrets());
    }
  }
  response->set_revision(all->revision);
  return Status::OK;
}

Status AdminService::Delete(grpc::ServerContext* context, const admin::v1::DeleteRequest* request,
                            admin::v1::DeleteResponse* response) {
  if (auto status = authorize(*context); !status.ok()) return status;
  std::string kind = canonical_or_empty(request->kind());
  if (kind.empty()) return Status(StatusCode::INVALID_ARGUMENT, "unknown kind \"" + request->kind() + "\"");
  std::optional<int64_t> expected;
  if (request->revision() > 0) expected = request->revision();
  // What a service still references cannot go: every agent running the service would refuse
  // its next snapshot.
  if (auto target = store_.get(kind, request->name()); target.ok()) {
    auto all = store_.list("");
    if (!all.ok()) return to_grpc(all.status());
    if (auto users = referrers_of(*target, *all); !users.empty()) {
      return Status(StatusCode::FAILED_PRECONDITION,
                    common::str_cat(resource_key(*target), " is referenced by ", common::join(users, ", "),
                                    "; change or delete those first"));
    }
  }
  auto removed = store_.remove(kind, request->name(), expected);
  if (!removed.ok()) return to_grpc(removed.status());
  *response->mutable_resource() = redacted(*removed, false);
  spdlog::info("{} deleted", resource_key(*removed));
  return Status::OK;
}

Status AdminService::Diff(grpc::ServerContext* context, const admin::v1::DiffRequest* request,
                          admin::v1::DiffResponse* response) {
  if (auto status = authorize(*context); !status.ok()) return status;
  std::vector<Resource> desired;
  for (Resource resource : request->resources()) {
    if (auto status = normalize_resource(resource); !status.ok()) return to_grpc(status);
    desired.push_back(std::move(resource));
  }
  auto stored = store_.list("");
  if (!stored.ok()) return to_grpc(stored.status());
  // References may be satisfied by the files being diffed or by what is stored.
  auto exists = [&](const std::string& kind, const std::string& name) {
    auto named = [&](const Resource& r) { return r.kind() == kind && r.metadata().name() == name; };
    return std::any_of(desired.begin(), desired.end(), named) || std::any_of(stored->begin(), stored->end(), named);
  };
  for (const auto& resource : desired) {
    if (auto status = validate_resource(resource, exists, nullptr); !status.ok()) return to_grpc(status);
  }
  for (auto& diff : diff_resources(*stored, desired, fleet_.agent_labels())) {
    if (diff.has_current()) redact_secrets(*diff.mutable_current());
    redact_secrets(*diff.mutable_desired());
    *response->add_diffs() = std::move(diff);
  }
  return Status::OK;
}

Status AdminService::Watch(grpc::ServerContext* context, const admin::v1::WatchRequest* request,
                           grpc::ServerWriter<admin::v1::WatchEvent>* writer) {
  if (auto status = authorize(*context); !status.ok()) return status;
  std::string kind = canonical_or_empty(request->kind());
  std::mutex mutex;
  std::condition_variable changed;
  std::deque<admin::v1::WatchEvent> pending;
  int id = store_.watch([&](const StoreEvent& event) {
    if (!kind.empty() && event.resource.kind() != kind) return;
    admin::v1::WatchEvent out;
    out.set_type(event.type == StoreEvent::Type::kPut ? admin::v1::WatchEvent::PUT : admin::v1::WatchEvent::DELETE);
    *out.mutable_resource() = redacted(event.resource, false);
    out.set_revision(event.revision);
    std::lock_guard lock(mutex);
    pending.push_back(std::move(out));
    changed.notify_one();
  });
  std::unique_lock lock(mutex);
  while (!context->IsCancelled()) {
    changed.wait_for(lock, std::chrono::milliseconds(500), [&] { return !pending.empty(); });
    while (!pending.empty()) {
      auto event = std::move(pending.front());
      pending.pop_front();
      lock.unlock();
      bool written = writer->Write(event);
      lock.lock();
      if (!written) break;
    }
  }
  lock.unlock();
  store_.unwatch(id);
  return Status::OK;
}

Status AdminService::Agents(grpc::ServerContext* context, const admin::v1::AgentsRequest*,
                            admin::v1::AgentsResponse* response) {
  if (auto status = authorize(*context); !status.ok()) return status;
  for (auto& agent : fleet_.agents()) *response->add_agents() = std::move(agent);
  return Status::OK;
}

Status AdminService::CreateToken(grpc::ServerContext* context, const admin::v1::CreateTokenRequest* request,
                                 admin::v1::CreateTokenResponse* response) {
  if (auto status = authorize(*context); !status.ok()) return status;
  std::map<std::string, std::string> grants(request->labels().begin(), request->labels().end());
  auto created = credentials_.create_join_token(request->description(), request->ttl_seconds(), grants);
  if (!created.ok()) return to_grpc(created.status());
  *response = *created;
  spdlog::info("join token {} created{}{}", created->id(),
               request->description().empty() ? "" : " (" + common::text_escaped(request->description()) + ")",
               grants.empty() ? "" : ", granting " + label_key(grants));
  return Status::OK;
}

Status AdminService::ListTokens(grpc::ServerContext* context, const admin::v1::ListTokensRequest*,
                                admin::v1::ListTokensResponse* response) {
  if (auto status = authorize(*context); !status.ok()) return status;
  auto tokens = store_.list_tokens();
  if (!tokens.ok()) return to_grpc(tokens.status());
  std::map<std::string, std::vector<std::string>> enrolled;
  for (const auto& agent : fleet_.agents()) enrolled[agent.token_id()].push_back(agent.id());
  int64_t now = now_unix();
  for (const auto& token : *tokens) {
    auto& info = *response->add_tokens();
    info.set_id(token.id);
    info.set_description(token.description);
    info.set_created_unix(token.created_unix);
    info.set_expires_unix(token.expires_unix);
    info.mutable_labels()->insert(token.grants.begin(), token.grants.end());
    info.set_expired(token.expires_unix != 0 && token.expires_unix <= now);
    for (const auto& agent : enrolled[token.id]) info.add_agents(agent);
  }
  return Status::OK;
}

Status AdminService::DeleteToken(grpc::ServerContext* context, const admin::v1::DeleteTokenRequest* request,
                                 admin::v1::DeleteTokenResponse* response) {
  if (auto status = authorize(*context); !status.ok()) return status;
  auto removed = store_.remove_token(request->id());
  if (!removed.ok()) return to_grpc(removed.status());
  if (!*removed) return Status(StatusCode::NOT_FOUND, "join token \"" + common::text_escaped(request->id()) + "\" not found");
  spdlog::info("join token {} deleted: it enrols no one any more", common::text_escaped(request->id()));
  if (!request->revoke_agents()) return Status::OK;
  for (const auto& agent : fleet_.agents()) {
    if (agent.token_id() != request->id()) continue;
    auto revoked = fleet_.remove_agent(agent.id(), "its join token " + request->id() + " was deleted");
    if (!revoked.ok()) return to_grpc(revoked.status());
    if (*revoked) response->add_revoked_agents(agent.id());
  }
  return Status::OK;
}

Status AdminService::DeleteAgent(grpc::ServerContext* context, const admin::v1::DeleteAgentRequest* request,
                                 admin::v1::DeleteAgentResponse*) {
  if (auto status = authorize(*context); !status.ok()) return status;
  auto removed = fleet_.remove_agent(request->id(), "straitctl agents delete");
  if (!removed.ok()) return to_grpc(removed.status());
  if (!*removed) return Status(StatusCode::NOT_FOUND, "agent \"" + common::text_escaped(request->id()) + "\" is not enrolled");
  return Status::OK;
}

Status AdminService::LabelAgent(grpc::ServerContext* context, const admin::v1::LabelAgentRequest* request,
                                admin::v1::AgentInfo* response) {
  if (auto status = authorize(*context); !status.ok()) return status;
  if (auto status = check_labels(request->set(), "label"); !status.ok()) return to_grpc(status);
  auto record = fleet_.update_record(request->id(), [&](std::optional<AgentRecord>& current) -> absl::Status {
    if (!current) return absl::NotFoundError("agent \"" + common::text_escaped(request->id()) + "\" is not enrolled");
    for (const auto& key : request->remove()) {
      current->mutable_labels()->erase(key);
      current->mutable_requested_labels()->erase(key);
    }
    for (const auto& [key, value] : request->set()) {
      (*current->mutable_labels())[key] = value;
      current->mutable_requested_labels()->erase(key);
    }
    return absl::OkStatus();
  });
  if (!record.ok()) return to_grpc(record.status());
  spdlog::info("agent {} labels now {}", record->id(),
               label_key(Labels(record->labels().begin(), record->labels().end())));
  for (auto& agent : fleet_.agents()) {
    if (agent.id() == record->id()) *response = std::move(agent);
  }
  return Status::OK;
}

}  // namespace strait::controller
