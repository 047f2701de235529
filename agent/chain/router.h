#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "agent/chain/chain.h"

namespace strait::agent {

// Opens streams to targets for handlers: directly from this host, or through a chain hop by
// hop (dial hop 0's node, then ask each node's connector for the next node, the last one
// for the target). Immutable; shared by all workers.
class Router {
 public:
  Router(std::shared_ptr<const Chain> chain, int retries, DialOptions options);

  // hash_key feeds the `hash` selector strategy (GOST uses the target host).
  asio::awaitable<Result<StreamPtr>> dial(asio::any_io_executor executor, Network network, const std::string& target,
                                          std::string_view hash_key) const;
  const Chain* chain() const { return chain_.get(); }

 private:
  asio::awaitable<Result<StreamPtr>> dial_direct(asio::any_io_executor executor, Network network,
                                                 const std::string& target) const;
  asio::awaitable<Result<StreamPtr>> walk_chain(asio::any_io_executor executor, Network network,
                                                const std::string& target, std::string_view hash_key) const;

  std::shared_ptr<const Chain> chain_;
  int attempts_;
  DialOptions options_;
  std::unique_ptr<Dialer> tcp_dialer_;
  std::unique_ptr<Dialer> udp_dialer_;
};

}  // namespace strait::agent
