#include "controller/resource/resource.h"

#include <google/protobuf/util/message_differencer.h>

#include "common/strings.h"

namespace strait::controller {
namespace {

using google::protobuf::Message;

constexpr std::string_view kRedacted = "********";

struct KindEntry {
  const char* kind;
  Resource::SpecCase spec;
  std::vector<std::string_view> aliases;
};

const std::vector<KindEntry>& kind_table() {
  static const std::vector<KindEntry> table = {
      {"Auther", Resource::kAuther, {"auther", "authers"}},
      {"Bypass", Resource::kBypass, {"bypass", "bypasses"}},
      {"Admission", Resource::kAdmission, {"admission", "admissions"}},
      {"Limiter", Resource::kLimiter, {"limiter", "limiters"}},
      {"Hosts", Resource::kHosts, {"hosts"}},
      {"Resolver", Resource::kResolver, {"resolver", "resolvers"}},
      {"Hop", Resource::kHop, {"hop", "hops"}},
      {"Chain", Resource::kChain, {"chain", "chains"}},
      {"Service", Resource::kService, {"service", "services", "svc"}},
  };
  return table;
}

const KindEntry* entry_for(std::string_view kind) {
  for (const auto& entry : kind_table()) {
    if (kind == entry.kind) return &entry;
  }
  return nullptr;
}

// The spec field of `resource` for its kind, through reflection, so one table serves all kinds.
const google::protobuf::FieldDescriptor* spec_field(const Resource& resource) {
  const KindEntry* entry = entry_for(resource.kind());
  if (entry == nullptr) return nullptr;
  return Resource::descriptor()->FindFieldByNumber(static_cast<int>(entry->spec));
}

bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > 63 || !std::isalnum(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
              (c >= 'A' && c <= 'Z');
    if (!ok) return false;
  }
  return true;
}

// Keys and values print and match the same everywhere.
bool valid_label(std::string_view text, bool is_key) {
  if (text.size() > (is_key ? 253 : 63) || (is_key && text.empty())) return false;
  for (char c : text) {
    bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' || (is_key && c == '/');
    if (!ok) return false;
  }
  return true;
}


bool is_secret_key(std::string_view key) {
  std::string lower = common::to_lower(key);
  for (std::string_view word : {"password", "passwd", "secret", "token", "key"}) {
    if (lower.find(word) != std::string::npos) return true;
  }
  return false;
}

// Walks a message and blanks every secret: AuthConfig.password, TLS key files are paths (not
// secrets) and stay; metadata entries whose key names a secret are replaced.
void redact_message(Message& message) {
  const auto* descriptor = message.GetDescriptor();
  const auto* reflection = message.GetReflection();
  if (descriptor->full_name() == "strait.config.v1.AuthConfig") {
    const auto* password = descriptor->FindFieldByName("password");
    if (!reflection->GetString(message, password).empty()) reflection->SetString(&message, password, std::string(kRedacted));
    return;
  }
  if (descriptor->full_name() == "google.protobuf.Struct") {
    auto& fields = *static_cast<google::protobuf::Struct&>(message).mutable_fields();
    for (auto& [key, value] : fields) {
      if (is_secret_key(key)) value.set_string_value(std::string(kRedacted));
    }
    return;
  }
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const auto* field = descriptor->field(i);
    if (field->type() != google::protobuf::FieldDescriptor::TYPE_MESSAGE || field->is_map()) continue;
    if (field->is_repeated()) {
      for (int j = 0; j < reflection->FieldSize(message, field); ++j) {
        redact_message(*reflection->MutableRepeatedMessage(&message, field, j));
      }
    } else if (reflection->HasField(message, field)) {
      redact_message(*reflection->MutableMessage(&message, field));
    }
  }
}

}  // namespace

absl::Status check_labels(const google::protobuf::Map<std::string, std::string>& labels, std::string_view what) {
  for (const auto& [key, value] : labels) {
    if (!valid_label(key, true) || !valid_label(value, false)) {
      return absl::InvalidArgumentError(common::str_cat(
          what, " \"", key, "=", value, "\": keys and values are letters, digits, '-', '.' and '_' (keys may have a prefix/)"));
    }
  }
  return absl::OkStatus();
}

