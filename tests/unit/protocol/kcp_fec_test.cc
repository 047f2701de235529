#include "agent/protocol/kcp_fec.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"

namespace strait::agent::kcp {
namespace {

using Packet = std::vector<uint8_t>;

Packet unhex(std::string_view text) {
  std::string bytes = absl::HexStringToBytes(absl::string_view(text.data(), text.size()));
  return {bytes.begin(), bytes.end()};
}
Packet as_packet(std::span<const uint8_t> bytes) { return {bytes.begin(), bytes.end()}; }

// One whole FEC group (SEQIDs 0..12) that kcptun-client sent with --crypt none --nocomp
// --datashard 10 --parityshard 3, crypt header removed: data shards of 34, 50 and 26 bytes
// (KCP PUSH and ACK segments) and kcp-go's three parity shards, as long as the longest.
constexpr const char* kKcptunGroup[] = {
    "00000000f1002200f69bc9af51000002e80300000000000000000000080000000100000003000000",
    "01000000f1003200f69bc9af51000002ed030000010000000000000018000000010210000300000068656c6c6f206b637020736d616c6c21",
    "02000000f1001a00f69bc9af5200ff01eb030000000000000100000000000000",
    "03000000f1003200f69bc9af51000002f3030000020000000100000018000000010210000300000068656c6c6f206b637020736d616c6c21",
    "04000000f1001a00f69bc9af5200ff01f1030000010000000200000000000000",
    "05000000f1003200f69bc9af51000002f8030000030000000200000018000000010210000300000068656c6c6f206b637020736d616c6c21",
    "06000000f1001a00f69bc9af5200ff01f6030000020000000300000000000000",
    "07000000f1003200f69bc9af51000002fe030000040000000300000018000000010210000300000068656c6c6f206b637020736d616c6c21",
    "08000000f1001a00f69bc9af5200ff01fc030000030000000400000000000000",
    "09000000f1003200f69bc9af5100000204040000050000000400000018000000010210000300000068656c6c6f206b637020736d616c6c21",
    "0a000000f2007300f69bc9afcc00629fe10d000011000000050000007c000000810000009e00000000000000000000000000000000000000",
    "0b000000f2005400f69bc9aff60011a5910a00007600000005000000dc00000097021000a400000068656c6c6f206b637020736d616c6c21",
    "0c000000f200ca00f69bc9af8e002cdd271f00002b0000000600000091000000bf000000dc00000000000000000000000000000000000000",
};

// Data packets: [6 free][2 free][segments of `size` bytes].
Packet data_packet(std::mt19937& random, size_t size) {
  Packet packet(kFecHeaderSize + kFecSizeFieldSize + size);
  for (size_t i = kFecHeaderSize + kFecSizeFieldSize; i < packet.size(); ++i) packet[i] = static_cast<uint8_t>(random());
  return packet;
}

std::vector<Packet> payloads_of(std::span<const std::span<const uint8_t>> spans) {
  std::vector<Packet> out;
  for (auto s : spans) out.push_back(as_packet(s));
  return out;
}

TEST(KcpFecGolden, ParityEqualsKcptunsAndRebuildsLostShards) {
  std::vector<Packet> group;
  for (const char* hex : kKcptunGroup) group.push_back(unhex(hex));
  FecEncoder encoder(10, 3);
  std::span<const std::span<uint8_t>> parity;
  for (int i = 0; i < 10; ++i) {
    Packet copy = group[i];
    parity = encoder.encode(copy, i, UINT32_MAX);
    EXPECT_EQ(copy, group[i]) << "SEQID, TYPE and SIZE as kcp-go wrote them, shard " << i;
    if (i < 9) {
      EXPECT_TRUE(parity.empty());
    }
  }
  ASSERT_EQ(parity.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(as_packet(parity[i]), group[10 + i]) << "parity " << i;
  EXPECT_EQ(encoder.next_seqid(), 13u);

  // Every way of losing up to three shards: all data comes back, each payload once.
  for (int mask = 0; mask < (1 << 13); ++mask) {
    if (__builtin_popcount(mask) > 3) continue;
    FecDecoder decoder(10, 3);
    std::vector<Packet> received;
    for (int i = 0; i < 13; ++i) {
      if (mask & (1 << i)) continue;
      for (auto& p : payloads_of(decoder.decode(group[i]))) received.push_back(p);
    }
    std::vector<Packet> expected;
    for (int i = 0; i < 10; ++i) {
      size_t size = group[i][6] | group[i][7] << 8;
      expected.emplace_back(group[i].begin() + 8, group[i].begin() + 6 + static_cast<long>(size));
    }
    std::sort(received.begin(), received.end());
    std::sort(expected.begin(), expected.end());
    ASSERT_EQ(received, expected) << "lost mask " << mask;
  }
}

TEST(KcpFecRoundTrip, AnyLossUpToParityRecoversForManyShapes) {
  std::mt19937 random(11);
  struct Shape {
    int data, parity;
  } shapes[] = {{1, 1}, {2, 1}, {10, 3}, {3, 7}, {20, 10}, {100, 155}};
  for (auto shape : shapes) {
    SCOPED_TRACE(std::to_string(shape.data) + "/" + std::to_string(shape.parity));
    FecEncoder encoder(shape.data, shape.parity);
    FecDecoder decoder(shape.data, shape.parity);
    for (int round = 0; round < 20; ++round) {
      std::vector<Packet> sent, payloads;
      for (int i = 0; i < shape.data; ++i) {
        Packet packet = data_packet(random, random() % 1400);
        auto parity = encoder.encode(packet, 0, UINT32_MAX);
        payloads.emplace_back(packet.begin() + 8, packet.end());
        sent.push_back(packet);
        for (auto p : parity) sent.push_back(as_packet(p));
      }
      ASSERT_EQ(sent.size(), static_cast<size_t>(shape.data + shape.parity));
      // Lose `parity` random shards (all of them parity, all data, or a mix), reorder the rest.
      std::vector<int> order(sent.size());
      for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
      std::shuffle(order.begin(), order.end(), random);
      int lost = static_cast<int>(random() % (shape.parity + 1));
      std::vector<Packet> received;
      for (size_t i = static_cast<size_t>(lost); i < order.size(); ++i) {
        for (auto& p : payloads_of(decoder.decode(sent[order[i]]))) received.push_back(p);
      }
      // A data shard that arrives after parity already rebuilt it reaches KCP twice (as in
      // kcp-go; KCP drops the repeat by its sequence number).
      std::sort(received.begin(), received.end());
      received.erase(std::unique(received.begin(), received.end()), received.end());
      std::sort(payloads.begin(), payloads.end());
      payloads.erase(std::unique(payloads.begin(), payloads.end()), payloads.end());
      ASSERT_EQ(received, payloads) << "round " << round;
    }
    EXPECT_EQ(decoder.stats().malformed + decoder.stats().mismatched + decoder.stats().unrecoverable, 0u);
    EXPECT_EQ(decoder.groups_in_progress(), 0u);
  }
}

// A link that delays some datagrams behind later ones finishes groups out of order: an older
// group still recovers its loss after a newer one finished, and its shards that come after
// it finished are stale rather than the start of another group.
TEST(KcpFecRoundTrip, AGroupOvertakenByANewerOneStillRecovers) {
  std::mt19937 random(5);
  FecEncoder encoder(10, 3);
  FecDecoder decoder(10, 3);
  auto group = [&](std::vector<Packet>& payloads) {
    std::vector<Packet> sent;
    for (int i = 0; i < 10; ++i) {
      Packet packet = data_packet(random, 100 + random() % 1000);
      auto parity = encoder.encode(packet, 0, UINT32_MAX);
      payloads.emplace_back(packet.begin() + 8, packet.end());
      sent.push_back(packet);
      for (auto p : parity) sent.push_back(as_packet(p));
    }
    return sent;
  };
  std::vector<Packet> older_payloads, newer_payloads;
  std::vector<Packet> older = group(older_payloads);
  std::vector<Packet> newer = group(newer_payloads);
  std::vector<Packet> received;
  auto deliver = [&](const Packet& packet) {
    for (auto& p : payloads_of(decoder.decode(packet))) received.push_back(p);
  };
  // The older group loses data shard 3; its shards 8..12 arrive after the whole newer group.
  for (int i = 0; i < 8; ++i) {
    if (i != 3) deliver(older[i]);
  }
  for (const Packet& packet : newer) deliver(packet);
  EXPECT_EQ(decoder.groups_in_progress(), 1u);
  for (int i = 8; i < 13; ++i) deliver(older[i]);

  EXPECT_EQ(decoder.stats().recovered, 1u);
  EXPECT_EQ(decoder.stats().abandoned, 0u);
  EXPECT_EQ(decoder.stats().stale, 5u) << "each group's shards after its tenth";
  EXPECT_EQ(decoder.groups_in_progress(), 0u);
  std::sort(received.begin(), received.end());
  std::vector<Packet> sent_payloads = older_payloads;
  sent_payloads.insert(sent_payloads.end(), newer_payloads.begin(), newer_payloads.end());
  std::sort(sent_payloads.begin(), sent_payloads.end());
  EXPECT_EQ(received, sent_payloads);
}

TEST(KcpFecRoundTrip, SeqidWrapsAtAMultipleOfTheGroup) {
  std::mt19937 random(3);
  FecEncoder encoder(10, 3);
  FecDecoder decoder(10, 3);
  const uint32_t wrap = 0xffffffffu / 13 * 13;
  encoder.set_next_seqid(wrap - 26);
  uint32_t expected_seqid = wrap - 26;
  for (int group = 0; group < 5; ++group) {
    std::vector<Packet> sent;
    for (int i = 0; i < 10; ++i) {
      Packet packet = data_packet(random, 100 + random() % 200);
      auto parity = encoder.encode(packet, 0, UINT32_MAX);
      EXPECT_EQ(packet[0] | packet[1] << 8 | packet[2] << 16 | static_cast<uint32_t>(packet[3]) << 24, expected_seqid);
      expected_seqid = (expected_seqid + 1) % wrap;
      sent.push_back(packet);
      for (auto p : parity) {
        sent.push_back(as_packet(p));
        expected_seqid = (expected_seqid + 1) % wrap;
      }
    }
    // Lose data shards 0, 1 and 2: only parity can give them back, also after the wrap.
    size_t recovered = 0;
    for (size_t i = 3; i < sent.size(); ++i) recovered += decoder.decode(sent[i]).size();
    EXPECT_EQ(recovered, 7u + 3u) << "group " << group;
  }
  EXPECT_EQ(decoder.stats().recovered, 15u);
  EXPECT_EQ(decoder.stats().stale, 0u);
}

TEST(KcpFecEncoder, DropsParityAfterAGapAsKcpGoDoes) {
  std::mt19937 random(5);
  FecEncoder encoder(3, 2);
  for (int i = 0; i < 3; ++i) {
    Packet packet = data_packet(random, 50);
    // The last shard comes 500 ms after the previous one, with an RTO of 200 ms.
    auto parity = encoder.encode(packet, i == 2 ? 600 : 100, 200);
    EXPECT_TRUE(parity.empty());
  }
  EXPECT_EQ(encoder.next_seqid(), 5u) << "the group's parity SEQIDs are used up anyway";
  for (int i = 0; i < 3; ++i) {
    Packet packet = data_packet(random, 50);
    EXPECT_EQ(encoder.encode(packet, 700 + i, 200).size(), i == 2 ? 2u : 0u);
  }
  Packet too_short(7), too_long(kFecMaxPacket + 1);
  EXPECT_TRUE(encoder.encode(too_short, 800, 200).empty());
  EXPECT_TRUE(encoder.encode(too_long, 800, 200).empty());
  EXPECT_EQ(encoder.next_seqid(), 10u);
}

TEST(KcpFecEncoder, LeavesHeadroomForTheCryptHeader) {
  std::mt19937 random(9);
  FecEncoder encoder(2, 1, 20);
  Packet a = data_packet(random, 10), b = data_packet(random, 30);
  encoder.encode(a, 0, UINT32_MAX);
  auto parity = encoder.encode(b, 0, UINT32_MAX);
  ASSERT_EQ(parity.size(), 1u);
  EXPECT_EQ(parity[0].size(), 20 + b.size());
  EXPECT_EQ(parity[0][20], 2);  // SEQID 2
  EXPECT_EQ(parity[0][24], 0xf2);
}

TEST(KcpFecDecoder, RefusesMalformedPackets) {
  FecDecoder decoder(10, 3);
  EXPECT_TRUE(decoder.decode(unhex("00000000f100")).empty());          // header only
  EXPECT_TRUE(decoder.decode(unhex("00000000f10001")).empty());        // no SIZE
  EXPECT_TRUE(decoder.decode(unhex("00000000f3000400aabb")).empty());  // unknown TYPE
  EXPECT_TRUE(decoder.decode(unhex("00000000f1000500aabb")).empty());  // SIZE beyond the packet
  EXPECT_TRUE(decoder.decode(unhex("00000000f1000100aabb")).empty());  // SIZE below 2
  EXPECT_TRUE(decoder.decode(Packet(kFecMaxPacket + 1, 0xf1)).empty());
  EXPECT_EQ(decoder.stats().malformed, 6u);
  // A well-formed data shard always yields its segments, cut at SIZE.
  Packet valid = unhex("00000000f1000400aabbccdd");  // the returned spans point into it
  auto out = decoder.decode(valid);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(as_packet(out[0]), unhex("aabb"));
  // TYPE that does not fit the SEQID (the peer runs other shard counts): data still passes.
  EXPECT_EQ(decoder.decode(unhex("0b000000f1000400aabb")).size(), 1u);
  EXPECT_TRUE(decoder.decode(unhex("01000000f200aabb")).empty());
  EXPECT_EQ(decoder.stats().mismatched, 2u);
}

TEST(KcpFecDecoder, DuplicatesStaleAndFarOffSeqidsStayBounded) {
  std::mt19937 random(13);
  FecDecoder decoder(10, 3, 4);
  Packet shard = unhex("00000000f1000400aabb");
  EXPECT_EQ(decoder.decode(shard).size(), 1u);
  EXPECT_EQ(decoder.decode(shard).size(), 1u) << "a repeated data shard still reaches KCP";
  EXPECT_EQ(decoder.stats().duplicates, 1u);
  // Garbage SEQIDs everywhere: never more than max_groups groups held.
  for (int i = 0; i < 20000; ++i) {
    Packet packet = data_packet(random, random() % 64);
    uint32_t seqid = static_cast<uint32_t>(random());
    bool data = seqid % 13 < 10;
    packet[0] = static_cast<uint8_t>(seqid);
    packet[1] = static_cast<uint8_t>(seqid >> 8);
    packet[2] = static_cast<uint8_t>(seqid >> 16);
    packet[3] = static_cast<uint8_t>(seqid >> 24);
    packet[4] = data ? 0xf1 : 0xf2;
    size_t size = packet.size() - 6;
    packet[6] = static_cast<uint8_t>(size);
    packet[7] = static_cast<uint8_t>(size >> 8);
    decoder.decode(packet);
    ASSERT_LE(decoder.groups_in_progress(), 4u);
  }
  EXPECT_GT(decoder.stats().abandoned, 0u);

  // After a finished group, an older one is stale and one far ahead is not kept.
  FecDecoder ordered(2, 1);
  FecEncoder encoder(2, 1);
  encoder.set_next_seqid(300);
  for (int i = 0; i < 2; ++i) {
    Packet packet = data_packet(random, 20);
    encoder.encode(packet, 0, UINT32_MAX);
    ordered.decode(packet);
  }
  EXPECT_EQ(ordered.decode(unhex("03000000f1000400aabb")).size(), 1u);
  EXPECT_EQ(ordered.stats().stale, 1u);
  EXPECT_EQ(ordered.decode(unhex("00000010f1000400aabb")).size(), 1u);
  EXPECT_EQ(ordered.stats().far, 1u);
  EXPECT_EQ(ordered.groups_in_progress(), 0u);
}

// Not a test of correctness: prints the encoder's speed for the report.
// Many groups in a row: three parity packets for every ten data packets, with no group lost
// to the SEQID arithmetic along the way.
TEST(KcpFecEncoder, ThreeParityPacketsForEveryTenOverManyGroups) {
  std::mt19937 random(1);
  FecEncoder encoder(10, 3);
  Packet packet = data_packet(random, 1342);
  constexpr int kPackets = 20000;
  size_t parity = 0;
  for (int i = 0; i < kPackets; ++i) parity += encoder.encode(packet, 0, UINT32_MAX).size();
  EXPECT_EQ(parity, kPackets / 10 * 3u);
}

}  // namespace
}  // namespace strait::agent::kcp
