#include "controller/resource/validate.h"

#include "common/config_validate.h"
#include "common/strings.h"
#include "controller/resource/references.h"

namespace strait::controller {

absl::Status validate_resource(const Resource& resource, const ResourceExists& exists,
                               std::vector<std::string>* warnings) {
  config::v1::Config config;
  add_to_config(config, resource);
  common::ValidationOptions options;
  // References are resolved below against the store, where they live.
  options.references = [](std::string_view, std::string_view) { return true; };
  if (auto status = common::validate_config(config, options, warnings); !status.ok()) {
    return absl::InvalidArgumentError(common::str_cat(resource_key(resource), ": ", status.message()));
  }
  if (!exists) return absl::OkStatus();
  References references;
  references.of_resource(resource);
  for (const auto& [kind, name] : references.all()) {
    if (!exists(kind, name)) {
      return absl::FailedPreconditionError(common::str_cat(resource_key(resource), " references ", kind, "/", name,
                                                           ", which does not exist; apply it first"));
    }
  }
  return absl::OkStatus();
}

std::vector<std::string> referrers_of(const Resource& target, const std::vector<Resource>& all) {
  std::vector<std::string> out;
  for (const auto& resource : all) {
    References references;
    references.of_resource(resource);
    if (references.contains(target.kind(), target.metadata().name())) out.push_back(resource_key(resource));
  }
  return out;
}

}  // namespace strait::controller
