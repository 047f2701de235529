#include "agent/protocol/proxy_error.h"

#include <string>

namespace strait::agent {
namespace {

class ProxyErrorCategory final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "proxy"; }
  std::string message(int value) const override {
    switch (static_cast<ProxyError>(value)) {
      case ProxyError::kAuthRequired: return "proxy authentication required by the hop";
      case ProxyError::kRejected: return "request refused by the hop";
      case ProxyError::kBadResponse: return "malformed reply from the hop";
      case ProxyError::kUnsupportedNetwork: return "the hop's protocol cannot carry this network";
      case ProxyError::kNoTarget: return "no forward target available";
      case ProxyError::kForbidden: return "target not allowed by the hop";
    }
    return "unknown proxy error";
  }
};

}  // namespace

const boost::system::error_category& proxy_error_category() {
  static const ProxyErrorCategory category;
  return category;
}

}  // namespace strait::agent
