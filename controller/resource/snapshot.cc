#include "controller/resource/snapshot.h"

#include <openssl/evp.h>

#include <unordered_set>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "controller/resource/references.h"

namespace strait::controller {
using config::v1::Config;

namespace {

bool placed_by_itself(const Resource& resource) {
  return resource.spec_case() == Resource::kService || !resource.metadata().placement().match_labels().empty();
}

}  // namespace

bool SnapshotInputs::affected_by(const Resource& changed, const Labels& agent_labels) const {
  if (names_.contains(changed.kind(), changed.metadata().name())) return true;
  return placed_by_itself(changed) && placement_matches(changed, agent_labels);
}

Config compute_snapshot(const std::vector<Resource>& resources, const Labels& agent_labels, SnapshotInputs* inputs) {
  References references;
  std::unordered_set<const Resource*> chosen;
  // Services (and supporting resources with an explicit placement) placed on this agent.
  for (const auto& resource : resources) {
    if (placed_by_itself(resource) && placement_matches(resource, agent_labels)) {
      chosen.insert(&resource);
      if (inputs != nullptr) inputs->names_.add(resource.kind(), resource.metadata().name());
      if (resource.spec_case() == Resource::kService) references.of_service(resource.service());
    }
  }
  // Chains name hops and hops name bypasses etc.: follow references in that order.
  for (const auto& resource : resources) {
    if (resource.spec_case() == Resource::kChain && references.contains("Chain", resource.metadata().name())) {
      for (const auto& hop : resource.chain().hops()) references.of_hop(hop);
    }
  }
  for (const auto& resource : resources) {
    if (resource.spec_case() == Resource::kHop && references.contains("Hop", resource.metadata().name())) {
      references.of_hop(resource.hop());
    }
  }
  if (inputs != nullptr) {
    for (const auto& [kind, name] : references.all()) inputs->names_.add(kind, name);
  }
  Config config;
  for (const auto& resource : resources) {
    bool placed = chosen.contains(&resource);
    if (placed || (resource.spec_case() != Resource::kService &&
                   references.contains(resource.kind(), resource.metadata().name()))) {
      add_to_config(config, resource);
    }
  }
  return config;
}

std::string snapshot_fingerprint(const Config& snapshot) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    snapshot.SerializeToCodedStream(&coded);
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &size, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < 8; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 0xF]);
  }
  return out;
}

}  // namespace strait::controller
