#pragma once

// One KCP conversation (kcp-go UDPSession) as a byte Stream: a kcp::Control, the packet crypt
// and FEC around it, backpressure both ways, and the timers that drive it. No socket: packets
// leave through a sink and arrive through on_datagram(), so a listener can serve many
// conversations on one socket and a test can put a lossy hop in between.
//
// Threading: a session, its timers and its sink belong to one worker; nothing locks.
//
// Memory: the Control holds at most 2 × sndwnd + 2 × rcvwnd segments, the FEC decoder
// 8 groups; reads copy out of the Control, writes into it. Nothing else grows with traffic.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <queue>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "agent/channel/channel.h"
#include "agent/channel/kcp_options.h"
#include "agent/protocol/kcp.h"
#include "agent/protocol/kcp_crypt.h"
#include "agent/protocol/kcp_fec.h"

namespace strait::agent {

class KcpSession;

// The clock and the one timer of every conversation on a worker's socket: a min-heap of
// wake-up times, so that ten thousand idle sessions cost one timer and no wake-ups.
class KcpTimers : public std::enable_shared_from_this<KcpTimers> {
 public:
  explicit KcpTimers(asio::any_io_executor executor);
  // Milliseconds since this object was made (KCP's 32-bit clock).
  uint32_t now_ms() const;
  asio::any_io_executor get_executor() { return timer_.get_executor(); }
  // Wakes `session` at `at_ms` or soon after; of several requests the earliest wins.
  void schedule(KcpSession& session, uint32_t at_ms);
  void add(KcpSession& session);
  void remove(KcpSession& session);
  size_t sessions() const { return sessions_.size(); }
  size_t heap_size() const { return heap_.size(); }

 private:
  using Clock = std::chrono::steady_clock;
  struct Entry {
    Clock::time_point at;
    uint64_t id;
    uint32_t at_ms;
    bool operator>(const Entry& other) const { return at > other.at; }
  };
  void arm();
  void fire();

  asio::steady_timer timer_;
  Clock::time_point epoch_;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> heap_;
  std::unordered_map<uint64_t, KcpSession*> sessions_;
  uint64_t next_id_ = 1;
  std::optional<Clock::time_point> armed_at_;
};

struct KcpSessionCounters {
  uint64_t datagrams = 0;
  uint64_t bad_crypt = 0;    // CRC mismatch after decryption: wrong key, foreign or corrupt
  uint64_t bad_fec = 0;      // FEC header malformed or of other shard counts
  uint64_t bad_kcp = 0;      // segments KCP refused (truncated, other conv, bad length)
  uint64_t recovered = 0;    // data shards rebuilt by FEC
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;
};

// Whether `datagram` (opened in place: pass a copy) is the first packet of a conversation
// this side can serve: the crypt opens it and a data shard's first segment is KCP. Its conv.
std::optional<uint32_t> first_packet_conversation(std::span<uint8_t> datagram, kcp::PacketCrypt* crypt, bool fec);

class KcpSession : public std::enable_shared_from_this<KcpSession> {
 public:
  // Sends one sealed datagram; the bytes are valid during the call only.
  using Sink = std::function<void(std::span<const uint8_t> datagram)>;

  // `crypt` may be null (crypt `null`) and may be shared by the sessions of one socket.
  static std::shared_ptr<KcpSession> create(std::shared_ptr<KcpTimers> timers, const KcpConfig& config,
                                            std::shared_ptr<kcp::PacketCrypt> crypt, uint32_t conversation,
                                            Sink sink, std::string remote, std::string local);
  ~KcpSession();
  KcpSession(const KcpSession&) = delete;
  KcpSession& operator=(const KcpSession&) = delete;

  // One datagram from the peer, decrypted in place. False when it was dropped as bad.
  bool on_datagram(std::span<uint8_t> datagram);
  // The byte stream of this conversation; its close() ends the session.
  StreamPtr stream();
  // Ends the session: what is queued is flushed once, pending operations complete with
  // operation_aborted, the sink is not used again.
  void close();
  // Called once when the session ends, whatever the reason (the listener forgets it).
  void on_end(std::function<void()> callback) { on_end_ = std::move(callback); }
  bool ended() const { return ended_; }
  error_code end_error() const { return end_error_; }
  uint32_t conversation() const { return control_.conversation(); }
  const KcpSessionCounters& counters() const { return counters_; }
  const kcp::Control& control() const { return control_; }
  const std::string& remote_address() const { return remote_; }
  const std::string& local_address() const { return local_; }
  asio::any_io_executor get_executor() const { return executor_; }

 private:
  friend class KcpTimers;
  friend class KcpStream;
  enum class Op { kRead, kWrite, kWait };
  template <typename Handler, typename Buffer>
  struct Pending {
    Buffer buffer;
    Handler handler;
    asio::cancellation_slot slot;
  };
  using PendingRead = Pending<common::IoHandler, asio::mutable_buffer>;
  using PendingWrite = Pending<common::IoHandler, asio::const_buffer>;
  using PendingWait = Pending<common::WaitHandler, int>;

  KcpSession(std::shared_ptr<KcpTimers> timers, const KcpConfig& config, std::shared_ptr<kcp::PacketCrypt> crypt,
             uint32_t conversation, Sink sink, std::string remote, std::string local);

  void output(std::span<uint8_t> packet);
  void feed(std::span<const uint8_t> segments, kcp::PacketOrigin origin, uint32_t now);
  void on_timer(uint32_t now);
  // After anything that changed the Control: complete what can complete, reschedule.
  void settle(uint32_t now);
  void end(error_code error);

  void read(asio::mutable_buffer buffer, common::IoHandler handler);
  void write(asio::const_buffer buffer, common::IoHandler handler);
  void wait_readable(common::WaitHandler handler);
  template <typename P>
  void arm(std::optional<P>& pending, Op op);
  void cancel(Op op);
  template <typename P, typename... Args>
  void complete(std::optional<P>& pending, Args... args);
  size_t take(asio::mutable_buffer buffer, uint32_t now);
  size_t put(asio::const_buffer buffer, uint32_t now);

  std::shared_ptr<KcpTimers> timers_;
  asio::any_io_executor executor_;
  std::shared_ptr<kcp::PacketCrypt> crypt_;
  size_t crypt_size_;
  std::optional<kcp::FecEncoder> fec_encoder_;
  std::optional<kcp::FecDecoder> fec_decoder_;
  Sink sink_;
  kcp::Control control_;
  const std::string remote_;
  const std::string local_;
  const uint32_t idle_limit_ms_;
  const uint32_t handshake_limit_ms_;
  const uint32_t started_ms_;
  uint32_t last_valid_ms_ = 0;
  bool heard_ = false;  // a valid KCP segment has arrived
  bool ended_ = false;
  error_code end_error_;
  std::function<void()> on_end_;

  // KcpTimers' bookkeeping.
  uint64_t timer_id_ = 0;
  std::optional<uint32_t> scheduled_ms_;

  std::optional<PendingRead> read_;
  std::optional<PendingWrite> write_;
  std::optional<PendingWait> wait_;
  KcpSessionCounters counters_;
};

}  // namespace strait::agent
