#include "agent/protocol/kcp.h"

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace strait::agent::kcp {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes raw(std::initializer_list<int> values) { return {values.begin(), values.end()}; }

Bytes header_bytes(const SegmentHeader& header) {
  Bytes out(kSegmentHeaderSize);
  encode_segment_header(header, out.data());
  return out;
}

Bytes pattern(size_t size, uint32_t seed) {
  Bytes out(size);
  std::mt19937 random(seed);
  for (auto& byte : out) byte = static_cast<uint8_t>(random());
  return out;
}

constexpr uint32_t kConv = 0x11223344;

// Two Controls joined by a simulated network with a millisecond clock: packets arrive after
// `delay_ms` plus jitter (which reorders them), some are lost or duplicated, as a seeded PRNG
// decides. `drop` may refuse a packet (direction 0 = a→b).
class Pair {
 public:
  struct Conditions {
    uint32_t delay_ms = 10;
    uint32_t jitter_ms = 0;
    uint32_t loss_percent = 0;
    uint32_t duplicate_percent = 0;
  };

  Pair(const Tuning& tuning_a, const Tuning& tuning_b, Conditions conditions, uint32_t seed = 1)
      : conditions_(conditions),
        random_(seed),
        reserved_a_(tuning_a.reserved),
        reserved_b_(tuning_b.reserved),
        a(kConv, tuning_a, [this](std::span<uint8_t> packet) { carry(0, packet); }),
        b(kConv, tuning_b, [this](std::span<uint8_t> packet) { carry(1, packet); }) {}
  Pair(const Tuning& tuning, Conditions conditions, uint32_t seed = 1) : Pair(tuning, tuning, conditions, seed) {}

  // Runs until both directions delivered everything or `limit_ms` passed; returns whether done.
  bool transfer(const Bytes& a_to_b, const Bytes& b_to_a, uint32_t limit_ms) {
    size_t a_sent = 0, b_sent = 0;
    for (uint32_t end = now + limit_ms; now != end; ++now) {
      a_sent += a.send(std::span(a_to_b).subspan(a_sent));
      b_sent += b.send(std::span(b_to_a).subspan(b_sent));
      step();
      if (reading) {
        read_into(b, received_by_b);
        read_into(a, received_by_a);
      }
      if (received_by_b.size() == a_to_b.size() && received_by_a.size() == b_to_a.size()) return true;
    }
    return false;
  }

  void step() {
    while (!wire_.empty() && wire_.begin()->first <= now) {
      auto [to, packet] = std::move(wire_.begin()->second);
      wire_.erase(wire_.begin());
      Control& target = to == 1 ? b : a;
      size_t reserved = to == 1 ? reserved_a_ : reserved_b_;
      EXPECT_EQ(target.input(std::span(packet).subspan(reserved), now), InputError::kNone);
    }
    if (static_cast<int32_t>(now - a.next_update_ms(now)) >= 0) a.update(now);
    if (static_cast<int32_t>(now - b.next_update_ms(now)) >= 0) b.update(now);
  }

  void advance(uint32_t ms) {
    for (uint32_t end = now + ms; now != end; ++now) step();
  }

  Conditions conditions_;
  std::mt19937 random_;
  size_t reserved_a_, reserved_b_;
  std::multimap<uint32_t, std::pair<int, Bytes>> wire_;
  std::function<bool(int direction, const Bytes&)> drop;
  std::vector<Bytes> sent[2];  // every packet each side output, before loss
  uint32_t now = 1000;
  bool reading = true;
  Bytes received_by_b, received_by_a;
  Control a;
  Control b;

 private:
  void read_into(Control& reader, Bytes& sink) {
    uint8_t buffer[4096];
    while (size_t n = reader.receive(buffer)) sink.insert(sink.end(), buffer, buffer + n);
  }

  void carry(int direction, std::span<uint8_t> packet) {
    Bytes copy(packet.begin(), packet.end());
    sent[direction].push_back(copy);
    if (drop && drop(direction, copy)) return;
    if (random_() % 100 < conditions_.loss_percent) return;
    int copies = random_() % 100 < conditions_.duplicate_percent ? 2 : 1;
    for (int i = 0; i < copies; ++i) {
      uint32_t jitter = conditions_.jitter_ms ? random_() % (conditions_.jitter_ms + 1) : 0;
      wire_.emplace(now + conditions_.delay_ms + jitter, std::pair{1 - direction, copy});
    }
  }
};

TEST(KcpSegment, GoldenPushFromControl) {
  Tuning tuning;
  tuning.reserved = 4;
  tuning.receive_window = 0x0102;
  Bytes packet;
  Control control(0x0A0B0C0D, tuning, [&](std::span<uint8_t> out) { packet.assign(out.begin(), out.end()); });
  const Bytes data = raw({'h', 'i'});
  ASSERT_EQ(control.send(data), 2u);
  control.flush(0x01020304);
  Bytes expected = raw({0, 0, 0, 0,                 // reserved for crypt/FEC, untouched by KCP
                        0x0D, 0x0C, 0x0B, 0x0A,     // conv
                        81, 0,                      // PUSH, frg 0 (stream mode)
                        0x02, 0x01,                 // wnd = free receive window
                        0x04, 0x03, 0x02, 0x01,     // ts = now
                        0, 0, 0, 0,                 // sn
                        0, 0, 0, 0,                 // una
                        2, 0, 0, 0,                 // len
                        'h', 'i'});
  ASSERT_EQ(packet.size(), expected.size());
  EXPECT_TRUE(std::equal(packet.begin() + 4, packet.end(), expected.begin() + 4));
  EXPECT_EQ(header_bytes({1, command::kAck, 2, 0x0304, 5, 6, 7, 8}),
            raw({1, 0, 0, 0, 82, 2, 4, 3, 5, 0, 0, 0, 6, 0, 0, 0, 7, 0, 0, 0, 8, 0, 0, 0}));
}

TEST(KcpSegment, ParsesHandWrittenAckWaskWins) {
  Bytes ack = raw({0x44, 0x33, 0x22, 0x11, 82, 0, 0x20, 0, 10, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0});
  auto header = decode_segment_header(ack);
  ASSERT_TRUE(header);
  EXPECT_EQ(*header, (SegmentHeader{kConv, command::kAck, 0, 32, 10, 0, 1, 0}));
  EXPECT_EQ(conversation_of(ack), kConv);
  EXPECT_FALSE(conversation_of(std::span(ack).first(23)));

  std::vector<Bytes> out;
  Control control(kConv, Tuning{}, [&](std::span<uint8_t> p) { out.emplace_back(p.begin(), p.end()); });
  Bytes data(100, 7);
  control.send(data);
  control.flush(10);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(control.waiting_send(), 1u);
  EXPECT_EQ(control.input(ack, 20), InputError::kNone);  // acks sn 0 (and una 1 covers it)
  EXPECT_EQ(control.waiting_send(), 0u);
  EXPECT_EQ(control.peer_window(), 32u);

  // WINS only carries a window; WASK asks for ours, answered by WINS at the next flush.
  Bytes wins = raw({0x44, 0x33, 0x22, 0x11, 84, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0});
  EXPECT_EQ(control.input(wins, 30), InputError::kNone);
  EXPECT_EQ(control.peer_window(), 0u);
  Bytes wask = raw({0x44, 0x33, 0x22, 0x11, 83, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0});
  EXPECT_EQ(control.input(wask, 40), InputError::kNone);
  out.clear();
  control.flush(50);
  ASSERT_EQ(out.size(), 1u);
  auto reply = decode_segment_header(out[0]);
  EXPECT_EQ(reply->command, command::kWindowTell);
  EXPECT_EQ(reply->window, 1024);
}

TEST(KcpSegment, ValidateNamesTheField) {
  EXPECT_TRUE(validate(Tuning{}).ok());
  auto refused = [](auto change) {
    Tuning tuning;
    change(tuning);
    return std::string(validate(tuning).message());
  };
  EXPECT_NE(refused([](Tuning& t) { t.mtu = 1501; }).find("mtu"), std::string::npos);
  EXPECT_NE(refused([](Tuning& t) { t.reserved = 28, t.mtu = 77; }).find("mtu 77"), std::string::npos);
  EXPECT_NE(refused([](Tuning& t) { t.interval_ms = 5; }).find("interval"), std::string::npos);
  EXPECT_NE(refused([](Tuning& t) { t.send_window = 0; }).find("sndwnd"), std::string::npos);
  EXPECT_NE(refused([](Tuning& t) { t.receive_window = 70000; }).find("rcvwnd"), std::string::npos);
  EXPECT_NE(refused([](Tuning& t) { t.fast_resend = -1; }).find("resend"), std::string::npos);
}

TEST(KcpControl, MegabyteEachWayArrivesIntact) {
  Tuning tuning;
  tuning.reserved = 28;  // aes + FEC, as GOST's default
  Pair pair(tuning, {.delay_ms = 10});
  const Bytes up = pattern(1 << 20, 1), down = pattern(1 << 20, 2);
  ASSERT_TRUE(pair.transfer(up, down, 20000));
  EXPECT_EQ(pair.received_by_b, up);
  EXPECT_EQ(pair.received_by_a, down);
  EXPECT_EQ(pair.a.counters().retransmits, 0u);
  for (const Bytes& packet : pair.sent[0]) EXPECT_LE(packet.size(), 1350u);
}

TEST(KcpControl, LossReorderAndDuplicationStillDeliver) {
  Tuning tuning;
  Pair pair(tuning, {.delay_ms = 20, .jitter_ms = 15, .loss_percent = 5, .duplicate_percent = 3}, 42);
  const Bytes up = pattern(1 << 20, 3), down = pattern(1 << 20, 4);
  ASSERT_TRUE(pair.transfer(up, down, 120000));
  EXPECT_EQ(pair.received_by_b, up);
  EXPECT_EQ(pair.received_by_a, down);
  EXPECT_GT(pair.a.counters().retransmits, 0u);
  EXPECT_GT(pair.b.counters().retransmits, 0u);
  EXPECT_GT(pair.b.counters().duplicate_segments, 0u);
  EXPECT_FALSE(pair.a.dead());
}

TEST(KcpControl, CongestionControlStillDelivers) {
  Tuning tuning;
  tuning.congestion_control = true;
  tuning.nodelay = true;
  Pair pair(tuning, {.delay_ms = 15, .jitter_ms = 5, .loss_percent = 5}, 7);
  const Bytes up = pattern(256 << 10, 5);
  ASSERT_TRUE(pair.transfer(up, {}, 120000));
  EXPECT_EQ(pair.received_by_b, up);
  EXPECT_GT(pair.a.counters().lost_segments + pair.a.counters().fast_retransmits, 0u);
}

TEST(KcpControl, FastRetransmitOnLaterAcks) {
  Tuning tuning;  // fast_resend 2
  std::vector<Bytes> out;
  Control control(kConv, tuning, [&](std::span<uint8_t> p) { out.emplace_back(p.begin(), p.end()); });
  Bytes data(4 * 1326, 1);  // four full segments at mtu 1350
  ASSERT_EQ(control.send(data), data.size());
  control.flush(100);
  ASSERT_EQ(out.size(), 4u);
  out.clear();
  auto ack = [](uint32_t sn, uint32_t ts) {
    return header_bytes({kConv, command::kAck, 0, 1024, ts, sn, 0, 0});
  };
  // An ack echoing a ts older than sn 0's send says nothing about it.
  EXPECT_EQ(control.input(ack(1, 99), 110), InputError::kNone);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(control.input(ack(2, 100), 111), InputError::kNone);
  EXPECT_TRUE(out.empty());  // one later ack: not yet
  EXPECT_EQ(control.input(ack(3, 100), 112), InputError::kNone);
  ASSERT_EQ(out.size(), 1u);  // the second later ack resends sn 0 at once, from input
  auto resent = decode_segment_header(out[0]);
  EXPECT_EQ(resent->command, command::kPush);
  EXPECT_EQ(resent->sequence, 0u);
  EXPECT_EQ(resent->timestamp, 112u);
  EXPECT_EQ(control.counters().fast_retransmits, 1u);
  EXPECT_EQ(control.counters().lost_segments, 0u);
  // Acked segments behind the hole still count until it is filled, as in kcp-go's WaitSnd.
  EXPECT_EQ(control.waiting_send(), 4u);
  EXPECT_EQ(control.input(ack(0, 112), 120), InputError::kNone);
  EXPECT_EQ(control.waiting_send(), 0u);
}

// A fast resend that is lost too goes out again after acks of segments sent after it, not
// after its RTO: on a lossy link with delay the RTO wait stalls the whole window.
TEST(KcpControl, AFastResendLostAgainIsResentAfterLaterAcks) {
  Tuning tuning;  // fast_resend 2
  std::vector<Bytes> out;
  Control control(kConv, tuning, [&](std::span<uint8_t> p) { out.emplace_back(p.begin(), p.end()); });
  Bytes data(4 * 1326, 1);
  ASSERT_EQ(control.send(data), data.size());
  control.flush(100);
  auto ack = [](uint32_t sn, uint32_t ts) {
    return header_bytes({kConv, command::kAck, 0, 1024, ts, sn, 0, 0});
  };
  control.input(ack(1, 100), 101);
  control.input(ack(2, 100), 102);
  ASSERT_EQ(control.counters().fast_retransmits, 1u);  // sn 0 resent at 102
  ASSERT_EQ(control.send(Bytes(2 * 1326, 2)), 2 * 1326u);
  control.flush(130);  // sn 4 and 5 sent at 130
  out.clear();
  control.input(ack(3, 100), 131);
  EXPECT_TRUE(out.empty()) << "an ack of a segment sent before the resend says nothing about it";
  control.input(ack(4, 130), 132);
  EXPECT_TRUE(out.empty());
  control.input(ack(5, 130), 133);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(decode_segment_header(out[0])->sequence, 0u);
  EXPECT_EQ(control.counters().fast_retransmits, 2u);
  EXPECT_EQ(control.counters().lost_segments, 0u) << "well before any RTO";
  // A receiver that keeps dropping it while acking the rest is alive: no dead link.
  uint32_t now = 140;
  uint32_t sn = 6;
  for (int round = 0; round < 2 * static_cast<int>(kDeadLink); ++round, now += 10, sn += 2) {
    ASSERT_EQ(control.send(Bytes(2 * 1326, 3)), 2 * 1326u);
    control.flush(now);
    control.input(ack(sn, now), now + 1);
    control.input(ack(sn + 1, now), now + 2);
  }
  EXPECT_GT(control.counters().fast_retransmits, kDeadLink);
  EXPECT_FALSE(control.dead());
}

size_t count_commands(const std::vector<Bytes>& packets, uint8_t command) {
  size_t count = 0;
  for (const Bytes& packet : packets) {
    for (size_t at = 0; at + kSegmentHeaderSize <= packet.size();) {
      auto header = decode_segment_header(std::span(packet).subspan(at));
      count += header->command == command;
      at += kSegmentHeaderSize + header->length;
    }
  }
  return count;
}

TEST(KcpControl, WindowProbeWhenPeerWindowIsZero) {
  Tuning sender, receiver;
  receiver.receive_window = 8;
  Pair pair(sender, receiver, {.delay_ms = 10});
  pair.reading = false;
  const Bytes up = pattern(64 * 1326, 6);
  EXPECT_FALSE(pair.transfer(up, {}, 2000));
  EXPECT_EQ(pair.a.peer_window(), 0u);
  EXPECT_EQ(pair.b.readable_bytes(), 8u * 1326);
  EXPECT_GE(count_commands(pair.sent[0], command::kWindowAsk), 1u);  // the sender asked
  EXPECT_GE(count_commands(pair.sent[1], command::kWindowTell), 1u);  // and was told 0
  // The reader resumes; its first announcement of the open window is lost.
  bool dropped = false;
  pair.drop = [&](int direction, const Bytes& packet) {
    if (direction == 1 && !dropped && count_commands({packet}, command::kWindowTell) > 0) return dropped = true;
    return false;
  };
  pair.reading = true;
  ASSERT_TRUE(pair.transfer(up, {}, 20000));
  EXPECT_TRUE(dropped);
  EXPECT_EQ(pair.received_by_b, up);
}

TEST(KcpControl, SequenceNumbersWrapAround) {
  Tuning tuning;
  Pair pair(tuning, {.delay_ms = 10, .jitter_ms = 10, .loss_percent = 5}, 9);
  pair.a.start_sequence_at(0xFFFFFE00);
  pair.b.start_sequence_at(0xFFFFFE00);
  const Bytes up = pattern(1 << 20, 7), down = pattern(300 << 10, 8);  // ~800 and ~230 segments
  ASSERT_TRUE(pair.transfer(up, down, 120000));
  EXPECT_EQ(pair.received_by_b, up);
  EXPECT_EQ(pair.received_by_a, down);
}

TEST(KcpControl, DeadAfterLinkDrops) {
  Tuning tuning;
  Pair pair(tuning, {.delay_ms = 10});
  const Bytes up = pattern(10000, 9);
  ASSERT_TRUE(pair.transfer(up, {}, 1000));
  pair.drop = [](int, const Bytes&) { return true; };
  EXPECT_EQ(pair.a.send(pattern(10000, 10)), 10000u);
  pair.advance(100);
  EXPECT_FALSE(pair.a.dead());
  uint32_t waited = 0;
  while (!pair.a.dead() && waited < 600000) pair.advance(100), waited += 100;
  EXPECT_TRUE(pair.a.dead());
  EXPECT_GE(pair.a.counters().lost_segments, kDeadLink - 1);
}

TEST(KcpControl, SendAppliesBackpressure) {
  Tuning tuning;
  tuning.send_window = 4;
  Control control(kConv, tuning, [](std::span<uint8_t>) {});
  Bytes big(100000, 1);
  EXPECT_EQ(control.send(big), 8u * 1326);
  EXPECT_FALSE(control.writable());
  EXPECT_EQ(control.send(big), 0u);
  EXPECT_EQ(control.waiting_send(), 8u);
}

TEST(KcpControl, NextUpdateIsIntervalWhenBusyAndFarWhenIdle) {
  Tuning tuning;
  Pair pair(tuning, {.delay_ms = 5});
  EXPECT_EQ(pair.a.next_update_ms(0), 0u);  // never updated: now
  ASSERT_TRUE(pair.transfer(pattern(5000, 11), {}, 1000));
  pair.advance(200);
  EXPECT_EQ(pair.a.next_update_ms(pair.now), pair.now + 5000);
  pair.a.send(pattern(10, 12));
  EXPECT_LE(pair.a.next_update_ms(pair.now), pair.now + tuning.interval_ms);
}

// ---- hostile input ----

Bytes push(uint32_t sn, size_t length, uint32_t conv = kConv) {
  Bytes out = header_bytes({conv, command::kPush, 0, 1024, 0, sn, 0, static_cast<uint32_t>(length)});
  out.resize(out.size() + length, 0xAB);
  return out;
}

TEST(KcpSegment, RefusesMalformedInput) {
  Control control(kConv, Tuning{}, [](std::span<uint8_t>) {});
  Bytes segment = push(0, 10);
  EXPECT_EQ(control.input(std::span(segment).first(23), 0), InputError::kTruncated);
  EXPECT_EQ(control.input({}, 0), InputError::kTruncated);
  EXPECT_EQ(control.input(std::span(segment).first(30), 0), InputError::kBadLength);
  EXPECT_EQ(control.input(push(0, 10, kConv + 1), 0), InputError::kWrongConversation);
  Bytes oversized = header_bytes({kConv, command::kPush, 0, 1, 0, 0, 0, kMaxSegmentData + 1});
  oversized.resize(oversized.size() + kMaxSegmentData + 1);
  EXPECT_EQ(control.input(oversized, 0), InputError::kBadLength);
  Bytes unknown = push(0, 0);
  unknown[4] = 85;
  EXPECT_EQ(control.input(unknown, 0), InputError::kUnknownCommand);
  EXPECT_EQ(control.readable_bytes(), 0u);
  EXPECT_EQ(control.counters().input_errors, 6u);

  // The segments before a bad one stay applied (ikcp, kcp-go).
  Bytes two = push(0, 10);
  two.insert(two.end(), unknown.begin(), unknown.end());
  EXPECT_EQ(control.input(two, 0), InputError::kUnknownCommand);
  EXPECT_EQ(control.readable_bytes(), 10u);
  // Fewer than 24 trailing bytes are ignored, as kcp-go does.
  Bytes trailing = push(1, 5);
  trailing.resize(trailing.size() + 7);
  EXPECT_EQ(control.input(trailing, 0), InputError::kNone);
  EXPECT_EQ(control.readable_bytes(), 15u);
}

TEST(KcpSegment, HugeSequenceAndUnaValuesAreHarmless) {
  std::vector<Bytes> out;
  Control control(kConv, Tuning{}, [&](std::span<uint8_t> p) { out.emplace_back(p.begin(), p.end()); });
  control.send(Bytes(3000, 1));
  control.flush(0);
  ASSERT_EQ(control.waiting_send(), 3u);
  for (uint32_t value : {0x7FFFFFFFu, 0x80000000u, 0xFFFFFFFFu, 2000u}) {
    Bytes ack = header_bytes({kConv, command::kAck, 0, 1024, value, value, 0x80000000u, 0});
    EXPECT_EQ(control.input(ack, 5), InputError::kNone);
    EXPECT_EQ(control.input(push(value, 4), 5), InputError::kNone);
  }
  EXPECT_EQ(control.waiting_send(), 3u);  // nothing acked by numbers we never sent
  EXPECT_EQ(control.readable_bytes(), 0u);
  // A una past everything we sent covers only what we sent.
  Bytes una = header_bytes({kConv, command::kWindowTell, 0, 1024, 0, 0, 1000, 0});
  EXPECT_EQ(control.input(una, 6), InputError::kNone);
  EXPECT_EQ(control.waiting_send(), 0u);
  control.send(Bytes(10, 2));
  out.clear();
  control.flush(7);
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(decode_segment_header(out.back())->sequence, 3u);
}

TEST(KcpSegment, ReceiveWindowFloodStaysBounded) {
  Tuning tuning;
  tuning.receive_window = 128;
  size_t output_bytes = 0;
  Control control(kConv, tuning, [&](std::span<uint8_t> p) { output_bytes += p.size(); });
  std::mt19937 random(5);
  Bytes datagram;
  for (uint32_t i = 0; i < 20000; ++i) {
    uint32_t sn = i % 3 == 0 ? random() : 1 + i % 1000;  // far away, or just ahead of a gap at 0
    Bytes segment = push(sn, 1000);
    datagram.insert(datagram.end(), segment.begin(), segment.end());
    if (datagram.size() > 60000) {
      EXPECT_EQ(control.input(datagram, i), InputError::kNone);
      datagram.clear();
      EXPECT_LE(control.buffered_receive_segments(), 2u * tuning.receive_window);
    }
  }
  EXPECT_EQ(control.readable_bytes(), 0u);  // sn 0 never came
  EXPECT_LE(control.counters().segments_received, tuning.receive_window);
  EXPECT_GT(output_bytes, 0u);              // acks went out as they piled up
  EXPECT_EQ(control.input(push(0, 1000), 30000), InputError::kNone);
  EXPECT_EQ(control.readable_bytes(), 128u * 1000);  // the window's worth, the rest waits
  EXPECT_LE(control.buffered_receive_segments(), 2u * tuning.receive_window);
}

}  // namespace
}  // namespace strait::agent::kcp
