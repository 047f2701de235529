#pragma once

// The UDP socket under KCP conversations: datagrams in and out in batches (recvmmsg and
// sendmmsg, 32 a call), so that a window's worth of packets costs a few system calls.
//
// Threading: one worker owns the socket and everything here.

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include <boost/asio/ip/udp.hpp>

#include "agent/channel/channel.h"

namespace strait::agent {

constexpr size_t kKcpBatch = 32;
// kcp-go's mtuLimit: nothing longer is sent, anything longer is dropped on receipt.
constexpr size_t kKcpMaxDatagram = 1500;

struct KcpSocketCounters {
  uint64_t received = 0;
  uint64_t oversized = 0;     // longer than 1500 bytes: dropped
  uint64_t sent = 0;
  uint64_t send_dropped = 0;  // send queue full, or the kernel refused
};

class KcpSocket : public std::enable_shared_from_this<KcpSocket> {
 public:
  using udp = asio::ip::udp;
  // Datagram bytes (writable: decrypted in place) and the sender; valid during the call only.
  using Receiver = std::function<void(std::span<uint8_t> datagram, const udp::endpoint& from)>;

  // `queue_limit` datagrams wait at most for the kernel's send buffer; beyond, new ones are
  // dropped (KCP resends), as a full socket buffer would.
  KcpSocket(udp::socket socket, size_t queue_limit);
  ~KcpSocket();

  // Starts the receive loop; `receiver` is called for every datagram until close().
  void start(Receiver receiver);
  // Queues a copy of `packet` for `to` (nullptr: the connected peer); sent within this turn
  // of the event loop, together with whatever else is queued by then.
  void send(std::span<const uint8_t> packet, const udp::endpoint* to);
  void close();
  bool is_open() const { return socket_.is_open(); }
  udp::socket& socket() { return socket_; }
  const KcpSocketCounters& counters() const { return counters_; }
  size_t queued() const { return queue_.size(); }

  // SO_SNDBUF/SO_RCVBUF (`bytes` > 0) and the DSCP bits of outgoing packets; errors ignored,
  // as kcp-go does (the kernel caps buffers at its maximum).
  static void tune(udp::socket& socket, int bytes, int dscp);

 private:
  struct Packet {
    uint8_t bytes[kKcpMaxDatagram];
    uint16_t size = 0;
    bool has_peer = false;
    udp::endpoint peer;
  };

  static asio::awaitable<void> receive_loop(std::shared_ptr<KcpSocket> self);
  void flush();
  void wait_writable();

  udp::socket socket_;
  size_t queue_limit_;
  Receiver receiver_;
  std::deque<std::unique_ptr<Packet>> queue_;
  std::vector<std::unique_ptr<Packet>> spare_;
  bool flush_posted_ = false;
  bool waiting_writable_ = false;
  KcpSocketCounters counters_;
};

}  // namespace strait::agent
