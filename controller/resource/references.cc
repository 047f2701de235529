#include "controller/resource/references.h"

namespace strait::controller {

void References::add(const std::string& kind, const std::string& name) {
  if (!name.empty()) wanted_[kind].insert(name);
}

bool References::contains(const std::string& kind, const std::string& name) const {
  auto it = wanted_.find(kind);
  return it != wanted_.end() && it->second.contains(name);
}

void References::of_service(const config::v1::ServiceConfig& service) {
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

void References::of_hop(const config::v1::HopConfig& hop) {
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

void References::of_resource(const admin::v1::Resource& resource) {
  switch (resource.spec_case()) {
    case admin::v1::Resource::kService:
      of_service(resource.service());
      break;
    case admin::v1::Resource::kChain:
      for (const auto& hop : resource.chain().hops()) of_hop(hop);
      break;
    case admin::v1::Resource::kHop:
      of_hop(resource.hop());
      break;
    default:
      break;
  }
}

std::vector<std::pair<std::string, std::string>> References::all() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [kind, names] : wanted_) {
    for (const auto& name : names) out.emplace_back(kind, name);
  }
  return out;
}

}  // namespace strait::controller
