#include "agent/handler/forward.h"

#include <spdlog/spdlog.h>

#include "agent/chain/errors.h"
#include "agent/service/session_log.h"

namespace strait::agent {
namespace {

class ForwardHandler final : public Handler {
 public:
  explicit ForwardHandler(Network network) : network_(network) {}

  asio::awaitable<void> handle(StreamPtr client, const HandlerContext& ctx) const override {
    SessionLog session(ctx.service, *client);
    if (!ctx.forwarder || ctx.forwarder->targets.empty()) {
      session.finish(ProxyError::kNoTarget);
      co_return;
    }
    auto& forwarder = *ctx.forwarder;
    std::string peer = client->remote_address();
    Result<StreamPtr> upstream = ProxyError::kNoTarget;
    for (size_t index : forwarder.selector->order(peer)) {
      const std::string& target = forwarder.targets[index];
      session.set_target(target);
      upstream = co_await ctx.router->dial(client->get_executor(), network_, target, peer);
      if (upstream) {
        forwarder.selector->mark_ok(index);
        break;
      }
      forwarder.selector->mark_failed(index);
      spdlog::warn("{}: {} -> {} ({}): {}", ctx.service, peer, target, forwarder.names[index],
                   upstream.error().message());
    }
    if (!upstream) {
      session.finish(upstream.error());
      co_return;
    }
    auto result = co_await relay(*client, **upstream, ctx.relay);
    session.finish(result);
  }

 private:
  Network network_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Handler>> make_tcp_forward_handler(const config::v1::ServiceConfig&) {
  return std::make_unique<ForwardHandler>(Network::kTcp);
}

absl::StatusOr<std::unique_ptr<Handler>> make_udp_forward_handler(const config::v1::ServiceConfig&) {
  return std::make_unique<ForwardHandler>(Network::kUdp);
}

}  // namespace strait::agent
