#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "controller/resource/resource.h"

namespace strait::controller {

// Answers whether a resource of a canonical kind ("Chain") and name exists.
using ResourceExists = std::function<bool(const std::string& kind, const std::string& name)>;

// The values and types of a normalized resource, checked by the same pass an agent runs
// before it applies (common/config_validate), then its references against `exists`; null
// `exists` skips the references (straitctl, which cannot see the store). Metadata keys no
// Strait type reads are appended to `warnings` when given.
absl::Status validate_resource(const Resource& resource, const ResourceExists& exists,
                               std::vector<std::string>* warnings);

// "Service/entry"... for every resource in `all` that references `target`.
std::vector<std::string> referrers_of(const Resource& target, const std::vector<Resource>& all);

}  // namespace strait::controller
