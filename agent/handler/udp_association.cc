#include "agent/handler/udp_association.h"

#include <algorithm>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

namespace strait::agent {
namespace {
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
}  // namespace

UdpAssociation::UdpAssociation(asio::any_io_executor executor, std::shared_ptr<const Router> router,
                               std::string log_prefix, Limits limits)
    : router_(std::move(router)),
      log_prefix_(std::move(log_prefix)),
      limits_(limits),
      answers_(executor, limits.queue_size) {}

asio::awaitable<void> UdpAssociation::send(const common::HostPort& target, std::span<const uint8_t> payload) {
  if (closed_) co_return;
  std::string key = target.to_string();
  auto it = flows_.find(key);
  if (it == flows_.end()) {
    auto executor = co_await asio::this_coro::executor;
    auto stream = co_await router_->dial(executor, Network::kUdp, key, target.host);
    if (!stream) {
      spdlog::warn("{}: datagram to {} dropped: {}", log_prefix_, key, stream.error().message());
      co_return;
    }
    if (closed_) {
      (*stream)->close();
      co_return;
    }
    if (flows_.size() >= limits_.max_targets) evict_least_recently_used();
    auto flow = std::make_shared<Flow>(Flow{*std::move(stream), target, 0});
    it = flows_.emplace(key, flow).first;
    asio::co_spawn(executor, read_answers(flow), [prefix = log_prefix_](std::exception_ptr failure) {
      if (failure) spdlog::error("{}: UDP answer reader ended by an unexpected exception", prefix);
    });
  }
  auto flow = it->second;
  flow->last_used = ++sends_;
  auto [error, written] = co_await flow->stream->async_write_some(asio::buffer(payload.data(), payload.size()), kUseTuple);
  if (error) {
    spdlog::warn("{}: datagram to {} dropped: {}", log_prefix_, key, error.message());
    flow->stream->close();
    if (auto current = flows_.find(key); current != flows_.end() && current->second == flow) flows_.erase(current);
    co_return;
  }
  bytes_from_client_ += written;
}

void UdpAssociation::evict_least_recently_used() {
  auto oldest = std::min_element(flows_.begin(), flows_.end(), [](const auto& a, const auto& b) {
    return a.second->last_used < b.second->last_used;
  });
  if (oldest == flows_.end()) return;
  spdlog::debug("{}: {} targets in use, closing the channel to {}", log_prefix_, limits_.max_targets, oldest->first);
  oldest->second->stream->close();
  flows_.erase(oldest);
}

asio::awaitable<void> UdpAssociation::read_answers(std::shared_ptr<Flow> flow) {
  // Holding `self` keeps the queue alive until this reader has seen its channel close.
  auto self = shared_from_this();
  std::vector<char> buffer(limits_.buffer_size);
  for (;;) {
    auto [error, n] = co_await flow->stream->async_read_some(asio::buffer(buffer), kUseTuple);
    if (closed_) break;
    // A connected UDP socket reports an ICMP port unreachable as ECONNREFUSED on the next
    // read; the target may come back, so the flow stays.
    if (error == asio::error::connection_refused) continue;
    if (error) {
      std::string key = flow->source.to_string();
      if (auto it = flows_.find(key); it != flows_.end() && it->second == flow) flows_.erase(it);
      flow->stream->close();
      break;
    }
    if (!answers_.try_send(error_code{}, Datagram{flow->source, std::string(buffer.data(), n)})) continue;
    bytes_to_client_ += n;
  }
}

asio::awaitable<Result<UdpAssociation::Datagram>> UdpAssociation::receive() {
  auto [error, datagram] = co_await answers_.async_receive(kUseTuple);
  if (error) co_return error;
  co_return datagram;
}

void UdpAssociation::close() {
  if (closed_) return;
  closed_ = true;
  for (auto& [key, flow] : flows_) flow->stream->close();
  flows_.clear();
  answers_.close();
}

}  // namespace strait::agent
