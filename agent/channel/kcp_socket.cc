#include "agent/channel/kcp_socket.h"

#include <netinet/in.h>
#include <netinet/ip.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstring>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

namespace strait::agent {
namespace {

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
// Batches taken per wake-up before the loop lets the worker's other work run.
constexpr int kBatchesPerTurn = 8;
// Spare packet buffers kept after a burst; the rest go back to the allocator.
constexpr size_t kMaxSpare = 64;

}  // namespace

KcpSocket::KcpSocket(udp::socket socket, size_t queue_limit) : socket_(std::move(socket)), queue_limit_(queue_limit) {
  socket_.non_blocking(true);
}

KcpSocket::~KcpSocket() { close(); }

void KcpSocket::tune(udp::socket& socket, int bytes, int dscp) {
  int fd = socket.native_handle();
  if (bytes > 0) {
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
  }
  if (dscp > 0) {
    int tos = dscp << 2;  // DSCP is the upper six bits of the TOS / traffic class byte
    error_code ec;
    bool v6 = socket.local_endpoint(ec).protocol() == udp::v6();
    ::setsockopt(fd, IPPROTO_IP, IP_TOS, &tos, sizeof(tos));
    if (v6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_TCLASS, &tos, sizeof(tos));
  }
}

void KcpSocket::start(Receiver receiver) {
  receiver_ = std::move(receiver);
  asio::co_spawn(socket_.get_executor(), receive_loop(shared_from_this()), [](std::exception_ptr e) {
    if (e) spdlog::error("kcp: a socket's receive loop ended by an unexpected exception");
  });
}

void KcpSocket::close() {
  error_code ignored;
  socket_.close(ignored);
  queue_.clear();
}

asio::awaitable<void> KcpSocket::receive_loop(std::shared_ptr<KcpSocket> self) {
  // One set of buffers per socket: a listener's is one per worker.
  std::vector<std::array<uint8_t, kKcpMaxDatagram + 1>> buffers(kKcpBatch);
  std::array<sockaddr_storage, kKcpBatch> names{};
  std::array<iovec, kKcpBatch> vectors{};
  std::array<mmsghdr, kKcpBatch> headers{};
  for (;;) {
    auto [error] = co_await self->socket_.async_wait(udp::socket::wait_read, kUseTuple);
    if (error || !self->socket_.is_open()) co_return;
    for (int round = 0; round < kBatchesPerTurn && self->socket_.is_open(); ++round) {
      for (size_t i = 0; i < kKcpBatch; ++i) {
        vectors[i] = {buffers[i].data(), buffers[i].size()};
        headers[i] = {};
        headers[i].msg_hdr.msg_name = &names[i];
        headers[i].msg_hdr.msg_namelen = sizeof(names[i]);
        headers[i].msg_hdr.msg_iov = &vectors[i];
        headers[i].msg_hdr.msg_iovlen = 1;
      }
      int count = ::recvmmsg(self->socket_.native_handle(), headers.data(), kKcpBatch, MSG_DONTWAIT, nullptr);
      if (count <= 0) break;  // EAGAIN, or an ICMP error that concerns one peer only
      for (int i = 0; i < count && self->socket_.is_open(); ++i) {
        size_t size = headers[i].msg_len;
        ++self->counters_.received;
        if (size > kKcpMaxDatagram || (headers[i].msg_hdr.msg_flags & MSG_TRUNC) != 0) {
          ++self->counters_.oversized;
          continue;
        }
        udp::endpoint from;
        std::memcpy(from.data(), &names[i], std::min<size_t>(headers[i].msg_hdr.msg_namelen, sizeof(names[i])));
        from.resize(headers[i].msg_hdr.msg_namelen);
        self->receiver_(std::span<uint8_t>(buffers[i].data(), size), from);
      }
      if (static_cast<size_t>(count) < kKcpBatch) break;
    }
    if (self->socket_.is_open()) co_await asio::post(self->socket_.get_executor(), asio::use_awaitable);
  }
}

void KcpSocket::send(std::span<const uint8_t> packet, const udp::endpoint* to) {
  if (!socket_.is_open() || packet.size() > kKcpMaxDatagram || queue_.size() >= queue_limit_) {
    ++counters_.send_dropped;
    return;
  }
  std::unique_ptr<Packet> slot;
  if (!spare_.empty()) {
    slot = std::move(spare_.back());
    spare_.pop_back();
  } else {
    slot = std::make_unique<Packet>();
  }
  std::memcpy(slot->bytes, packet.data(), packet.size());
  slot->size = static_cast<uint16_t>(packet.size());
  slot->has_peer = to != nullptr;
  if (to != nullptr) slot->peer = *to;
  queue_.push_back(std::move(slot));
  if (flush_posted_ || waiting_writable_) return;
  flush_posted_ = true;
  asio::post(socket_.get_executor(), [weak = weak_from_this()] {
    if (auto self = weak.lock()) {
      self->flush_posted_ = false;
      self->flush();
    }
  });
}

void KcpSocket::flush() {
  std::array<iovec, kKcpBatch> vectors{};
  std::array<mmsghdr, kKcpBatch> headers{};
  while (!queue_.empty() && socket_.is_open()) {
    size_t count = std::min(queue_.size(), kKcpBatch);
    for (size_t i = 0; i < count; ++i) {
      Packet& packet = *queue_[i];
      vectors[i] = {packet.bytes, packet.size};
      headers[i] = {};
      if (packet.has_peer) {
        headers[i].msg_hdr.msg_name = packet.peer.data();
        headers[i].msg_hdr.msg_namelen = static_cast<socklen_t>(packet.peer.size());
      }
      headers[i].msg_hdr.msg_iov = &vectors[i];
      headers[i].msg_hdr.msg_iovlen = 1;
    }
    int sent = ::sendmmsg(socket_.native_handle(), headers.data(), static_cast<unsigned>(count), MSG_DONTWAIT);
    if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return wait_writable();
    // Any other error concerns the first packet (a peer's ICMP, an unroutable address): drop it.
    size_t done = sent > 0 ? static_cast<size_t>(sent) : 1;
    if (sent > 0) {
      counters_.sent += done;
    } else {
      ++counters_.send_dropped;
    }
    for (size_t i = 0; i < done; ++i) {
      if (spare_.size() < kMaxSpare) spare_.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
  }
}

void KcpSocket::wait_writable() {
  waiting_writable_ = true;
  socket_.async_wait(udp::socket::wait_write, [weak = weak_from_this()](error_code error) {
    auto self = weak.lock();
    if (!self) return;
    self->waiting_writable_ = false;
    if (!error) self->flush();
  });
}

}  // namespace strait::agent
