#include "agent/chain/router.h"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "agent/channel/tcp.h"
#include "agent/channel/udp.h"

namespace strait::agent {

Router::Router(std::shared_ptr<const Chain> chain, int retries, DialOptions options)
    : chain_(std::move(chain)), options_(options), tcp_dialer_(make_tcp_dialer()), udp_dialer_(make_udp_dialer()) {
  // Without explicit retries, a failed node still gives way to the next node of its hop:
  // one attempt per node of the widest hop.
  size_t widest = 1;
  if (chain_) {
    for (const auto& hop : chain_->hops) widest = std::max(widest, hop.nodes.size());
  }
  attempts_ = std::max(1, retries + 1) + static_cast<int>(widest) - 1;
}

asio::awaitable<Result<StreamPtr>> Router::dial(asio::any_io_executor executor, Network network,
                                                const std::string& target, std::string_view hash_key) const {
  if (!chain_) co_return co_await dial_direct(executor, network, target);
  Result<StreamPtr> last = asio::error::host_unreachable;
  for (int attempt = 0; attempt < attempts_; ++attempt) {
    last = co_await walk_chain(executor, network, target, hash_key);
    if (last) co_return last;
  }
  co_return last;
}

asio::awaitable<Result<StreamPtr>> Router::dial_direct(asio::any_io_executor executor, Network network,
                                                       const std::string& target) const {
  Dialer& dialer = network == Network::kUdp ? *udp_dialer_ : *tcp_dialer_;
  co_return co_await dialer.dial(executor, target, network, options_);
}

asio::awaitable<Result<StreamPtr>> Router::walk_chain(asio::any_io_executor executor, Network network,
                                                      const std::string& target, std::string_view hash_key) const {
  StreamPtr stream;
  const ChainNode* previous = nullptr;
  for (const auto& hop : chain_->hops) {
    auto order = hop.selector->order(hash_key);
    size_t chosen = order.front();
    const ChainNode& node = hop.nodes[chosen];
    Result<StreamPtr> opened = asio::error::host_unreachable;
    if (previous == nullptr) {
      opened = co_await node.dialer->dial(executor, node.address, Network::kTcp, options_);
    } else {
      opened = co_await previous->connector->connect(std::move(stream), Network::kTcp, node.address);
      if (opened) opened = co_await node.dialer->handshake(std::move(*opened), node.address);
    }
    if (!opened) {
      hop.selector->mark_failed(chosen);
      spdlog::warn("chain {} {} {} ({}): {}", chain_->name, hop.name, node.name, node.address,
                   opened.error().message());
      co_return opened.error();
    }
    hop.selector->mark_ok(chosen);
    stream = std::move(*opened);
    previous = &node;
  }
  auto connected = co_await previous->connector->connect(std::move(stream), network, target);
  if (!connected) {
    spdlog::info("chain {} last node {} ({}) could not reach {}: {}", chain_->name, previous->name, previous->address,
                 target, connected.error().message());
  }
  co_return connected;
}

}  // namespace strait::agent
