// Fuzzes the KCP core (agent/protocol/kcp) two ways at once. A lone Control `hostile` gets
// the fuzzer's bytes as datagrams, sends and reads between them, and must keep its bounds.
// A pair `a`/`b` exchanges only the packets they produce, which the fuzzer delivers out of
// order, duplicates or drops while the clock jumps: what b reads must be exactly the stream a
// was given. First byte: tuning; then operations, each an opcode byte and its arguments.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <span>
#include <vector>

#include "agent/protocol/kcp.h"

namespace kcp = strait::agent::kcp;

namespace {

constexpr uint32_t kConv = 0x5EED;

uint8_t stream_byte(uint64_t offset) { return static_cast<uint8_t>(offset * 131 + (offset >> 8)); }

struct Side {
  explicit Side(const kcp::Tuning& t, std::deque<std::vector<uint8_t>>* wire)
      : tuning(t), control(kConv, t, [this, wire](std::span<uint8_t> packet) { carry(packet, wire); }) {}

  void carry(std::span<uint8_t> packet, std::deque<std::vector<uint8_t>>* wire) {
    if (packet.size() > tuning.mtu || packet.size() < tuning.reserved + kcp::kSegmentHeaderSize) __builtin_trap();
    auto segments = packet.subspan(tuning.reserved);
    while (!segments.empty()) {
      auto header = kcp::decode_segment_header(segments);
      if (!header || header->conversation != kConv || header->fragment != 0) __builtin_trap();
      if (header->command < kcp::command::kPush || header->command > kcp::command::kWindowTell) __builtin_trap();
      if (header->length > tuning.mtu - tuning.reserved - kcp::kSegmentHeaderSize) __builtin_trap();
      if (header->command != kcp::command::kPush && header->length != 0) __builtin_trap();
      if (segments.size() < kcp::kSegmentHeaderSize + header->length) __builtin_trap();
      segments = segments.subspan(kcp::kSegmentHeaderSize + header->length);
    }
    if (wire && wire->size() < 4096) wire->emplace_back(packet.begin() + tuning.reserved, packet.end());
  }

  void check(uint32_t now) const {
    if (control.waiting_send() > 2 * size_t{tuning.send_window}) __builtin_trap();
    if (control.buffered_receive_segments() > 2 * size_t{tuning.receive_window}) __builtin_trap();
    if (control.readable_bytes() > size_t{tuning.receive_window} * kcp::kMaxSegmentData) __builtin_trap();
    if (static_cast<int32_t>(control.next_update_ms(now) - now) < 0 ||
        control.next_update_ms(now) - now > 5000) {
      __builtin_trap();
    }
  }

  kcp::Tuning tuning;
  kcp::Control control;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  kcp::Tuning tuning;
  tuning.nodelay = data[0] & 1;
  tuning.congestion_control = data[0] & 2;
  tuning.ack_nodelay = data[0] & 4;
  tuning.fast_resend = (data[0] >> 3) & 3;
  tuning.reserved = data[0] & 0x20 ? 28 : 0;
  tuning.mtu = data[0] & 0x40 ? 120 + tuning.reserved : 1350;
  tuning.send_window = 1 + (data[1] & 15);
  tuning.receive_window = 1 + (data[1] >> 4);
  tuning.interval_ms = 10;
  if (!kcp::validate(tuning).ok()) __builtin_trap();

  std::deque<std::vector<uint8_t>> to_b, to_a;
  Side hostile(tuning, nullptr), a(tuning, &to_b), b(tuning, &to_a);
  uint64_t sent = 0, received = 0;
  uint32_t now = 0;
  std::vector<uint8_t> scratch(4096);
  std::span<const uint8_t> in(data + 2, size - 2);
  auto take = [&](size_t n) {
    n = std::min(n, in.size());
    auto out = in.first(n);
    in = in.subspan(n);
    return out;
  };
  auto deliver = [&](std::deque<std::vector<uint8_t>>& wire, kcp::Control& to, uint8_t pick, bool keep) {
    if (wire.empty()) return;
    size_t index = pick % wire.size();
    if (to.input(wire[index], now) != kcp::InputError::kNone) __builtin_trap();  // our own packets are valid
    if (!keep) wire.erase(wire.begin() + static_cast<ptrdiff_t>(index));
  };

  while (!in.empty()) {
    const uint8_t op = take(1)[0];
    const uint8_t arg = in.empty() ? 0 : take(1)[0];
    switch (op % 10) {
      case 0: {  // a hostile datagram
        auto datagram = take(arg * 4u);
        hostile.control.input(datagram, now, op & 0x80 ? kcp::PacketOrigin::kRecovered : kcp::PacketOrigin::kWire);
        break;
      }
      case 1:
        hostile.control.send(take(arg * 8u));
        break;
      case 2:
        hostile.control.receive(std::span(scratch).first(arg * 16u));
        break;
      case 3: {  // a writes the next bytes of its stream
        std::vector<uint8_t> chunk(arg * 64u);
        for (size_t i = 0; i < chunk.size(); ++i) chunk[i] = stream_byte(sent + i);
        sent += a.control.send(chunk);
        break;
      }
      case 4: {  // b reads: exactly the stream, in order
        size_t n = b.control.receive(std::span(scratch).first(arg * 16u));
        for (size_t i = 0; i < n; ++i) {
          if (scratch[i] != stream_byte(received + i)) __builtin_trap();
        }
        received += n;
        if (received > sent) __builtin_trap();
        break;
      }
      case 5:
        deliver(to_b, b.control, arg, op & 0x80);
        break;
      case 6:
        deliver(to_a, a.control, arg, op & 0x80);
        break;
      case 7:  // loss
        if (!to_b.empty()) to_b.erase(to_b.begin() + arg % to_b.size());
        if (!to_a.empty() && (op & 0x80)) to_a.erase(to_a.begin() + arg % to_a.size());
        break;
      case 8:  // time passes; op's top bit makes it a jump
        now += op & 0x80 ? arg * 1000u : arg;
        for (Side* side : {&hostile, &a, &b}) side->control.update(now);
        break;
      default:
        for (Side* side : {&hostile, &a, &b}) side->control.flush(now);
        break;
    }
    for (const Side* side : {&hostile, &a, &b}) side->check(now);
  }
  return 0;
}
