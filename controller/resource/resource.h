#pragma once

// Resources as the controller stores them: a kind, metadata (name, labels, revision,
// placement) and a GOST-shaped spec. This file knows the kinds and the rules every
// resource follows, whatever API or file it came from.

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "strait/v1/admin.pb.h"
#include "strait/v1/config.pb.h"

namespace strait::controller {

using admin::v1::Resource;
using Labels = std::map<std::string, std::string>;

// The kinds in the order they are listed and applied: what others reference comes first.
const std::vector<std::string>& resource_kinds();

// "service", "Services", "svc" ... -> "Service"; empty when unknown.
std::string canonical_kind(std::string_view text);

// The spec message of a resource (set or not) for its kind; nullptr for an unknown kind.
const google::protobuf::Message* spec_of(const Resource& resource);
google::protobuf::Message* mutable_spec(Resource& resource);

// Checks kind, name (1-63 of [a-z0-9._-], starting with a letter or digit), that the spec
// matches the kind, and sets the spec's own name to the resource name.
absl::Status normalize_resource(Resource& resource);

// Label keys and values as Kubernetes has them: up to 63 of [A-Za-z0-9._-] (keys up to 253,
// with an optional "prefix/"). `what` names the field in the error.
absl::Status check_labels(const google::protobuf::Map<std::string, std::string>& labels, std::string_view what);

// Replaces passwords and keys with "********" (auth, tls keys, metadata keys that hold secrets).
void redact_secrets(Resource& resource);

// True when every placement label is among the agent's labels.
bool placement_matches(const Resource& resource, const Labels& agent_labels);

// Appends the resource's spec to the config section of its kind.
void add_to_config(config::v1::Config& config, const Resource& resource);

// "Service/entry".
std::string resource_key(const Resource& resource);

// Same kind, name, labels, placement and spec (the revision is not compared).
bool same_content(const Resource& a, const Resource& b);

}  // namespace strait::controller
