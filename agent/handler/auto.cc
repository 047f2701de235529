#include "agent/handler/auto.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "agent/handler/handler_options.h"
#include "agent/handler/http.h"
#include "agent/handler/socks4.h"
#include "agent/handler/socks5.h"
#include "agent/protocol/socks4.h"
#include "agent/protocol/socks5.h"
#include "common/duration.h"
#include "common/prefixed_stream.h"
#include "common/stream_deadline.h"

namespace strait::agent {
namespace {

class AutoHandler final : public Handler {
 public:
  AutoHandler(std::unique_ptr<Handler> http, std::unique_ptr<Handler> socks4, std::unique_ptr<Handler> socks5,
              std::chrono::nanoseconds read_timeout)
      : http_(std::move(http)), socks4_(std::move(socks4)), socks5_(std::move(socks5)), read_timeout_(read_timeout) {}

  asio::awaitable<void> handle(StreamPtr client, const HandlerContext& ctx) const override {
    char first[512];
    size_t n = 0;
    {
      common::StreamDeadline deadline(*client);
      deadline.arm(read_timeout_);
      auto [error, read] = co_await client->async_read_some(asio::buffer(first), asio::as_tuple(asio::use_awaitable));
      deadline.disarm();
      if (deadline.expired()) {
        spdlog::info("{}: {}: sent nothing within {}", ctx.service, client->remote_address(),
                     common::format_duration(read_timeout_));
        co_return;
      }
      if (error) co_return;  // the client left before saying anything
      n = read;
    }
    const Handler& chosen = first[0] == socks5::kVersion   ? *socks5_
                            : first[0] == socks4::kVersion ? *socks4_
                                                           : *http_;
    co_await chosen.handle(common::with_prefix(std::move(client), std::string(first, n)), ctx);
  }

 private:
  std::unique_ptr<Handler> http_;
  std::unique_ptr<Handler> socks4_;
  std::unique_ptr<Handler> socks5_;
  std::chrono::nanoseconds read_timeout_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Handler>> make_auto_handler(const config::v1::ServiceConfig& service) {
  auto http = make_http_handler(service);
  if (!http.ok()) return http.status();
  auto socks4 = make_socks4_handler(service);
  if (!socks4.ok()) return socks4.status();
  auto socks5 = make_socks5_handler(service);
  if (!socks5.ok()) return socks5.status();
  auto timeout = handler_read_timeout(service.handler().metadata());
  if (!timeout.ok()) return timeout.status();
  return std::make_unique<AutoHandler>(*std::move(http), *std::move(socks4), *std::move(socks5), *timeout);
}

}  // namespace strait::agent
