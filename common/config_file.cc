#include "common/config_file.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <google/protobuf/util/json_util.h>
#include <yaml-cpp/yaml.h>
#include "absl/strings/numbers.h"
#include "common/strings.h"
#include "common/yaml_syntax.h"


namespace strait::common {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

class YamlToProto {
 public:
  YamlToProto(std::string_view source, std::vector<std::string>& warnings)
      : source_(source), warnings_(warnings) {}

  absl::Status fill(const YAML::Node& node, Message& message, const std::string& path) {
    if (node.IsNull()) return absl::OkStatus();
    if (!spend(node.size() + 1)) return too_large(node, path);
    if (message.GetDescriptor()->full_name() == "google.protobuf.Struct") {
      if (!node.IsMap()) return error(node, path, "expected a map of key: value");
      if (!fill_struct(node, static_cast<google::protobuf::Struct&>(message))) return too_large(node, path);
      return absl::OkStatus();
    }
    if (!node.IsMap()) return error(node, path, "expected a map (key: value lines)");
    const auto* descriptor = message.GetDescriptor();
    for (const auto& entry : node) {
      std::string key = entry.first.as<std::string>();
      std::string key_path = path.empty() ? key : str_cat(path, ".", key);
      const FieldDescriptor* field = find_field(*descriptor, key);
      if (field == nullptr) {
        warnings_.push_back(str_cat(where(entry.first), key_path, ": unknown key, ignored"));
        continue;
      }
      if (auto status = fill_field(entry.second, message, *field, key_path); !status.ok()) return status;
    }
    return absl::OkStatus();
  }

 private:
  static const FieldDescriptor* find_field(const google::protobuf::Descriptor& descriptor, std::string_view key) {
    std::string wanted = to_lower(key);
    for (int i = 0; i < descriptor.field_count(); ++i) {
      const FieldDescriptor* field = descriptor.field(i);
      if (to_lower(field->json_name()) == wanted || field->name() == wanted) return field;
    }
    return nullptr;
  }

  std::string where(const YAML::Node& node) const {
    const auto mark = node.Mark();
    if (mark.line < 0) return str_cat(source_, ": ");
    return str_cat(source_, ":", mark.line + 1, ": ");
  }

  absl::Status error(const YAML::Node& node, const std::string& path, std::string_view why) const {
    return absl::InvalidArgumentError(str_cat(where(node), path.empty() ? "top level" : path, ": ", why));
  }

