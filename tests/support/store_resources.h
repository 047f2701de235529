#pragma once

// Resources for store tests.

#include <string>

#include "strait/v1/admin.pb.h"

namespace strait::test {

inline admin::v1::Resource service_resource(const std::string& name, const std::string& addr) {
  admin::v1::Resource resource;
  resource.set_kind("Service");
  resource.mutable_metadata()->set_name(name);
  resource.mutable_service()->set_name(name);
  resource.mutable_service()->set_addr(addr);
  return resource;
}

}  // namespace strait::test
