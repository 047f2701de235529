#include "agent/handler/forward.h"

#include "agent/handler/forward_target.h"
#include "agent/observe/session_log.h"
#include "agent/protocol/proxy_error.h"
#include "common/strings.h"

namespace strait::agent {
namespace {

constexpr char kChainDecides[] = ":0";

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
    relay_then_log(std::move(client), std::move(*upstream), ctx.relay, std::move(session));
  }

 private:
  // Tries the targets in selector order. Kept apart from handle() so its temporaries do
  // not stay in the frame of a long-lived connection.
  asio::awaitable<Result<StreamPtr>> dial_target(Stream& client, const HandlerContext& ctx,
                                                 SessionLog& session) const {
    if (!ctx.forwarder || ctx.forwarder->targets.empty()) {
      // No targets of its own: the chain's last node (a forward or relay connector, whose
      // peer has the targets) decides, as GOST's placeholder target ":0" does.
      session.set_target(kChainDecides);
      co_return co_await ctx.router->dial(client.get_executor(), network_, kChainDecides, {});
    }
    co_return co_await dial_forward_target(client, ctx, network_, session);
  }

  Network network_;
};

absl::StatusOr<std::unique_ptr<Handler>> make_forward_handler(const config::v1::ServiceConfig& service,
                                                              Network network) {
  if (service.forwarder().nodes().empty() && service.handler().chain().empty()) {
    return absl::InvalidArgumentError(common::str_cat("handler ", service.handler().type(),
                                                      " forwards to targets but none are given "
                                                      "(e.g. tcp://:8080/host:80 or forwarder.nodes), nor a chain "
                                                      "whose last node forwards (-F forward+tls://host:port)"));
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
