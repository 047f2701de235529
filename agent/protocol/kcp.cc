#include "agent/protocol/kcp.h"

#include <cstring>

#include "common/strings.h"

namespace strait::agent::kcp {
namespace {

using common::str_cat;

constexpr uint32_t kRtoNoDelayMin = 30;   // kcp-go IKCP_RTO_NDL
constexpr uint32_t kRtoMin = 100;
constexpr uint32_t kRtoMax = 60000;
constexpr uint32_t kProbeInitial = 500;   // kcp-go; ikcp waits 7 s before the first WASK
constexpr uint32_t kProbeLimit = 120000;
constexpr uint32_t kThresholdMin = 2;
constexpr uint32_t kAskSend = 1;          // a WASK is due
constexpr uint32_t kAskTell = 2;          // a WINS is due
constexpr uint32_t kFastackSpent = UINT32_MAX;  // early-resent once; only the RTO resends it again
constexpr uint32_t kIdleWakeMs = 5000;
constexpr size_t kKeptSpareBuffers = 64;
constexpr uint32_t kMinInterval = 10;     // kcp-go NoDelay clamps interval to [10, 5000]
constexpr uint32_t kMaxInterval = 5000;

// Sequence numbers and timestamps wrap: compare through the signed difference.
int32_t diff(uint32_t later, uint32_t earlier) { return static_cast<int32_t>(later - earlier); }

uint32_t read_u32(const uint8_t* at) {
  return static_cast<uint32_t>(at[0]) | static_cast<uint32_t>(at[1]) << 8 | static_cast<uint32_t>(at[2]) << 16 |
         static_cast<uint32_t>(at[3]) << 24;
}

void write_u32(uint8_t* at, uint32_t value) {
  for (int i = 0; i < 4; ++i) at[i] = static_cast<uint8_t>(value >> (8 * i));
}

}  // namespace

void encode_segment_header(const SegmentHeader& header, uint8_t* out) {
  write_u32(out, header.conversation);
  out[4] = header.command;
  out[5] = header.fragment;
  out[6] = static_cast<uint8_t>(header.window);
  out[7] = static_cast<uint8_t>(header.window >> 8);
  write_u32(out + 8, header.timestamp);
  write_u32(out + 12, header.sequence);
  write_u32(out + 16, header.unacknowledged);
  write_u32(out + 20, header.length);
}

std::optional<SegmentHeader> decode_segment_header(std::span<const uint8_t> bytes) {
  if (bytes.size() < kSegmentHeaderSize) return std::nullopt;
  const uint8_t* at = bytes.data();
  return SegmentHeader{read_u32(at),
                       at[4],
                       at[5],
                       static_cast<uint16_t>(at[6] | at[7] << 8),
                       read_u32(at + 8),
                       read_u32(at + 12),
                       read_u32(at + 16),
                       read_u32(at + 20)};
}

std::optional<uint32_t> conversation_of(std::span<const uint8_t> segments) {
  if (segments.size() < kSegmentHeaderSize) return std::nullopt;
  return read_u32(segments.data());
}

absl::Status validate(const Tuning& tuning) {
  if (tuning.reserved > kMaxPacket - kMinMtu) {
    return absl::InvalidArgumentError(str_cat("kcp: reserved ", tuning.reserved, " leaves no room for segments"));
  }
  if (tuning.mtu < kMinMtu + tuning.reserved || tuning.mtu > kMaxPacket) {
    return absl::InvalidArgumentError(str_cat("kcp: mtu ", tuning.mtu, " is outside ", kMinMtu + tuning.reserved, "..",
                                              kMaxPacket, " (", tuning.reserved, " bytes are crypt/FEC headers)"));
  }
  if (tuning.interval_ms < kMinInterval || tuning.interval_ms > kMaxInterval) {
    return absl::InvalidArgumentError(
        str_cat("kcp: interval ", tuning.interval_ms, "ms is outside ", kMinInterval, "..", kMaxInterval, "ms"));
  }
  if (tuning.send_window < 1 || tuning.send_window > kMaxWindow) {
    return absl::InvalidArgumentError(str_cat("kcp: sndwnd ", tuning.send_window, " is outside 1..", kMaxWindow));
  }
  if (tuning.receive_window < 1 || tuning.receive_window > kMaxWindow) {
    return absl::InvalidArgumentError(str_cat("kcp: rcvwnd ", tuning.receive_window, " is outside 1..", kMaxWindow));
  }
  if (tuning.fast_resend < 0) {
    return absl::InvalidArgumentError(str_cat("kcp: resend ", tuning.fast_resend, " is negative"));
  }
  return absl::OkStatus();
}

Control::Control(uint32_t conversation, const Tuning& tuning, Output output)
    : conversation_(conversation),
      reserved_(std::min(tuning.reserved, kMaxPacket - kMinMtu)),
      interval_(std::clamp(tuning.interval_ms, kMinInterval, kMaxInterval)),
      nodelay_(tuning.nodelay),
      fast_resend_(static_cast<uint32_t>(std::max(tuning.fast_resend, 0))),
      congestion_control_(tuning.congestion_control),
      send_window_(std::clamp<uint32_t>(tuning.send_window, 1, kMaxWindow)),
      receive_window_(std::clamp<uint32_t>(tuning.receive_window, 1, kMaxWindow)),
      ack_nodelay_(tuning.ack_nodelay),
      min_rto_(tuning.nodelay ? kRtoNoDelayMin : kRtoMin),
      output_(std::move(output)) {
  const uint32_t mtu = std::clamp(tuning.mtu, reserved_ + kMinMtu, kMaxPacket);
  segment_mtu_ = mtu - reserved_;
  mss_ = segment_mtu_ - kSegmentHeaderSize;
  incr_ = mss_;
  packet_.resize(mtu);
}

void Control::start_sequence_at(uint32_t sn) { snd_una_ = snd_nxt_ = rcv_nxt_ = rcv_front_sn_ = sn; }

Control::Buffer Control::take_buffer() {
  if (spare_buffers_.empty()) return std::make_unique_for_overwrite<uint8_t[]>(kMaxSegmentData);
  Buffer buffer = std::move(spare_buffers_.back());
  spare_buffers_.pop_back();
  return buffer;
}

void Control::give_buffer(Buffer buffer) {
  if (buffer && spare_buffers_.size() < kKeptSpareBuffers) spare_buffers_.push_back(std::move(buffer));
}

// ---- input ----

InputError Control::input(std::span<const uint8_t> in, uint32_t now, PacketOrigin origin) {
  if (in.size() < kSegmentHeaderSize) {
    ++counters_.input_errors;
    return InputError::kTruncated;
  }
  const uint32_t prior_una = snd_una_;
  InputError result = InputError::kNone;
  packet_acks_.clear();
  while (in.size() >= kSegmentHeaderSize) {
    const SegmentHeader header = *decode_segment_header(in);
    // kcp-go's order of checks: conv, then length, then command.
    if (header.conversation != conversation_) {
      result = InputError::kWrongConversation;
      break;
    }
    if (header.length > in.size() - kSegmentHeaderSize || header.length > kMaxSegmentData) {
      result = InputError::kBadLength;
      break;
    }
    if (header.command < command::kPush || header.command > command::kWindowTell) {
      result = InputError::kUnknownCommand;
      break;
    }
    if (origin == PacketOrigin::kWire) peer_window_ = header.window;
    acknowledge_below(header.unacknowledged);
    switch (header.command) {
      case command::kAck:
        acknowledge(header.sequence);
        packet_acks_.push_back({header.sequence, header.timestamp});
        break;
      case command::kPush:
        // Within the window, old or new, a PUSH is acked: our earlier ack may have been lost.
        if (diff(header.sequence, rcv_nxt_ + receive_window_) < 0) {
          pending_acks_.push_back({header.sequence, header.timestamp});
          if (diff(header.sequence, rcv_nxt_) >= 0) {
            store(header.sequence, in.subspan(kSegmentHeaderSize, header.length));
          } else {
            ++counters_.duplicate_segments;
          }
        }
        break;
      case command::kWindowAsk:
        probe_flags_ |= kAskTell;
        break;
      default:
        break;  // WINS: its window was taken above
    }
    in = in.subspan(kSegmentHeaderSize + header.length);
  }

  bool fast_resend_due = false;
  if (!packet_acks_.empty()) {
    fast_resend_due = count_fast_acks();
    // One RTT sample per datagram, from its last ACK (kcp-go), never from a rebuilt datagram.
    const int32_t rtt = diff(now, packet_acks_.back().ts);
    if (origin == PacketOrigin::kWire && rtt >= 0) update_rtt(rtt);
  }
  const bool una_moved = diff(snd_una_, prior_una) > 0;
  if (congestion_control_ && una_moved) grow_congestion_window();
  // kcp-go: send at once when the window slid or a fast resend is due; acks alone go out when
  // a packet's worth piled up (the clock on links faster than the interval) or with ack_nodelay.
  if (una_moved || fast_resend_due) {
    flush_packets(now, true);
  } else if (pending_acks_.size() >= segment_mtu_ / kSegmentHeaderSize ||
             (ack_nodelay_ && !pending_acks_.empty())) {
    flush_packets(now, false);
  }
  if (result != InputError::kNone) ++counters_.input_errors;
  return result;
}

void Control::acknowledge_below(uint32_t una) {
  if (diff(una, snd_una_) <= 0) return;
  // A una beyond what we sent can only cover what we sent.
  const uint32_t limit = diff(una, snd_nxt_) > 0 ? snd_nxt_ : una;
  while (snd_una_ != limit) {
    give_buffer(std::move(send_ring_[0].data));
    send_ring_.pop_front();
    ++snd_una_;
  }
  drop_acked_front();
}

void Control::acknowledge(uint32_t sn) {
  if (diff(sn, snd_una_) < 0 || diff(sn, snd_nxt_) >= 0) return;
  SendSlot& slot = send_ring_[sn - snd_una_];
  if (slot.acked) return;
  slot.acked = true;
  give_buffer(std::move(slot.data));
  drop_acked_front();
}

// kcp-go keeps acked segments until una passes them; ikcp unlinks them at once. Dropping them
// from the front as ikcp does moves snd_una sooner, which only opens our window earlier.
void Control::drop_acked_front() {
  while (snd_una_ != snd_nxt_ && send_ring_[0].acked) {
    send_ring_.pop_front();
    ++snd_una_;
  }
}

// kcp-go parse_fastack, once per datagram instead of once per ACK: an unacked segment gains
// one for each ACK of a later sn whose echoed ts is not older than the segment's last send
// (an ACK for something sent before our resend says nothing about the resend).
bool Control::count_fast_acks() {
  uint32_t reach = 0;
  for (const Ack& ack : packet_acks_) {
    if (diff(ack.sn, snd_una_) >= 0 && diff(ack.sn, snd_nxt_) < 0) reach = std::max(reach, ack.sn - snd_una_);
  }
  bool due = false;
  for (uint32_t i = 0; i < reach; ++i) {
    SendSlot& slot = send_ring_[i];
    if (slot.acked || slot.fastack == kFastackSpent) continue;
    bool counted = false;
    for (const Ack& ack : packet_acks_) {
      if (diff(ack.sn, slot.sn) > 0 && diff(slot.ts, ack.ts) <= 0 && slot.fastack < kFastackSpent - 1) {
        ++slot.fastack;
        counted = true;
      }
    }
    if (counted && slot.fastack >= fast_resend_) due = true;
  }
  return due;
}

// RFC 6298 as kcp-go applies it: a sample below srtt - rttvar moves rttvar 8 times slower, and
// the variance term is at least one interval.
void Control::update_rtt(int32_t rtt) {
  if (srtt_ == 0) {
    srtt_ = rtt;
    rttvar_ = rtt / 2;
  } else {
    int64_t delta = rtt - srtt_;
    srtt_ += delta >> 3;
    if (delta < 0) delta = -delta;
    rttvar_ += rtt < srtt_ - rttvar_ ? (delta - rttvar_) >> 5 : (delta - rttvar_) >> 2;
  }
  const int64_t rto = srtt_ + std::max<int64_t>(interval_, rttvar_ * 4);
  rto_ = static_cast<uint32_t>(std::clamp<int64_t>(rto, min_rto_, kRtoMax));
}

// Slow start below ssthresh, then about one segment per RTT, never above the peer's window.
void Control::grow_congestion_window() {
  if (cwnd_ >= peer_window_) return;
  if (cwnd_ < ssthresh_) {
    ++cwnd_;
    incr_ += mss_;
  } else {
    incr_ = std::max(incr_, mss_);
    incr_ += mss_ * mss_ / incr_ + mss_ / 16;
    if (static_cast<uint64_t>(cwnd_ + 1) * mss_ <= incr_) cwnd_ = (incr_ + mss_ - 1) / mss_;
  }
  if (cwnd_ > peer_window_) {
    cwnd_ = peer_window_;
    incr_ = peer_window_ * mss_;
  }
}

void Control::store(uint32_t sn, std::span<const uint8_t> data) {
  // sn < rcv_nxt_ + receive_window_ and rcv_nxt_ - rcv_front_sn_ ≤ receive_window_: the index
  // stays below 2 × receive_window_ whatever the peer sends.
  const size_t index = sn - rcv_front_sn_;
  receive_ring_.grow_to(index + 1);
  ReceiveSlot& slot = receive_ring_[index];
  if (slot.present) {
    ++counters_.duplicate_segments;
    return;
  }
  slot.data = take_buffer();
  if (!data.empty()) std::memcpy(slot.data.get(), data.data(), data.size());
  slot.length = static_cast<uint32_t>(data.size());
  slot.read = 0;
  slot.present = true;
  ++counters_.segments_received;
  deliver_in_order();
}

// Moves the in-order run into the read queue, which holds at most receive_window_ segments
// (ikcp: what the reader has not taken closes the advertised window).
void Control::deliver_in_order() {
  do {
    while (rcv_nxt_ - rcv_front_sn_ < receive_window_) {
      const size_t index = rcv_nxt_ - rcv_front_sn_;
      if (index >= receive_ring_.size() || !receive_ring_[index].present) break;
      readable_bytes_ += receive_ring_[index].length;
      ++rcv_nxt_;
    }
    drop_read_front();
  } while (rcv_nxt_ - rcv_front_sn_ < receive_window_ && rcv_nxt_ - rcv_front_sn_ < receive_ring_.size() &&
           receive_ring_[rcv_nxt_ - rcv_front_sn_].present);
}

// Empty segments would otherwise sit in the queue with readable_bytes() == 0 and nobody
// reading them away.
void Control::drop_read_front() {
  while (rcv_front_sn_ != rcv_nxt_ && receive_ring_[0].read == receive_ring_[0].length) {
    give_buffer(std::move(receive_ring_[0].data));
    receive_ring_.pop_front();
    ++rcv_front_sn_;
  }
}

size_t Control::receive(std::span<uint8_t> out) {
  const bool was_full = rcv_nxt_ - rcv_front_sn_ >= receive_window_;
  size_t copied = 0;
  while (copied < out.size() && rcv_front_sn_ != rcv_nxt_) {
    ReceiveSlot& slot = receive_ring_[0];
    const size_t n = std::min<size_t>(slot.length - slot.read, out.size() - copied);
    std::memcpy(out.data() + copied, slot.data.get() + slot.read, n);
    slot.read += static_cast<uint32_t>(n);
    copied += n;
    readable_bytes_ -= n;
    if (slot.read < slot.length) break;
    give_buffer(std::move(slot.data));
    receive_ring_.pop_front();
    ++rcv_front_sn_;
  }
  deliver_in_order();
  // The peer stopped at a zero window and would otherwise wait for its next probe.
  if (was_full && rcv_nxt_ - rcv_front_sn_ < receive_window_) probe_flags_ |= kAskTell;
  return copied;
}

size_t Control::buffered_receive_segments() const { return receive_ring_.size(); }

uint16_t Control::unused_window() const {
  const uint32_t queued = rcv_nxt_ - rcv_front_sn_;
  return static_cast<uint16_t>(queued < receive_window_ ? receive_window_ - queued : 0);
}

// ---- send ----

size_t Control::send(std::span<const uint8_t> bytes) {
  size_t taken = 0;
  const size_t in_flight = snd_nxt_ - snd_una_;
  if (send_ring_.size() > in_flight) {
    SendSlot& last = send_ring_[send_ring_.size() - 1];
    taken = std::min<size_t>(mss_ - last.length, bytes.size());
    if (taken > 0) std::memcpy(last.data.get() + last.length, bytes.data(), taken);
    last.length += static_cast<uint32_t>(taken);
  }
  while (taken < bytes.size() && send_ring_.size() < 2 * size_t{send_window_}) {
    send_ring_.grow_to(send_ring_.size() + 1);
    SendSlot& slot = send_ring_[send_ring_.size() - 1];
    slot.data = take_buffer();
    const size_t n = std::min<size_t>(mss_, bytes.size() - taken);
    std::memcpy(slot.data.get(), bytes.data() + taken, n);
    slot.length = static_cast<uint32_t>(n);
    taken += n;
  }
  return taken;
}

bool Control::writable() const {
  if (send_ring_.size() < 2 * size_t{send_window_}) return true;
  const size_t in_flight = snd_nxt_ - snd_una_;
  return send_ring_.size() > in_flight && send_ring_[send_ring_.size() - 1].length < mss_;
}

// ---- output ----

void Control::put_segment(const SegmentHeader& header, std::span<const uint8_t> data) {
  const size_t need = kSegmentHeaderSize + data.size();
  if (packet_used_ + need > segment_mtu_) emit_packet();
  uint8_t* at = packet_.data() + reserved_ + packet_used_;
  encode_segment_header(header, at);
  if (!data.empty()) std::memcpy(at + kSegmentHeaderSize, data.data(), data.size());
  packet_used_ += need;
}

void Control::emit_packet() {
  output_(std::span<uint8_t>(packet_.data(), reserved_ + packet_used_));
  packet_used_ = 0;
}

void Control::flush_packets(uint32_t now, bool full) {
  packet_used_ = 0;
  SegmentHeader control{conversation_, command::kAck, 0, unused_window(), 0, 0, rcv_nxt_, 0};
  // kcp-go skips acks below rcv_nxt (una in every header covers them) but keeps the last one,
  // whose ts still gives the peer an RTT sample.
  for (size_t i = 0; i < pending_acks_.size(); ++i) {
    const Ack& ack = pending_acks_[i];
    if (diff(ack.sn, rcv_nxt_) >= 0 || i + 1 == pending_acks_.size()) {
      control.sequence = ack.sn;
      control.timestamp = ack.ts;
      put_segment(control, {});
    }
  }
  pending_acks_.clear();

  if (peer_window_ == 0) {
    if (probe_wait_ == 0) {
      probe_wait_ = kProbeInitial;
      probe_at_ = now + probe_wait_;
    } else if (diff(now, probe_at_) >= 0) {
      probe_wait_ = std::max(probe_wait_, kProbeInitial);
      probe_wait_ = std::min(probe_wait_ + probe_wait_ / 2, kProbeLimit);
      probe_at_ = now + probe_wait_;
      probe_flags_ |= kAskSend;
    }
  } else {
    probe_at_ = 0;
    probe_wait_ = 0;
  }
  control.sequence = 0;
  control.timestamp = 0;
  if (probe_flags_ & kAskSend) {
    control.command = command::kWindowAsk;
    put_segment(control, {});
  }
  if (probe_flags_ & kAskTell) {
    control.command = command::kWindowTell;
    put_segment(control, {});
  }
  probe_flags_ = 0;
  if (!full) {
    if (packet_used_ > 0) emit_packet();
    return;
  }

  uint32_t window = std::min(send_window_, peer_window_);
  if (congestion_control_) window = std::min(window, cwnd_);
  uint32_t fresh = 0;
  while (diff(snd_nxt_, snd_una_ + window) < 0 && snd_nxt_ - snd_una_ < send_ring_.size()) {
    send_ring_[snd_nxt_ - snd_una_].sn = snd_nxt_;
    ++snd_nxt_;
    ++fresh;
  }

  const uint32_t fast_limit = fast_resend_ > 0 ? fast_resend_ : kFastackSpent;
  uint64_t lost = 0, fast = 0, early = 0;
  SegmentHeader header{conversation_, command::kPush, 0, control.window, 0, 0, rcv_nxt_, 0};
  const uint32_t in_flight = snd_nxt_ - snd_una_;
  earliest_resend_ = now + kRtoMax;
  for (uint32_t i = 0; i < in_flight; ++i) {
    SendSlot& slot = send_ring_[i];
    if (slot.acked) continue;
    bool due = true;
    if (slot.transmissions == 0) {
      slot.rto = rto_;
      slot.resend_at = now + slot.rto;
    } else if (slot.fastack >= fast_limit && slot.fastack != kFastackSpent) {
      // Counting starts again, and only acks of segments sent after this resend count
      // (count_fast_acks compares ts): a resend lost too is resent again after fast_resend
      // of those, as kcp-go does, not after an RTO. On a lossy link with delay, waiting for
      // the RTO stalled the window: 1.44 against 1.93 × kcptun's throughput.
      slot.fastack = 0;
      slot.rto = rto_;
      slot.resend_at = now + slot.rto;
      ++fast;
    } else if (slot.fastack > 0 && slot.fastack != kFastackSpent && fresh == 0) {
      // kcp-go's early retransmit: a later segment got through and nothing new is going out
      // whose acks could reveal the loss.
      slot.fastack = kFastackSpent;
      slot.rto = rto_;
      slot.resend_at = now + slot.rto;
      ++early;
    } else if (diff(now, slot.resend_at) >= 0) {
      // Backoff adds a whole RTO (half with nodelay); capped so resend_at stays comparable.
      slot.rto = std::min(slot.rto + (nodelay_ ? rto_ / 2 : rto_), kRtoMax);
      slot.fastack = 0;
      slot.resend_at = now + slot.rto;
      ++slot.timeouts;
      ++lost;
    } else {
      due = false;
    }
    if (due) {
      ++slot.transmissions;
      slot.ts = now;
      header.timestamp = now;
      header.sequence = slot.sn;
      header.length = slot.length;
      put_segment(header, {slot.data.get(), slot.length});
      ++counters_.segments_sent;
      if (1 + slot.timeouts >= kDeadLink) dead_ = true;
    }
    if (diff(slot.resend_at, earliest_resend_) < 0) earliest_resend_ = slot.resend_at;
  }
  if (packet_used_ > 0) emit_packet();

  counters_.lost_segments += lost;
  counters_.fast_retransmits += fast;
  counters_.early_retransmits += early;
  counters_.retransmits += lost + fast + early;
  if (congestion_control_) {
    if (fast + early > 0) {  // halve to what is in flight, as TCP's fast recovery
      ssthresh_ = std::max(in_flight / 2, kThresholdMin);
      cwnd_ = ssthresh_ + fast_resend_;
      incr_ = cwnd_ * mss_;
    }
    if (lost > 0) {  // an RTO: back to slow start
      ssthresh_ = std::max(window / 2, kThresholdMin);
      cwnd_ = 1;
      incr_ = mss_;
    }
    if (cwnd_ < 1) {
      cwnd_ = 1;
      incr_ = mss_;
    }
  }
}

// ---- timers ----

void Control::update(uint32_t now) {
  if (!updated_) {
    updated_ = true;
    flush_at_ = now;
  }
  int32_t slap = diff(now, flush_at_);
  if (slap >= 10000 || slap < -10000) {  // the clock jumped: resynchronise rather than burst
    flush_at_ = now;
    slap = 0;
  }
  if (slap >= 0) {
    flush_at_ += interval_;
    if (diff(now, flush_at_) >= 0) flush_at_ = now + interval_;
    flush(now);
  }
}

uint32_t Control::next_update_ms(uint32_t now) const {
  if (!updated_) return now;
  const bool idle = pending_acks_.empty() && probe_flags_ == 0 && send_ring_.size() == 0 && peer_window_ != 0;
  if (idle) return now + kIdleWakeMs;
  uint32_t flush_at = flush_at_;
  const int32_t slap = diff(now, flush_at);
  if (slap >= 10000 || slap < -10000) flush_at = now;
  if (diff(now, flush_at) >= 0) return now;
  uint32_t wait = flush_at - now;
  if (snd_nxt_ != snd_una_) {
    const int32_t resend = diff(earliest_resend_, now);
    if (resend <= 0) return now;
    wait = std::min(wait, static_cast<uint32_t>(resend));
  }
  return now + std::min(wait, interval_);
}

}  // namespace strait::agent::kcp
