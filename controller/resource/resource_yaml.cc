#include "controller/resource/resource_yaml.h"

#include <memory>

#include <yaml-cpp/yaml.h>

#include "absl/strings/numbers.h"
#include "common/config_file.h"
#include "common/strings.h"
#include "common/yaml_syntax.h"
#include "controller/resource/validate.h"

namespace strait::controller {
namespace {

using common::str_cat;

std::string where(std::string_view source, const YAML::Node& node) {
  return node.Mark().line < 0 ? str_cat(source, ": ") : str_cat(source, ":", node.Mark().line + 1, ": ");
}

absl::Status read_string_map(const YAML::Node& node, std::string_view source, std::string_view what,
                             google::protobuf::Map<std::string, std::string>& out) {
  if (!node || node.IsNull()) return absl::OkStatus();
  if (!node.IsMap()) return absl::InvalidArgumentError(str_cat(where(source, node), what, ": expected a map"));
  for (const auto& entry : node) {
    if (!entry.second.IsScalar()) {
      return absl::InvalidArgumentError(str_cat(where(source, entry.second), what, ".", entry.first.Scalar(),
                                                ": expected a plain value"));
    }
    out[entry.first.Scalar()] = entry.second.Scalar();
  }
  return absl::OkStatus();
}

absl::Status read_metadata(const YAML::Node& node, std::string_view source, admin::v1::ObjectMeta& meta,
                           std::vector<std::string>& warnings) {
  if (!node || !node.IsMap()) return absl::InvalidArgumentError(str_cat(where(source, node), "metadata: expected a map with a name"));
  for (const auto& entry : node) {
    std::string key = common::to_lower(entry.first.Scalar());
    const YAML::Node& value = entry.second;
    if (key == "name") {
      meta.set_name(value.Scalar());
    } else if (key == "labels") {
      if (auto status = read_string_map(value, source, "metadata.labels", *meta.mutable_labels()); !status.ok()) return status;
    } else if (key == "placement") {
      // `placement: {matchLabels: {k: v}}`, or the labels directly: `placement: {k: v}`.
      YAML::Node labels = value.IsMap() && value["matchLabels"] ? value["matchLabels"] : value;
      auto& out = *meta.mutable_placement()->mutable_match_labels();
      if (auto status = read_string_map(labels, source, "metadata.placement", out); !status.ok()) return status;
    } else if (key == "revision") {
      int64_t revision = 0;
      if (!value.IsScalar() || !absl::SimpleAtoi(value.Scalar(), &revision) || revision < 0) {
        return absl::InvalidArgumentError(str_cat(where(source, value), "metadata.revision: expected a number"));
      }
      meta.set_revision(revision);
    } else {
      warnings.push_back(str_cat(where(source, entry.first), "metadata.", entry.first.Scalar(), ": unknown key, ignored"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Resource> read_resource(const YAML::Node& document, std::string_view source,
                                       std::vector<std::string>& warnings) {
  if (!document.IsMap()) return absl::InvalidArgumentError(str_cat(where(source, document), "expected kind, metadata and spec"));
  Resource resource;
  YAML::Node spec_node;
  for (const auto& entry : document) {
    std::string key = common::to_lower(entry.first.Scalar());
    if (key == "kind") {
      resource.set_kind(entry.second.Scalar());
    } else if (key == "metadata") {
      if (auto status = read_metadata(entry.second, source, *resource.mutable_metadata(), warnings); !status.ok()) return status;
    } else if (key == "spec") {
      spec_node = entry.second;
    } else if (key != "apiversion") {
      warnings.push_back(str_cat(where(source, entry.first), entry.first.Scalar(), ": unknown key, ignored"));
    }
  }
  std::string kind = canonical_kind(resource.kind());
  if (kind.empty()) {
    return absl::InvalidArgumentError(str_cat(where(source, document), "kind \"", resource.kind(), "\" is not one of ",
                                              common::join(resource_kinds(), ", ")));
  }
  resource.set_kind(kind);
  auto* spec = mutable_spec(resource);
  if (spec_node && !spec_node.IsNull()) {
    std::string path = str_cat(kind, " ", resource.metadata().name(), ": spec");
    if (auto status = common::yaml_to_message(spec_node, *spec, source, path, warnings); !status.ok()) return status;
  }
  if (auto status = normalize_resource(resource); !status.ok()) {
    return absl::InvalidArgumentError(str_cat(where(source, document), status.message()));
  }
  std::vector<std::string> unread;
  if (auto status = validate_resource(resource, nullptr, &unread); !status.ok()) {
    return absl::InvalidArgumentError(str_cat(where(source, document), status.message()));
  }
  for (const auto& warning : unread) warnings.push_back(str_cat(where(source, document), warning));
  return resource;
}

// The spec's own name repeats metadata.name; parsing sets it again, so it is not printed.
std::unique_ptr<google::protobuf::Message> without_name(const google::protobuf::Message& spec) {
  std::unique_ptr<google::protobuf::Message> copy(spec.New());
  copy->CopyFrom(spec);
  copy->GetReflection()->ClearField(copy.get(), copy->GetDescriptor()->FindFieldByName("name"));
  return copy;
}

// Emits kind, metadata and spec into one map. The parts are separate YAML documents and are
// emitted, not assigned into one node: yaml-cpp merges the memory of assigned nodes and leaks
// it when documents are combined.
void emit_resource(YAML::Emitter& out, const Resource& resource, bool block) {
  auto part = [block](const google::protobuf::Message& message) {
    YAML::Node node = YAML::Load(common::message_to_json(message));
    if (block) common::make_block_style(node);
    return node;
  };
  out << YAML::BeginMap << YAML::Key << "kind" << YAML::Value << resource.kind();
  out << YAML::Key << "metadata" << YAML::Value << part(resource.metadata());
  if (const auto* spec = spec_of(resource)) out << YAML::Key << "spec" << YAML::Value << part(*without_name(*spec));
  out << YAML::EndMap;
}

}  // namespace

absl::StatusOr<ParsedResources> parse_resources(std::string_view text, std::string_view source) {
  if (auto status = common::check_yaml_syntax(text, source); !status.ok()) return status;
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(std::string(text));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(str_cat(source, ":", e.mark.line + 1, ": not valid YAML: ", e.msg));
  }
  ParsedResources parsed;
  for (const auto& document : documents) {
    if (document.IsNull()) continue;
    try {
      auto resource = read_resource(document, source, parsed.warnings);
      if (!resource.ok()) return resource.status();
      parsed.resources.push_back(*std::move(resource));
    } catch (const YAML::Exception& e) {
      return absl::InvalidArgumentError(str_cat(source, ":", e.mark.line + 1, ": ", e.msg));
    }
  }
  return parsed;
}

std::string resource_to_yaml(const Resource& resource) {
  YAML::Emitter emitter;
  emit_resource(emitter, resource, true);
  std::string text = std::string(emitter.c_str()) + "\n";
  // yaml-cpp writes some control characters (a CR in a value) unquoted, which breaks the
  // document; JSON escapes them and is YAML too.
  if (!common::check_yaml_syntax(text, "").ok()) return resource_to_json(resource);
  return text;
}

std::string resource_to_json(const Resource& resource) {
  std::string out = str_cat("{\n\"kind\": \"", resource.kind(), "\",\n\"metadata\": ",
                            common::strip_whitespace(common::message_to_json(resource.metadata())));
  if (const auto* spec = spec_of(resource)) {
    out += str_cat(",\n\"spec\": ", common::strip_whitespace(common::message_to_json(*without_name(*spec))));
  }
  return out + "\n}\n";
}

}  // namespace strait::controller
