#include "agent/handler/forward.h"

#include <spdlog/spdlog.h>

#include "agent/chain/errors.h"
#include "agent/service/session_log.h"
#include "common/strings.h"

namespace strait::agent {
namespace {

class ForwardHandler final : public Handler {
 public:
  explicit ForwardHandler(Network network) : network_(network) {}

  asio::awaitable<void> handle(StreamPtr client, const HandlerContext& ctx) const override {
    SessionLog session(ctx.service, ctx.stats.get(), *client);
    auto upstream = co_await dial_target(*client, ctx, session);
    if (!upstream) {
      session.finish(upstream.error());
      co_return;
    }
    session.finish(co_await relay(*client, **upstream, ctx.relay));
  }

 private:
  // Tries the targets in selector order. Kept apart from handle() so its temporaries do
  // not stay in the frame of a long-lived connection.
  asio::awaitable<Result<StreamPtr>> dial_target(Stream& client, const HandlerContext& ctx,
                                                 SessionLog& session) const {
    if (!ctx.forwarder || ctx.forwarder->targets.empty()) co_return ProxyError::kNoTarget;
    auto& forwarder = *ctx.forwarder;
    std::string peer = client.remote_address();
    // The `hash` strategy keeps a client host on one target, whatever its source port.
    std::string_view client_host = std::string_view(peer).substr(0, peer.rfind(':'));
    Result<StreamPtr> upstream = ProxyError::kNoTarget;
    for (size_t index : forwarder.selector->order(client_host)) {
      const std::string& target = forwarder.targets[index];
      session.set_target(target);
      upstream = co_await ctx.router->dial(client.get_executor(), network_, target, client_host);
      if (upstream) {
        forwarder.selector->mark_ok(index);
        break;
      }
      forwarder.selector->mark_failed(index);
      spdlog::warn("{}: {} -> {} ({}): {}", ctx.service, peer, target, forwarder.names[index],
                   upstream.error().message());
    }
    co_return upstream;
  }

  Network network_;
};

absl::StatusOr<std::unique_ptr<Handler>> make_forward_handler(const config::v1::ServiceConfig& service,
                                                              Network network) {
  if (service.forwarder().nodes().empty()) {
    return absl::InvalidArgumentError(common::str_cat("handler ", service.handler().type(),
                                                      " forwards to targets but none are given "
                                                      "(e.g. tcp://:8080/host:80 or forwarder.nodes)"));
  }
  return std::make_unique<ForwardHandler>(network);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Handler>> make_tcp_forward_handler(const config::v1::ServiceConfig& service) {
  return make_forward_handler(service, Network::kTcp);
}

absl::StatusOr<std::unique_ptr<Handler>> make_udp_forward_handler(const config::v1::ServiceConfig& service) {
  return make_forward_handler(service, Network::kUdp);
}

}  // namespace strait::agent
