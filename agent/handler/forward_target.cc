#include "agent/handler/forward_target.h"

#include <spdlog/spdlog.h>

#include "agent/protocol/proxy_error.h"

namespace strait::agent {

asio::awaitable<Result<StreamPtr>> dial_forward_target(Stream& client, const HandlerContext& ctx,
                                                       Network network, SessionLog& session) {
  auto& forwarder = *ctx.forwarder;
  std::string peer = client.remote_address();
  std::string_view client_host = std::string_view(peer).substr(0, peer.rfind(':'));
  Result<StreamPtr> upstream = ProxyError::kNoTarget;
  for (size_t index : forwarder.selector->order(client_host)) {
    const std::string& target = forwarder.targets[index];
    session.set_target(target);
    upstream = co_await ctx.router->dial(client.get_executor(), network, target, client_host);
    if (upstream) {
      forwarder.selector->mark_ok(index);
      break;
    }
    forwarder.selector->mark_failed(index);
    spdlog::warn("{}: {} -> {} ({}): {}", ctx.service, peer, target, forwarder.names[index], upstream.error().message());
  }
  co_return upstream;
}

}  // namespace strait::agent
