#include "agent/connector/http.h"


#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "absl/strings/escaping.h"
#include "agent/protocol/proxy_error.h"
#include "agent/connector/connector_options.h"
#include "agent/protocol/http_status.h"
#include "common/prefixed_stream.h"
#include "common/strings.h"

namespace strait::agent {
namespace {

using namespace asio::experimental::awaitable_operators;
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
constexpr size_t kMaxResponseHead = 16 * 1024;

class HttpConnector final : public Connector {
 public:
  HttpConnector(std::string authorization, std::chrono::nanoseconds timeout)
      : authorization_(std::move(authorization)), timeout_(timeout) {}

  asio::awaitable<Result<StreamPtr>> connect(StreamPtr tunnel, Network network, const std::string& target) override {
    if (network != Network::kTcp) co_return ProxyError::kUnsupportedNetwork;
    std::string request = common::str_cat("CONNECT ", target, " HTTP/1.1\r\nHost: ", target,
                                       "\r\nProxy-Connection: keep-alive\r\n", authorization_, "\r\n");
    asio::steady_timer deadline(tunnel->get_executor(), timeout_);
    auto exchange = [&]() -> asio::awaitable<Result<std::string>> {
      auto [write_error, unused] = co_await asio::async_write(*tunnel, asio::buffer(request), kUseTuple);
      if (write_error) co_return write_error;
      std::string received;
      char chunk[2048];
      for (;;) {
        auto [read_error, n] = co_await tunnel->async_read_some(asio::buffer(chunk), kUseTuple);
        if (read_error) co_return read_error == asio::error::eof ? error_code(ProxyError::kBadResponse) : read_error;
        received.append(chunk, n);
        if (received.find("\r\n\r\n") != std::string::npos) co_return received;
        if (received.size() > kMaxResponseHead) co_return ProxyError::kBadResponse;
      }
    };
    auto outcome = co_await (exchange() || deadline.async_wait(kUseTuple));
    if (outcome.index() == 1) co_return asio::error::timed_out;
    auto received = std::get<0>(std::move(outcome));
    if (!received) co_return received.error();
    size_t head_end = received->find("\r\n\r\n") + 4;
    auto status = parse_http_status(std::string_view(*received).substr(0, head_end));
    if (!status) co_return ProxyError::kBadResponse;
    if (*status == 407) co_return ProxyError::kAuthRequired;
    if (*status != 200) co_return ProxyError::kRejected;
    co_return common::with_prefix(std::move(tunnel), received->substr(head_end));
  }

 private:
  std::string authorization_;  // "Proxy-Authorization: Basic ...\r\n" or empty
  std::chrono::nanoseconds timeout_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Connector>> make_http_connector(const config::v1::NodeConfig& node) {
  const auto& auth = connector_auth(node);
  std::string authorization;
  if (!auth.username().empty()) {
    authorization = common::str_cat("Proxy-Authorization: Basic ",
                                 absl::Base64Escape(common::str_cat(auth.username(), ":", auth.password())), "\r\n");
  }
  auto timeout = connector_timeout(node.connector().metadata());
  if (!timeout.ok()) return timeout.status();
  return std::make_unique<HttpConnector>(std::move(authorization), *timeout);
}

}  // namespace strait::agent