  absl::Status fill_field(const YAML::Node& node, Message& message, const FieldDescriptor& field,
                          const std::string& path) {
    const Reflection* reflection = message.GetReflection();
    if (field.is_repeated()) {
      if (node.IsNull()) return absl::OkStatus();
      if (!node.IsSequence()) return error(node, path, "expected a list (lines starting with '- ')");
      for (size_t i = 0; i < node.size(); ++i) {
        std::string item_path = str_cat(path, "[", i, "]");
        if (field.type() == FieldDescriptor::TYPE_MESSAGE) {
          Message* item = reflection->AddMessage(&message, &field);
          if (auto status = fill(node[i], *item, item_path); !status.ok()) return status;
        } else {
          if (!node[i].IsScalar()) return error(node[i], item_path, "expected a plain value");
          reflection->AddString(&message, &field, node[i].Scalar());
        }
      }
      return absl::OkStatus();
    }
    if (field.type() == FieldDescriptor::TYPE_MESSAGE) {
      return fill(node, *reflection->MutableMessage(&message, &field), path);
    }
    if (node.IsNull()) return absl::OkStatus();
    if (!node.IsScalar()) return error(node, path, "expected a plain value, not a list or map");
    const std::string& text = node.Scalar();
    switch (field.cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING:
        reflection->SetString(&message, &field, text);
        return absl::OkStatus();
      case FieldDescriptor::CPPTYPE_BOOL: {
        std::string lower = to_lower(text);
        if (lower == "true" || lower == "yes" || lower == "on" || lower == "1") {
          reflection->SetBool(&message, &field, true);
        } else if (lower == "false" || lower == "no" || lower == "off" || lower == "0") {
          reflection->SetBool(&message, &field, false);
        } else {
          return error(node, path, str_cat("expected true or false, got \"", text, "\""));
        }
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_INT32: {
        int value = 0;
        if (!absl::SimpleAtoi(text, &value)) {
          return error(node, path, str_cat("expected an integer, got \"", text, "\""));
        }
        reflection->SetInt32(&message, &field, value);
        return absl::OkStatus();
      }
      default:
        return error(node, path, "unsupported field type (internal)");
    }
  }

  // False once the document's value budget is spent.
  bool fill_value(const YAML::Node& node, google::protobuf::Value& value) {
    if (!spend(1)) return false;
    if (node.IsMap()) {
      return fill_struct(node, *value.mutable_struct_value());
    } else if (node.IsSequence()) {
      auto* list = value.mutable_list_value();
      for (const auto& item : node) {
        if (!fill_value(item, *list->add_values())) return false;
      }
    } else if (node.IsNull()) {
      value.set_null_value(google::protobuf::NULL_VALUE);
    } else {
      // GOST's metadata getters convert from strings; keeping the text keeps "10s" and "0x10" intact.
      value.set_string_value(node.Scalar());
    }
    return true;
  }

  bool fill_struct(const YAML::Node& node, google::protobuf::Struct& out) {
    for (const auto& entry : node) {
      if (!fill_value(entry.second, (*out.mutable_fields())[entry.first.as<std::string>()])) return false;
    }
    return true;
  }

  // YAML aliases let a small file name the same subtree many times ("billion laughs"); a
  // budget of values per document keeps what a file can make the loader build bounded.
  bool spend(size_t values) {
    if (values > budget_) return false;
    budget_ -= values;
    return true;
  }

  absl::Status too_large(const YAML::Node& node, const std::string& path) const {
    return error(node, path, "too many values (more than 1000000, counting every alias expansion)");
  }

  std::string source_;
  std::vector<std::string>& warnings_;
  size_t budget_ = 1'000'000;
};

}  // namespace

void make_block_style(YAML::Node node) {
  if (node.IsMap() || node.IsSequence()) {
    node.SetStyle(YAML::EmitterStyle::Block);
    if (node.IsMap()) {
      for (auto entry : node) make_block_style(entry.second);
    } else {
      for (auto item : node) make_block_style(item);
    }
  }
}

absl::StatusOr<LoadedConfig> parse_config_text(std::string_view text, std::string_view source) {
  if (auto status = check_yaml_syntax(text, source); !status.ok()) return status;
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        str_cat(source, ":", e.mark.line + 1, ":", e.mark.column + 1, ": not valid YAML/JSON: ", e.msg));
  }
  LoadedConfig loaded;
  if (root.IsNull()) return loaded;
  if (auto status = yaml_to_message(root, loaded.config, source, "", loaded.warnings); !status.ok()) return status;
  return loaded;
}

absl::StatusOr<LoadedConfig> load_config_argument(const std::string& argument) {
  if (argument.size() >= 2 && argument.front() == '{' && argument.back() == '}') {
    return parse_config_text(argument, "<inline json>");
  }
  std::error_code ignored;
  if (std::filesystem::is_directory(argument, ignored)) {
    return absl::InvalidArgumentError(
        str_cat("config \"", argument, "\" is a directory; give a .yaml, .yml or .json file"));
  }
  std::ifstream file(argument);
  if (!file) {
    return absl::NotFoundError(str_cat("cannot read config file \"", argument, "\": ", std::strerror(errno),
                                            " (check the path and its permissions)"));
  }
  std::stringstream contents;
  contents << file.rdbuf();
  return parse_config_text(contents.str(), argument);
}

absl::Status yaml_to_message(const YAML::Node& node, google::protobuf::Message& message, std::string_view source,
                             const std::string& path, std::vector<std::string>& warnings) {
  YamlToProto converter(source, warnings);
  try {
    return converter.fill(node, message, path);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(str_cat(source, ":", e.mark.line + 1, ": ", e.msg));
  }
}

std::string message_to_json(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  // Only fails for invalid UTF-8 in strings or unknown Any types, neither of which Strait's
  // messages carry.
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  return out + "\n";
}

std::string message_to_yaml(const google::protobuf::Message& message) {
  YAML::Node node = YAML::Load(message_to_json(message));
  make_block_style(node);
  YAML::Emitter emitter;
  emitter << node;
  return std::string(emitter.c_str()) + "\n";
}

}  // namespace strait::common
