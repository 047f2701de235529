#pragma once

// Config errors that name the resource they are about ("service", "entry"), carried as an
// absl::Status payload so that an agent's NACK can point at the resource without parsing
// the message.

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/cord.h"

namespace strait::common {

inline constexpr std::string_view kResourcePayload = "type.strait.dev/resource";

inline absl::Status with_resource(absl::Status status, std::string_view kind, std::string_view name) {
  std::string value(kind);
  value.push_back('/');
  value.append(name);
  status.SetPayload(absl::string_view(kResourcePayload.data(), kResourcePayload.size()), absl::Cord(value));
  return status;
}

// {kind, name} of the resource a status is about, when it names one.
inline std::optional<std::pair<std::string, std::string>> resource_of(const absl::Status& status) {
  auto payload = status.GetPayload(absl::string_view(kResourcePayload.data(), kResourcePayload.size()));
  if (!payload) return std::nullopt;
  std::string value(*payload);
  auto slash = value.find('/');
  if (slash == std::string::npos) return std::nullopt;
  return std::make_pair(value.substr(0, slash), value.substr(slash + 1));
}

}  // namespace strait::common