const std::vector<std::string>& resource_kinds() {
  static const std::vector<std::string> kinds = [] {
    std::vector<std::string> out;
    for (const auto& entry : kind_table()) out.emplace_back(entry.kind);
    return out;
  }();
  return kinds;
}

std::string canonical_kind(std::string_view text) {
  std::string lower = common::to_lower(text);
  for (const auto& entry : kind_table()) {
    if (common::iequals(text, entry.kind)) return entry.kind;
    for (auto alias : entry.aliases) {
      if (lower == alias) return entry.kind;
    }
  }
  return "";
}

const Message* spec_of(const Resource& resource) {
  const auto* field = spec_field(resource);
  if (field == nullptr) return nullptr;
  return &resource.GetReflection()->GetMessage(resource, field);
}

Message* mutable_spec(Resource& resource) {
  const auto* field = spec_field(resource);
  if (field == nullptr) return nullptr;
  return resource.GetReflection()->MutableMessage(&resource, field);
}

absl::Status normalize_resource(Resource& resource) {
  std::string kind = canonical_kind(resource.kind());
  if (kind.empty()) {
    return absl::InvalidArgumentError(common::str_cat("unknown kind \"", resource.kind(), "\"; known: ",
                                                      common::join(resource_kinds(), ", ")));
  }
  resource.set_kind(kind);
  const std::string& name = resource.metadata().name();
  if (!valid_name(name)) {
    return absl::InvalidArgumentError(common::str_cat(
        kind, " \"", name, "\": a name is 1 to 63 letters, digits, '-', '.' or '_', starting with a letter or digit"));
  }
  if (auto status = check_labels(resource.metadata().labels(), "label"); !status.ok()) return status;
  if (auto status = check_labels(resource.metadata().placement().match_labels(), "placement label"); !status.ok()) {
    return status;
  }
  const auto* field = spec_field(resource);
  if (resource.spec_case() != Resource::SPEC_NOT_SET && resource.spec_case() != field->number()) {
    return absl::InvalidArgumentError(common::str_cat(kind, " \"", name, "\": the spec is of another kind"));
  }
  Message* spec = mutable_spec(resource);  // creates an empty spec when none was given
  spec->GetReflection()->SetString(spec, spec->GetDescriptor()->FindFieldByName("name"), name);
  return absl::OkStatus();
}

void redact_secrets(Resource& resource) {
  if (Message* spec = mutable_spec(resource)) redact_message(*spec);
}

bool placement_matches(const Resource& resource, const Labels& agent_labels) {
  for (const auto& [key, value] : resource.metadata().placement().match_labels()) {
    auto it = agent_labels.find(key);
    if (it == agent_labels.end() || it->second != value) return false;
  }
  return true;
}

void add_to_config(config::v1::Config& config, const Resource& resource) {
  switch (resource.spec_case()) {
    case Resource::kService: *config.add_services() = resource.service(); break;
    case Resource::kChain: *config.add_chains() = resource.chain(); break;
    case Resource::kHop: *config.add_hops() = resource.hop(); break;
    case Resource::kAuther: *config.add_authers() = resource.auther(); break;
    case Resource::kBypass: *config.add_bypasses() = resource.bypass(); break;
    case Resource::kAdmission: *config.add_admissions() = resource.admission(); break;
    case Resource::kResolver: *config.add_resolvers() = resource.resolver(); break;
    case Resource::kHosts: *config.add_hosts() = resource.hosts(); break;
    case Resource::kLimiter: *config.add_limiters() = resource.limiter(); break;
    case Resource::SPEC_NOT_SET: break;
  }
}

std::string resource_key(const Resource& resource) {
  return common::str_cat(resource.kind(), "/", resource.metadata().name());
}

bool same_content(const Resource& a, const Resource& b) {
  Resource left = a;
  Resource right = b;
  left.mutable_metadata()->set_revision(0);
  right.mutable_metadata()->set_revision(0);
  return google::protobuf::util::MessageDifferencer::Equals(left, right);
}

}  // namespace strait::controller
