#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "common/cmdline_config.h"
#include "strait/v1/config.pb.h"

namespace strait::common {

// GOST v3's type names (go-gost/x registries): what a config may name at all. An agent
// accepts the subset it has registered; the controller accepts these, so that a typo is
// refused at apply while a type an agent lacks is that agent's NACK.
const KnownTypes& gost_types();

// Answers whether a resource of `kind` ("chain", "hop", "auther") named `name` exists.
using ReferenceLookup = std::function<bool(std::string_view kind, std::string_view name)>;

struct ValidationOptions {
  const KnownTypes* types = nullptr;  // null: gost_types()
  // Null: references resolve within the config itself (a whole agent config). The
  // controller passes a lookup over its store, for one resource at a time.
  ReferenceLookup references;
};

// The one validation pass every config goes through where it enters: the agent before it
// applies anything (command line, file, controller snapshot), the controller's Apply and
// Diff, and straitctl before it sends. Checks durations, numbers, addresses, ports, types
// and references; the error names the resource (with_resource payload) and the field.
// Metadata keys no Strait type reads are appended to `warnings` when given.
absl::Status validate_config(const config::v1::Config& config, const ValidationOptions& options,
                             std::vector<std::string>* warnings);

}  // namespace strait::common
