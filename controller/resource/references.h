#pragma once

// What a spec names by reference (a service's chain and authers, a chain's shared hops...),
// by the kind it names. Used to send an agent what its services need, to check that
// what an Apply references exists, and to refuse deleting what is still referenced.

#include <map>
#include <set>
#include <string>
#include <vector>

#include "strait/v1/admin.pb.h"

namespace strait::controller {

class References {
 public:
  void add(const std::string& kind, const std::string& name);
  template <typename Names>
  void add_all(const std::string& kind, const Names& names) {
    for (const auto& name : names) add(kind, name);
  }
  bool contains(const std::string& kind, const std::string& name) const;

  void of_service(const config::v1::ServiceConfig& service);
  void of_hop(const config::v1::HopConfig& hop);
  // Everything the resource's spec names directly (a chain: its hops' references).
  void of_resource(const admin::v1::Resource& resource);

  // {kind, name} pairs, in order.
  std::vector<std::pair<std::string, std::string>> all() const;

 private:
  std::map<std::string, std::set<std::string>> wanted_;
};

}  // namespace strait::controller
