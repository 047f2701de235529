#include "agent/connector/forward.h"

namespace strait::agent {
namespace {

class ForwardConnector final : public Connector {
 public:
  asio::awaitable<Result<StreamPtr>> connect(StreamPtr tunnel, Network, const std::string&) override {
    co_return std::move(tunnel);
  }
};

}  // namespace

absl::StatusOr<std::unique_ptr<Connector>> make_forward_connector(const config::v1::NodeConfig&) {
  return std::make_unique<ForwardConnector>();
}

}  // namespace strait::agent
