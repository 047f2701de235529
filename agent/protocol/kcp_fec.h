#pragma once

// kcp-go forward error correction (xtaci/kcp-go fec.go, sess.go; PROTOCOLS.md §5). After the
// crypt header every packet carries
//
//   SEQID(4, LE) | TYPE(2, LE)            0xf1 data, 0xf2 parity
//   SIZE(2, LE) | KCP segments ...        data shards: SIZE counts itself and the segments
//   Reed-Solomon parity ...               parity shards
//
// SEQIDs count every shard, data and parity, and wrap at the largest multiple of
// data+parity not above 0xffffffff, so a group is data+parity consecutive SEQIDs starting at a
// multiple of data+parity. Parity is klauspost/reedsolomon's default code over GF(2^8) (poly
// 0x11d): a Vandermonde matrix made systematic, applied to the shards from the SIZE field on,
// each zero-padded to the group's longest. Pure code over bytes, fuzzed.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"

namespace strait::agent::kcp {

constexpr size_t kFecHeaderSize = 6;
constexpr size_t kFecSizeFieldSize = 2;
constexpr uint16_t kFecData = 0xf1;
constexpr uint16_t kFecParity = 0xf2;
// kcp-go reads at most mtuLimit (1500) bytes a datagram, so no FEC packet is longer.
constexpr size_t kFecMaxPacket = 1500;
constexpr int kFecMaxShards = 255;

// OK when kcp-go would accept the pair: both ≥ 1 and data + parity ≤ 255.
absl::Status validate_fec_shards(int data_shards, int parity_shards);

// The systematic encoding matrix (rows data..data+parity-1, each `data` bytes) exactly as
// klauspost/reedsolomon builds it; exposed for tests.
std::vector<uint8_t> fec_parity_matrix(int data_shards, int parity_shards);

// One sending side. Owns the group being collected and the parity packets it produces.
class FecEncoder {
 public:
  // The shard counts must pass validate_fec_shards (checked by the caller, a precondition).
  // Parity packets are built with `headroom` free bytes in front (for the crypt header) so the
  // caller can seal them in place.
  FecEncoder(int data_shards, int parity_shards, size_t headroom = 0);

  // `packet` = [6 free bytes][2 free bytes][KCP segments], at most kFecMaxPacket bytes (longer
  // ones are a caller bug: left alone, nothing returned). Writes SEQID/TYPE and SIZE and keeps
  // a copy of the shard. When this packet completes a group, returns its parity packets, each
  // [headroom][6-byte header][parity], as long as the group's longest data packet plus
  // headroom; they stay valid (and may be sealed in place) until the next call. Otherwise
  // returns nothing.
  //
  // kcp-go does not pad or flush a group by time; it drops a group's parity (the SEQIDs are
  // still used up) when the gap between this packet and the previous one is not below the
  // session's RTO, "parity only for continuous data". `now_ms` is any monotonic millisecond
  // clock; pass rto_ms = UINT32_MAX to always produce parity.
  std::span<const std::span<uint8_t>> encode(std::span<uint8_t> packet, int64_t now_ms, uint32_t rto_ms);

  uint32_t next_seqid() const { return next_; }
  // Tests: start the SEQIDs elsewhere (to cross the wrap). Must be at a group boundary.
  void set_next_seqid(uint32_t seqid) { next_ = seqid % wrap_; }

 private:
  uint32_t take_seqid();

