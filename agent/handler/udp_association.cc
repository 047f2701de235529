#include "agent/handler/udp_association.h"

#include <algorithm>
#include <tuple>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/this_coro.hpp>
#include <spdlog/spdlog.h>

#include "agent/net/buffers.h"

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
    auto flow = std::make_shared<Flow>(Flow{*std::move(stream), target, Clock::now()});
    it = flows_.emplace(key, flow).first;
    asio::co_spawn(executor, read_answers(flow), [prefix = log_prefix_](std::exception_ptr failure) {
      if (failure) spdlog::error("{}: UDP answer reader ended by an unexpected exception", prefix);
    });
    if (!expiring_) {
      expiring_ = true;
      asio::co_spawn(executor, expire_idle(), [prefix = log_prefix_](std::exception_ptr failure) {
        if (failure) spdlog::error("{}: UDP expiry ended by an unexpected exception", prefix);
      });
    }
  }
  auto flow = it->second;
  flow->last_used = last_activity_ = Clock::now();
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

asio::awaitable<void> UdpAssociation::expire_idle() {
  auto self = shared_from_this();
  asio::steady_timer timer(co_await asio::this_coro::executor);
  // Checked a few times per TTL: a flow lives between one and about 1.25 TTLs of silence.
  auto period = std::max<std::chrono::nanoseconds>(limits_.flow_ttl / 4, std::chrono::milliseconds(50));
  while (!closed_) {
    timer.expires_after(period);
    co_await timer.async_wait(kUseTuple);
    if (closed_) break;
    auto now = Clock::now();
    std::erase_if(flows_, [&](auto& entry) {
      if (now - entry.second->last_used < limits_.flow_ttl) return false;
      entry.second->stream->close();
      return true;
    });
    if (limits_.idle_timeout.count() > 0 && now - last_activity_ >= limits_.idle_timeout) {
      spdlog::info("{}: nothing relayed for {}s, closing", log_prefix_,
                   std::chrono::duration_cast<std::chrono::seconds>(limits_.idle_timeout).count());
      close();
    }
  }
}

asio::awaitable<void> UdpAssociation::read_answers(std::shared_ptr<Flow> flow) {
  // Holding `self` keeps the queue alive until this reader has seen its channel close.
  auto self = shared_from_this();
  for (;;) {
    // A buffer only while a datagram is there: an idle flow holds none.
    auto [wait_error] = co_await flow->stream->async_wait_readable(kUseTuple);
    auto& buffers = DatagramBuffers::this_thread();
    auto buffer = buffers.take();
    size_t limit = std::min(limits_.buffer_size, DatagramBuffers::kBufferSize);
    error_code error = wait_error;
    size_t n = 0;
    if (!error) std::tie(error, n) = co_await flow->stream->async_read_some(asio::buffer(buffer.get(), limit), kUseTuple);
    std::string payload(reinterpret_cast<const char*>(buffer.get()), n);
    buffers.give_back(std::move(buffer));
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
    flow->last_used = last_activity_ = Clock::now();
    if (!answers_.try_send(error_code{}, Datagram{flow->source, std::move(payload)})) continue;
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
