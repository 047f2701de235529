#pragma once

// Resources as operators write them (straitctl apply -f) and read them (get -o yaml/json):
//
//   kind: Service
//   metadata: {name: entry, labels: {app: demo}, placement: {matchLabels: {role: edge}}}
//   spec: {addr: ":8080", handler: {type: http, chain: via-exit}, listener: {type: tcp}}
//
// Documents are separated by "---". `spec` is the GOST config object of that kind.

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "controller/resource/resource.h"

namespace strait::controller {

struct ParsedResources {
  std::vector<Resource> resources;
  std::vector<std::string> warnings;  // unknown keys, with source:line
};

absl::StatusOr<ParsedResources> parse_resources(std::string_view text, std::string_view source);

// One resource as a YAML document (without "---") or a JSON object, `spec` keyed as above.
std::string resource_to_yaml(const Resource& resource);
std::string resource_to_json(const Resource& resource);

}  // namespace strait::controller
