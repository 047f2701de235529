#include "common/metadata.h"

#include <cmath>

#include "absl/strings/numbers.h"
#include "common/duration.h"
#include "common/strings.h"

namespace strait::common {
namespace {

using google::protobuf::Value;

const Value* find(const Metadata& metadata, std::string_view key) {
  for (const auto& [name, value] : metadata.fields()) {
    if (iequals(name, key)) return &value;
  }
  return nullptr;
}

absl::Status wrong_form(std::string_view key, std::string_view expected, std::string_view got) {
  return absl::InvalidArgumentError(str_cat("metadata ", key, ": expected ", expected, ", got \"", got, "\""));
}

}  // namespace

absl::StatusOr<std::optional<bool>> metadata_bool(const Metadata& metadata, std::string_view key) {
  const Value* value = find(metadata, key);
  if (value == nullptr) return std::nullopt;
  if (value->has_bool_value()) return value->bool_value();
  if (value->has_number_value()) return value->number_value() != 0;
  std::string text = to_lower(value->string_value());
  // Go's strconv.ParseBool spellings, which GOST uses.
  if (text == "true" || text == "1" || text == "t") return true;
  if (text == "false" || text == "0" || text == "f") return false;
  return wrong_form(key, "true or false", value->string_value());
}

absl::StatusOr<std::optional<std::chrono::nanoseconds>> metadata_duration(const Metadata& metadata,
                                                                          std::string_view key) {
  const Value* value = find(metadata, key);
  if (value == nullptr) return std::nullopt;
  if (value->has_number_value()) {
    // GOST reads a bare number as seconds.
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(value->number_value()));
  }
  auto parsed = parse_duration(value->string_value());
  if (!parsed.ok()) return wrong_form(key, "a duration such as 10s", value->string_value());
  return *parsed;
}

absl::StatusOr<std::optional<int64_t>> metadata_int(const Metadata& metadata, std::string_view key) {
  const Value* value = find(metadata, key);
  if (value == nullptr) return std::nullopt;
  if (value->has_number_value()) {
    double number = value->number_value();
    if (std::trunc(number) != number) return wrong_form(key, "an integer", *metadata_string(metadata, key));
    return static_cast<int64_t>(number);
  }
  int64_t parsed = 0;
  if (!absl::SimpleAtoi(value->string_value(), &parsed)) return wrong_form(key, "an integer", value->string_value());
  return parsed;
}

std::optional<std::string> metadata_string(const Metadata& metadata, std::string_view key) {
  const Value* value = find(metadata, key);
  if (value == nullptr) return std::nullopt;
  if (value->has_string_value()) return value->string_value();
  if (value->has_bool_value()) return value->bool_value() ? "true" : "false";
  if (value->has_number_value()) {
    double number = value->number_value();
    if (std::trunc(number) == number) return std::to_string(static_cast<int64_t>(number));
    return std::to_string(number);
  }
  return std::string();
}

}  // namespace strait::common
