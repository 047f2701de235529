#include "agent/connector/http2.h"

#include "absl/strings/escaping.h"
#include "agent/channel/h2.h"
#include "agent/connector/connector_options.h"
#include "agent/protocol/proxy_error.h"
#include "common/strings.h"

namespace strait::agent {
namespace {

class Http2Connector final : public Connector {
 public:
  Http2Connector(std::string authorization, std::chrono::nanoseconds timeout)
      : authorization_(std::move(authorization)), timeout_(timeout) {}

  asio::awaitable<Result<StreamPtr>> connect(StreamPtr tunnel, Network network, const std::string& target) override {
    if (network != Network::kTcp) co_return ProxyError::kUnsupportedNetwork;
    std::shared_ptr<H2Session> session;
    if (auto* connection = dynamic_cast<H2ClientConnection*>(tunnel.get())) {
      session = connection->session();
    } else {
      H2SessionOptions options;
      options.single_use = true;
      options.name = "http2 connector";
      session = H2Session::start_client(std::move(tunnel), std::move(options));
    }
    h2::Head request;
    request.method = "CONNECT";
    request.authority = target;
    if (!authorization_.empty()) request.fields.emplace_back("proxy-authorization", authorization_);
    auto stream = co_await session->open(request, timeout_);
    if (!stream) co_return stream.error();
    int status = (*stream)->head().status;
    if (status == 407) co_return ProxyError::kAuthRequired;
    if (status != 200) co_return ProxyError::kRejected;
    co_return StreamPtr(std::move(*stream));
  }

 private:
  std::string authorization_;  // "Basic ..." or empty
  std::chrono::nanoseconds timeout_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Connector>> make_http2_connector(const config::v1::NodeConfig& node) {
  const auto& auth = connector_auth(node);
  std::string authorization;
  if (!auth.username().empty()) {
    authorization =
        common::str_cat("Basic ", absl::Base64Escape(common::str_cat(auth.username(), ":", auth.password())));
  }
  auto timeout = connector_timeout(node.connector().metadata());
  if (!timeout.ok()) return timeout.status();
  return std::make_unique<Http2Connector>(std::move(authorization), *timeout);
}

}  // namespace strait::agent
