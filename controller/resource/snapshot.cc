#include "controller/resource/snapshot.h"

#include <openssl/evp.h>

#include <algorithm>
#include <map>
#include <set>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

namespace strait::controller {
namespace {

using config::v1::Config;

// Names referenced from a spec, by the kind they name.
class References {
 public:
  void add(const std::string& kind, const std::string& name) {
    if (!name.empty()) wanted_[kind].insert(name);
  }
  template <typename Names>
  void add_all(const std::string& kind, const Names& names) {
    for (const auto& name : names) add(kind, name);
  }
  bool contains(const std::string& kind, const std::string& name) const {
    auto it = wanted_.find(kind);
    return it != wanted_.end() && it->second.contains(name);
  }

  void of_service(const config::v1::ServiceConfig& service) {
    add("Chain", service.handler().chain());
    add("Chain", service.listener().chain());
    add("Auther", service.handler().auther());
    add_all("Auther", service.handler().authers());
    add("Auther", service.listener().auther());
    add_all("Auther", service.listener().authers());
    add("Admission", service.admission());
    add_all("Admission", service.admissions());
    add("Bypass", service.bypass());
    add_all("Bypass", service.bypasses());
    add("Limiter", service.limiter());
    add("Limiter", service.climiter());
    add("Limiter", service.rlimiter());
    add("Resolver", service.resolver());
    add("Hosts", service.hosts());
  }

  void of_hop(const config::v1::HopConfig& hop) {
    if (hop.nodes().empty()) add("Hop", hop.name());  // a hop named only: the top-level Hop
    add("Bypass", hop.bypass());
    add_all("Bypass", hop.bypasses());
    add("Resolver", hop.resolver());
    add("Hosts", hop.hosts());
    for (const auto& node : hop.nodes()) {
      add("Bypass", node.bypass());
      add_all("Bypass", node.bypasses());
      add("Resolver", node.resolver());
      add("Hosts", node.hosts());
    }
  }

 private:
  std::map<std::string, std::set<std::string>> wanted_;
};

void add_to(Config& config, const Resource& resource) {
  switch (resource.spec_case()) {
    case Resource::kService: *config.add_services() = resource.service(); break;
    case Resource::kChain: *config.add_chains() = resource.chain(); break;
    case Resource::kHop: *config.add_hops() = resource.hop(); break;
    case Resource::kAuther: *config.add_authers() = resource.auther(); break;
    case Resource::kBypass: *config.add_bypasses() = resource.bypass(); break;
    case Resource::kAdmission: *config.add_admissions() = resource.admission(); break;
    case Resource::kResolver: *config.add_resolvers() = resource.resolver(); break;
    case Resource::kHosts: *config.add_hosts() = resource.hosts(); break;
    case Resource::kLimiter: *config.add_limiters() = resource.limiter(); break;
    case Resource::SPEC_NOT_SET: break;
  }
}

}  // namespace

Config compute_snapshot(const std::vector<Resource>& resources, const Labels& agent_labels) {
  References references;
  std::vector<const Resource*> chosen;
  // Services (and supporting resources with an explicit placement) placed on this agent.
  for (const auto& resource : resources) {
    bool is_service = resource.spec_case() == Resource::kService;
    bool explicitly_placed = !resource.metadata().placement().match_labels().empty();
    if ((is_service || explicitly_placed) && placement_matches(resource, agent_labels)) {
      chosen.push_back(&resource);
      if (is_service) references.of_service(resource.service());
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
  Config config;
  for (const auto& resource : resources) {
    bool placed = std::find(chosen.begin(), chosen.end(), &resource) != chosen.end();
    if (placed || (resource.spec_case() != Resource::kService &&
                   references.contains(resource.kind(), resource.metadata().name()))) {
      add_to(config, resource);
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
