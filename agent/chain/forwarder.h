#pragma once

#include <memory>
#include <string>
#include <vector>

#include "agent/chain/selector.h"

namespace strait::agent {

// A service's fixed targets (forward mode), e.g. tcp://:8080/a:80,b:80: a hop whose nodes
// are the targets, as GOST models them.
struct Forwarder {
  std::vector<std::string> names;
  std::vector<std::string> targets;
  std::unique_ptr<Selector> selector;
};

}  // namespace strait::agent