  int data_shards_;
  int parity_shards_;
  size_t headroom_;
  uint32_t wrap_;
  uint32_t next_ = 0;
  int collected_ = 0;
  size_t longest_ = 0;  // longest data packet of the group, from the FEC header on
  bool have_previous_ = false;
  int64_t previous_ms_ = 0;
  std::vector<uint8_t> tables_;             // ISA-L multiplication tables, once per configuration
  std::vector<std::vector<uint8_t>> data_;  // copies of the group's data shards from SIZE on
  std::vector<size_t> data_size_;
  std::vector<std::vector<uint8_t>> parity_;
  std::vector<uint8_t*> data_rows_;
  std::vector<uint8_t*> parity_rows_;
  std::vector<std::span<uint8_t>> out_;
};

struct FecDecoderStats {
  uint64_t malformed = 0;   // too short, unknown TYPE, SIZE outside the packet, too long
  uint64_t mismatched = 0;  // TYPE does not fit the SEQID (the peer uses other shard counts)
  uint64_t duplicates = 0;
  uint64_t stale = 0;       // for a group already finished or too far behind the newest finished one
  uint64_t far = 0;         // SEQID too far ahead of the groups in progress
  uint64_t abandoned = 0;   // incomplete groups dropped: too far behind, or over max_groups
  uint64_t recovered = 0;   // data shards rebuilt from parity
  uint64_t unrecoverable = 0;  // a rebuilt shard whose SIZE field makes no sense
};

// One receiving side. Memory is bounded by max_groups × (data+parity) × kFecMaxPacket, taken
// as groups first appear and then reused.
class FecDecoder {
 public:
  static constexpr size_t kDefaultMaxGroups = 8;
  // A SEQID more than this many groups beyond the newest finished group is not kept; after
  // kResync such packets in a row the decoder starts over there (the peer really moved).
  static constexpr uint32_t kMaxGroupsAhead = 1024;
  static constexpr int kResync = 64;
  // An unfinished group is kept while it is fewer than this many groups behind the newest
  // finished one (and a slot is free): a link that reorders finishes groups out of order,
  // and giving up the older ones at the first newer finish, as kcp-go does, hands their
  // losses to KCP's retransmission.
  static constexpr uint32_t kMaxGroupsBehind = 16;

  FecDecoder(int data_shards, int parity_shards, size_t max_groups = kDefaultMaxGroups);

  // One received packet after crypt open, starting at the FEC header. Returns the KCP segment
  // bytes to feed KCP: the packet's own segments when it is a data shard (whatever happens to
  // its group, as kcp-go does: a late or repeated shard still carries data KCP may need), then
  // every data shard this packet made recoverable. Malformed packets return nothing. The
  // spans point into `packet` and into the decoder and stay valid until the next call.
  std::span<const std::span<const uint8_t>> decode(std::span<const uint8_t> packet);

  const FecDecoderStats& stats() const { return stats_; }
  size_t groups_in_progress() const;

 private:
  struct Group {
    bool used = false;
    uint32_t id = 0;  // SEQID / (data+parity)
    int count = 0;
    int data_count = 0;
    size_t longest = 0;
    std::vector<uint8_t> present;
    std::vector<size_t> size;
    std::vector<std::vector<uint8_t>> shard;  // the bytes after the FEC header
  };

  void collect(uint32_t seqid, std::span<const uint8_t> body);
  Group* group_for(uint32_t id);
  void finish(Group& group);
  void recover(Group& group);
  void forget_behind(uint32_t id);
  bool finished(uint32_t id) const { return finished_ids_[id % kMaxGroupsBehind] == id; }

  int data_shards_;
  int total_;
  size_t max_groups_;
  std::vector<uint8_t> matrix_;  // the full (data+parity) × data encoding matrix
  std::vector<Group> groups_;
  bool have_finished_ = false;
  uint32_t last_finished_ = 0;  // newest group completed or recovered
  // The groups finished lately, at id % kMaxGroupsBehind; kNoGroup is no group id (ids stay
  // below 2^32 / (data + parity)). Their late shards are stale, not the start of a new group.
  static constexpr uint32_t kNoGroup = UINT32_MAX;
  std::array<uint32_t, kMaxGroupsBehind> finished_ids_;
  int far_in_a_row_ = 0;
  FecDecoderStats stats_;
  std::vector<std::span<const uint8_t>> out_;
  // Recovery working set, sized once.
  std::vector<uint8_t> square_, inverse_, rows_, tables_;
  std::vector<uint8_t*> sources_, targets_;
  std::vector<int> missing_;
};

}  // namespace strait::agent::kcp
