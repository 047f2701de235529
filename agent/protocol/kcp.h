#pragma once

// KCP ARQ core, wire-compatible with skywind3000/kcp (ikcp.c) and, where the two differ, with
// xtaci/kcp-go kcp.go as kcptun and GOST run it (stream mode). No I/O and no clock: the KCP
// channel (UDP socket, sessions, crypt, FEC) feeds datagrams in, drains packets out through
// Output and drives the timers. Wire facts: shared/PROTOCOLS.md §5.
//
// Threading: a Control belongs to one worker; nothing in it is shared.

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace strait::agent::kcp {

// Segment: conv(4) cmd(1) frg(1) wnd(2) ts(4) sn(4) una(4) len(4), little-endian, then len bytes.
constexpr size_t kSegmentHeaderSize = 24;

namespace command {
constexpr uint8_t kPush = 81;         // data
constexpr uint8_t kAck = 82;          // acknowledges sn, echoes the PUSH's ts
constexpr uint8_t kWindowAsk = 83;    // window probe: "tell me your window"
constexpr uint8_t kWindowTell = 84;   // window size, carried in wnd
}  // namespace command

// kcp-go reads every datagram into a 1500-byte buffer (sess.go mtuLimit), so a larger packet
// would reach a kcp-go peer cut short; it also bounds what a peer's segment can carry.
constexpr uint32_t kMaxPacket = 1500;
constexpr uint32_t kMaxSegmentData = kMaxPacket - kSegmentHeaderSize;
constexpr uint32_t kMinMtu = 50;     // ikcp refuses mtu < 50
// kcp-go IKCP_DEADLINK: sends of one segment, counting the first and the RTO resends only. A
// fast or early resend follows acks, so the peer is alive; counted, repeated fast resends of a
// segment that a congested receiver keeps dropping would end a live session.
constexpr uint32_t kDeadLink = 20;
constexpr uint32_t kMaxWindow = 65535;  // wnd is 16 bits on the wire

struct SegmentHeader {
  uint32_t conversation = 0;
  uint8_t command = 0;
  uint8_t fragment = 0;
  uint16_t window = 0;
  uint32_t timestamp = 0;
  uint32_t sequence = 0;
  uint32_t unacknowledged = 0;  // una: every sn below it has arrived
  uint32_t length = 0;

  bool operator==(const SegmentHeader&) const = default;
};

void encode_segment_header(const SegmentHeader& header, uint8_t* out);  // writes 24 bytes
// The header at the front of `bytes`, if 24 bytes are there; the values are not checked.
std::optional<SegmentHeader> decode_segment_header(std::span<const uint8_t> bytes);
// The first segment's conv (how a server tells conversations apart), if ≥ 24 bytes.
std::optional<uint32_t> conversation_of(std::span<const uint8_t> segments);

// kcp-go SetNoDelay / SetWindowSize / SetMtu / SetACKNoDelay. Defaults: GOST's DefaultConfig
// in mode "fast" = (nodelay 0, interval 30, resend 2, nc 1), so congestion control is off.
struct Tuning {
  bool nodelay = false;          // minimum RTO 30 ms instead of 100, RTO backoff halved
  uint32_t interval_ms = 30;     // flush period
  int fast_resend = 2;           // resend after this many later acks; 0 = never fast-resend
  bool congestion_control = false;  // nc = 1 → false
  uint32_t mtu = 1350;           // bytes of one output packet including `reserved`
  uint32_t reserved = 0;         // bytes free at the front of each packet (crypt + FEC headers)
  uint32_t send_window = 1024;   // segments
  uint32_t receive_window = 1024;
  bool ack_nodelay = false;      // acknowledge at once from input() instead of at the next flush
};

// Refuses, naming the field: mtu outside [50 + reserved, 1500]; interval outside [10, 5000] ms
// (kcp-go would clamp; we refuse so the config says what runs); a window outside [1, 65535];
// a negative fast_resend.
absl::Status validate(const Tuning& tuning);

enum class InputError {
  kNone,
  kTruncated,          // fewer than 24 bytes in the whole datagram
  kWrongConversation,  // a segment's conv is not ours
  kUnknownCommand,
  kBadLength,          // len beyond the datagram's end or above kMaxSegmentData
};

// Whether a datagram came off the wire or was rebuilt by FEC: kcp-go takes the peer's window
// and RTT samples only from the former (a rebuilt one may be old).
enum class PacketOrigin { kWire, kRecovered };

struct Counters {
  uint64_t segments_sent = 0;       // PUSH segments put on the wire, first sends and resends
  uint64_t retransmits = 0;         // every resend: RTO + fast + early
  uint64_t fast_retransmits = 0;    // after fast_resend later acks
  uint64_t early_retransmits = 0;   // kcp-go: a later ack and nothing new to send
  uint64_t lost_segments = 0;       // resent because their RTO expired
  uint64_t segments_received = 0;   // new PUSH segments stored
  uint64_t duplicate_segments = 0;  // PUSH segments we already had or had read
  uint64_t input_errors = 0;
};

namespace detail {

// A ring of slots indexed from its front that grows by doubling. Slots outside
// [front, front + size) are kept value-initialised.
template <typename T>
class Ring {
 public:
  size_t size() const { return size_; }
  T& operator[](size_t i) { return slots_[(head_ + i) & (slots_.size() - 1)]; }
  const T& operator[](size_t i) const { return slots_[(head_ + i) & (slots_.size() - 1)]; }
  void grow_to(size_t n) {
    if (n <= size_) return;
    if (n > slots_.size()) reallocate(std::bit_ceil(std::max<size_t>(n, 16)));
    size_ = n;
  }
  void pop_front() {
    (*this)[0] = T{};
    head_ = (head_ + 1) & (slots_.size() - 1);
    --size_;
  }

 private:
  void reallocate(size_t capacity) {
    std::vector<T> next(capacity);
    for (size_t i = 0; i < size_; ++i) next[i] = std::move((*this)[i]);
    slots_.swap(next);
    head_ = 0;
  }
  std::vector<T> slots_;
  size_t head_ = 0;
  size_t size_ = 0;
};

}  // namespace detail

// One conversation in stream mode: sends frg 0, ignores the frg of what it receives.
// Memory is bounded by the tuning alone: at most 2 × send_window segments queued or in flight
// and 2 × receive_window received (read queue + out-of-order window), each ≤ 1476 bytes.
class Control {
 public:
  // `packet` = `reserved` bytes of garbage for the caller's headers, then segments; valid only
  // during the call. Output must not call back into this Control.
  using Output = std::function<void(std::span<uint8_t> packet)>;

  // `tuning` should have passed validate(); out-of-range values are clamped, never trusted.
  Control(uint32_t conversation, const Tuning& tuning, Output output);

  // One datagram after crypt/FEC removal. Segments are applied in order; at a bad one input
  // stops and returns why, and the segments before it stay applied, as in ikcp and kcp-go
  // (we still run the end-of-datagram steps — RTT, fast-ack counting, congestion window — for
  // them, which kcp-go skips). Fewer than 24 trailing bytes are ignored, as kcp-go does.
  // May call Output (kcp-go flushes from Input when una moved, on fast-resend, when many
  // acks are pending, and with ack_nodelay).
  InputError input(std::span<const uint8_t> segments, uint32_t now_ms,
                   PacketOrigin origin = PacketOrigin::kWire);

  // Appends to the stream, filling the last unsent segment first; takes bytes only while
  // fewer than 2 × send_window segments are queued or in flight. Returns the bytes taken.
  // Sending is up to the caller: flush() at once (kcp-go without write delay) or update().
  size_t send(std::span<const uint8_t> bytes);
  bool writable() const;  // send() would take at least one byte

  // In-order stream bytes; reading opens the window (and announces it with WINS when it had
  // been full, as ikcp does).
  size_t receive(std::span<uint8_t> out);
  size_t readable_bytes() const { return readable_bytes_; }

  // Acks, window probes, new segments within min(send window, peer window[, cwnd]), then RTO,
  // fast and early retransmits, as kcp-go's flush.
  void flush(uint32_t now_ms) { flush_packets(now_ms, true); }
  // ikcp_update: flushes when the interval has elapsed.
  void update(uint32_t now_ms);
  // ikcp_check: when update() must run next. Ask again after input(), send() or receive().
  // An idle conversation (nothing to send, ack or probe) returns now + 5 s rather than now +
  // interval, so idle sessions cost no wake-ups.
  uint32_t next_update_ms(uint32_t now_ms) const;

  size_t waiting_send() const { return send_ring_.size(); }  // segments queued + unacked
  bool dead() const { return dead_; }                        // a segment went out kDeadLink times
  uint32_t conversation() const { return conversation_; }
  const Counters& counters() const { return counters_; }
  // Received segments held (read queue + out-of-order), for tests and metrics.
  size_t buffered_receive_segments() const;
  uint32_t peer_window() const { return peer_window_; }

  // Test hook: starts both sequence spaces at `sn` (before any traffic; the peer gets the same).
  void start_sequence_at(uint32_t sn);

 private:
  using Buffer = std::unique_ptr<uint8_t[]>;
  struct Ack {
    uint32_t sn;
    uint32_t ts;
  };
  struct SendSlot {
    Buffer data;
    uint32_t length = 0;
    uint32_t sn = 0;
    uint32_t ts = 0;
    uint32_t resend_at = 0;
    uint32_t rto = 0;
    uint32_t fastack = 0;
    uint32_t transmissions = 0;
    uint32_t timeouts = 0;  // RTO resends
    bool acked = false;
  };
  struct ReceiveSlot {
    Buffer data;
    uint32_t length = 0;
    uint32_t read = 0;
    bool present = false;
  };

  Buffer take_buffer();
  void give_buffer(Buffer buffer);
  void acknowledge_below(uint32_t una);
  void acknowledge(uint32_t sn);
  void drop_acked_front();
  bool count_fast_acks();
  void update_rtt(int32_t rtt);
  void grow_congestion_window();
  void store(uint32_t sn, std::span<const uint8_t> data);
  void deliver_in_order();
  void drop_read_front();
  uint16_t unused_window() const;
  void flush_packets(uint32_t now, bool full);
  void put_segment(const SegmentHeader& header, std::span<const uint8_t> data);
  void emit_packet();

  uint32_t conversation_;
  uint32_t segment_mtu_;  // mtu minus reserved
  uint32_t mss_;
  uint32_t reserved_;
  uint32_t interval_;
  bool nodelay_;
  uint32_t fast_resend_;
  bool congestion_control_;
  uint32_t send_window_;
  uint32_t receive_window_;
  bool ack_nodelay_;
  uint32_t min_rto_;
  Output output_;

  uint32_t snd_una_ = 0;        // sn of send_ring_'s front
  uint32_t snd_nxt_ = 0;        // send_ring_[snd_nxt_ - snd_una_] is the first unsent
  uint32_t rcv_nxt_ = 0;        // next sn expected in order
  uint32_t rcv_front_sn_ = 0;   // sn of receive_ring_'s front; [front, rcv_nxt_) is readable
  int64_t srtt_ = 0;  // wide: a peer chooses the ts it echoes, hence any RTT sample
  int64_t rttvar_ = 0;
  uint32_t rto_ = 200;
  uint32_t peer_window_ = 32;   // ikcp's default until the peer's first segment says
  uint32_t cwnd_ = 1;
  uint32_t incr_ = 0;
  uint32_t ssthresh_ = 2;
  uint32_t probe_flags_ = 0;
  uint32_t probe_at_ = 0;
  uint32_t probe_wait_ = 0;
  uint32_t flush_at_ = 0;
  uint32_t earliest_resend_ = 0;  // from the last full flush; stale only towards earlier
  bool updated_ = false;
  bool dead_ = false;
  size_t readable_bytes_ = 0;

  detail::Ring<SendSlot> send_ring_;
  detail::Ring<ReceiveSlot> receive_ring_;
  std::vector<Ack> pending_acks_;  // to send
  std::vector<Ack> packet_acks_;   // received in the current datagram
  std::vector<Buffer> spare_buffers_;
  std::vector<uint8_t> packet_;
  size_t packet_used_ = 0;  // segment bytes after `reserved`
  Counters counters_;
};

}  // namespace strait::agent::kcp
