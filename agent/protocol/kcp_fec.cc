#include "agent/protocol/kcp_fec.h"

#include <isa-l.h>

#include <algorithm>
#include <cstring>
#include <string>

namespace strait::agent::kcp {
namespace {

constexpr size_t kMaxShardBytes = kFecMaxPacket - kFecHeaderSize;

uint16_t load_le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }
uint32_t load_le32(const uint8_t* p) { return p[0] | p[1] << 8 | p[2] << 16 | static_cast<uint32_t>(p[3]) << 24; }
void store_le16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}
void store_le32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void write_header(uint8_t* p, uint32_t seqid, uint16_t type) {
  store_le32(p, seqid);
  store_le16(p + 4, type);
}

// kcp-go's paws: SEQIDs run modulo the largest multiple of the group size not above
// 0xffffffff, so every group keeps its shards contiguous across the wrap.
uint32_t seqid_wrap(int total) { return 0xffffffffu / static_cast<uint32_t>(total) * static_cast<uint32_t>(total); }

// klauspost/reedsolomon buildMatrix: Vandermonde rows r = (r^0, r^1, ..., r^(data-1)) with
// 0^0 = 1, multiplied by the inverse of its top data×data square so the top becomes the
// identity. Returns all (data+parity) rows.
std::vector<uint8_t> full_matrix(int data, int parity) {
  int total = data + parity;
  std::vector<uint8_t> vandermonde(static_cast<size_t>(total * data));
  for (int r = 0; r < total; ++r) {
    uint8_t power = 1;
    for (int c = 0; c < data; ++c) {
      vandermonde[r * data + c] = power;
      power = gf_mul(power, static_cast<uint8_t>(r));
    }
  }
  std::vector<uint8_t> top(vandermonde.begin(), vandermonde.begin() + data * data);
  std::vector<uint8_t> top_inverse(top.size());
  // A Vandermonde square over distinct points is always invertible.
  gf_invert_matrix(top.data(), top_inverse.data(), data);
  std::vector<uint8_t> result(vandermonde.size());
  for (int r = 0; r < total; ++r) {
    for (int c = 0; c < data; ++c) {
      uint8_t sum = 0;
      for (int i = 0; i < data; ++i) sum ^= gf_mul(vandermonde[r * data + i], top_inverse[i * data + c]);
      result[r * data + c] = sum;
    }
  }
  return result;
}

}  // namespace

absl::Status validate_fec_shards(int data_shards, int parity_shards) {
  if (data_shards < 1 || parity_shards < 1 || data_shards + parity_shards > kFecMaxShards) {
    return absl::InvalidArgumentError("kcp: FEC needs datashard ≥ 1, parityshard ≥ 1 and their sum ≤ 255, got " +
                                      std::to_string(data_shards) + "/" + std::to_string(parity_shards));
  }
  return absl::OkStatus();
}

std::vector<uint8_t> fec_parity_matrix(int data_shards, int parity_shards) {
  auto matrix = full_matrix(data_shards, parity_shards);
  matrix.erase(matrix.begin(), matrix.begin() + data_shards * data_shards);
  return matrix;
}

FecEncoder::FecEncoder(int data_shards, int parity_shards, size_t headroom)
    : data_shards_(data_shards),
      parity_shards_(parity_shards),
      headroom_(headroom),
      wrap_(seqid_wrap(data_shards + parity_shards)),
      tables_(32 * static_cast<size_t>(data_shards * parity_shards)),
      data_(data_shards, std::vector<uint8_t>(kMaxShardBytes)),
      data_size_(data_shards),
      parity_(parity_shards, std::vector<uint8_t>(headroom + kFecMaxPacket)),
      data_rows_(data_shards),
      parity_rows_(parity_shards),
      out_(parity_shards) {
  auto matrix = fec_parity_matrix(data_shards, parity_shards);
  ec_init_tables(data_shards, parity_shards, matrix.data(), tables_.data());
  for (int i = 0; i < data_shards; ++i) data_rows_[i] = data_[i].data();
  for (int i = 0; i < parity_shards; ++i) parity_rows_[i] = parity_[i].data() + headroom + kFecHeaderSize;
}

uint32_t FecEncoder::take_seqid() {
  uint32_t seqid = next_;
  next_ = (next_ + 1) % wrap_;
  return seqid;
}

std::span<const std::span<uint8_t>> FecEncoder::encode(std::span<uint8_t> packet, int64_t now_ms, uint32_t rto_ms) {
  if (packet.size() < kFecHeaderSize + kFecSizeFieldSize || packet.size() > kFecMaxPacket) return {};
  write_header(packet.data(), take_seqid(), kFecData);
  size_t shard_size = packet.size() - kFecHeaderSize;
  store_le16(packet.data() + kFecHeaderSize, static_cast<uint16_t>(shard_size));
  std::memcpy(data_[collected_].data(), packet.data() + kFecHeaderSize, shard_size);
  data_size_[collected_] = shard_size;
  longest_ = std::max(longest_, packet.size());
  ++collected_;

  bool continuous = rto_ms == UINT32_MAX || (have_previous_ && now_ms - previous_ms_ < static_cast<int64_t>(rto_ms));
  have_previous_ = true;
  previous_ms_ = now_ms;
  if (collected_ < data_shards_) return {};

  size_t length = longest_ - kFecHeaderSize;
  size_t packet_size = longest_;
  collected_ = 0;
  longest_ = 0;
  if (!continuous) {
    next_ = static_cast<uint32_t>((uint64_t{next_} + static_cast<uint32_t>(parity_shards_)) % wrap_);
    return {};
  }
  for (int i = 0; i < data_shards_; ++i) std::memset(data_[i].data() + data_size_[i], 0, length - data_size_[i]);
  ec_encode_data(static_cast<int>(length), data_shards_, parity_shards_, tables_.data(), data_rows_.data(),
                 parity_rows_.data());
  for (int i = 0; i < parity_shards_; ++i) {
    write_header(parity_[i].data() + headroom_, take_seqid(), kFecParity);
    out_[i] = std::span<uint8_t>(parity_[i].data(), headroom_ + packet_size);
  }
  return out_;
}

FecDecoder::FecDecoder(int data_shards, int parity_shards, size_t max_groups)
    : data_shards_(data_shards),
      total_(data_shards + parity_shards),
      max_groups_(std::max<size_t>(max_groups, 1)),
      matrix_(full_matrix(data_shards, parity_shards)),
      square_(static_cast<size_t>(data_shards * data_shards)),
      inverse_(square_.size()),
      rows_(static_cast<size_t>(data_shards * data_shards)),
      tables_(32 * static_cast<size_t>(data_shards * data_shards)),
      sources_(data_shards),
      targets_(data_shards) {
  groups_.reserve(max_groups_);
  finished_ids_.fill(kNoGroup);
  out_.reserve(static_cast<size_t>(data_shards) + 1);
  missing_.reserve(data_shards);
}

size_t FecDecoder::groups_in_progress() const {
  return static_cast<size_t>(std::count_if(groups_.begin(), groups_.end(), [](const Group& g) { return g.used; }));
}

std::span<const std::span<const uint8_t>> FecDecoder::decode(std::span<const uint8_t> packet) {
  out_.clear();
  // kcp-go ignores anything not longer than the header; nothing longer than its read buffer
  // can come from it.
  if (packet.size() <= kFecHeaderSize || packet.size() > kFecMaxPacket) {
    ++stats_.malformed;
    return {};
  }
  uint32_t seqid = load_le32(packet.data());
  uint16_t type = load_le16(packet.data() + 4);
  if (type != kFecData && type != kFecParity) {
    ++stats_.malformed;
    return {};
  }
  if (type == kFecData) {
    if (packet.size() < kFecHeaderSize + kFecSizeFieldSize) {
      ++stats_.malformed;
      return {};
    }
    size_t size = load_le16(packet.data() + kFecHeaderSize);
    if (size < kFecSizeFieldSize || size > packet.size() - kFecHeaderSize) {
      ++stats_.malformed;
      return {};
    }
    out_.push_back(packet.subspan(kFecHeaderSize + kFecSizeFieldSize, size - kFecSizeFieldSize));
  }
  bool data_slot = static_cast<int>(seqid % static_cast<uint32_t>(total_)) < data_shards_;
  if (data_slot != (type == kFecData)) {
    // kcp-go would try to guess the peer's shard counts here; we keep ours and only pass data.
    ++stats_.mismatched;
    return out_;
  }
  collect(seqid, packet.subspan(kFecHeaderSize));
  return out_;
}

namespace {
// Signed distance a - b between group ids, which run modulo `count` (not 2^32: kcp-go's
// plain 32-bit difference would call every group after the SEQID wrap stale).
int64_t group_distance(uint32_t a, uint32_t b, uint32_t count) {
  int64_t d = (int64_t{a} - int64_t{b}) % count;
  if (d < 0) d += count;
  if (d > count / 2) d -= count;
  return d;
}
}  // namespace

void FecDecoder::collect(uint32_t seqid, std::span<const uint8_t> body) {
  uint32_t id = seqid / static_cast<uint32_t>(total_);
  size_t index = seqid % static_cast<uint32_t>(total_);
  uint32_t group_count = seqid_wrap(total_) / static_cast<uint32_t>(total_);
  if (seqid >= seqid_wrap(total_)) {
    ++stats_.malformed;  // a SEQID the peer's counter never reaches
    return;
  }
  if (have_finished_) {
    int64_t distance = group_distance(id, last_finished_, group_count);
    if (distance <= -int64_t{kMaxGroupsBehind} || (distance <= 0 && finished(id))) {
      ++stats_.stale;
      return;
    }
    if (distance > kMaxGroupsAhead) {
      ++stats_.far;
      if (++far_in_a_row_ < kResync) return;
      for (auto& group : groups_) {
        stats_.abandoned += group.used ? 1 : 0;
        group.used = false;
      }
      finished_ids_.fill(kNoGroup);
      have_finished_ = false;
    }
  }
  far_in_a_row_ = 0;
  Group* group = group_for(id);
  if (!group) return;
  if (group->present[index]) {
    ++stats_.duplicates;
    return;
  }
  std::memcpy(group->shard[index].data(), body.data(), body.size());
  group->size[index] = body.size();
  group->present[index] = 1;
  group->longest = std::max(group->longest, body.size());
  ++group->count;
  if (static_cast<int>(index) < data_shards_) ++group->data_count;
  if (group->count >= data_shards_) finish(*group);
}

FecDecoder::Group* FecDecoder::group_for(uint32_t id) {
  Group* free_slot = nullptr;
  Group* oldest = nullptr;
  uint32_t group_count = seqid_wrap(total_) / static_cast<uint32_t>(total_);
  for (auto& group : groups_) {
    if (group.used && group.id == id) return &group;
    if (!group.used && !free_slot) free_slot = &group;
    if (group.used && (!oldest || group_distance(group.id, oldest->id, group_count) < 0)) oldest = &group;
  }
  if (!free_slot && groups_.size() < max_groups_) {
    Group& fresh = groups_.emplace_back();
    fresh.present.resize(total_);
    fresh.size.resize(total_);
    fresh.shard.assign(total_, std::vector<uint8_t>(kMaxShardBytes));
    free_slot = &fresh;
  }
  if (!free_slot) {
    ++stats_.abandoned;
    if (group_distance(id, oldest->id, group_count) < 0) return nullptr;  // the newcomer is the oldest
    free_slot = oldest;
  }
  free_slot->used = true;
  free_slot->id = id;
  free_slot->count = 0;
  free_slot->data_count = 0;
  free_slot->longest = 0;
  std::fill(free_slot->present.begin(), free_slot->present.end(), 0);
  return free_slot;
}

void FecDecoder::finish(Group& group) {
  if (group.data_count < data_shards_) recover(group);
  uint32_t group_count = seqid_wrap(total_) / static_cast<uint32_t>(total_);
  if (!have_finished_ || group_distance(group.id, last_finished_, group_count) > 0) last_finished_ = group.id;
  have_finished_ = true;
  finished_ids_[group.id % kMaxGroupsBehind] = group.id;
  // The slot's bytes stay untouched until the next decode(): recovered spans point there.
  group.used = false;
  forget_behind(last_finished_);
}

// Unfinished groups that far behind wait for shards a reordering link no longer delivers.
void FecDecoder::forget_behind(uint32_t id) {
  uint32_t group_count = seqid_wrap(total_) / static_cast<uint32_t>(total_);
  for (auto& group : groups_) {
    if (group.used && group_distance(group.id, id, group_count) <= -int64_t{kMaxGroupsBehind}) {
      group.used = false;
      ++stats_.abandoned;
    }
  }
}

void FecDecoder::recover(Group& group) {
  const size_t length = group.longest;
  const int k = data_shards_;
  missing_.clear();
  int sources = 0;
  for (int i = 0; i < total_; ++i) {
    if (!group.present[i]) {
      if (i < k) missing_.push_back(i);
      continue;
    }
    if (sources == k) continue;
    std::memset(group.shard[i].data() + group.size[i], 0, length - group.size[i]);
    std::memcpy(square_.data() + sources * k, matrix_.data() + i * k, k);
    sources_[sources++] = group.shard[i].data();
  }
  if (gf_invert_matrix(square_.data(), inverse_.data(), k) != 0) {
    stats_.unrecoverable += missing_.size();
    return;
  }
  // Data shard m is row m of the inverse applied to the sources.
  int errors = static_cast<int>(missing_.size());
  for (int e = 0; e < errors; ++e) {
    std::memcpy(rows_.data() + e * k, inverse_.data() + missing_[e] * k, k);
    targets_[e] = group.shard[missing_[e]].data();
  }
  ec_init_tables(k, errors, rows_.data(), tables_.data());
  ec_encode_data(static_cast<int>(length), k, errors, tables_.data(), sources_.data(), targets_.data());
  for (int e = 0; e < errors; ++e) {
    const uint8_t* shard = targets_[e];
    size_t size = load_le16(shard);
    // As in kcp-go's session: a rebuilt shard is used only when its SIZE field fits.
    if (size < kFecSizeFieldSize || size > length) {
      ++stats_.unrecoverable;
      continue;
    }
    ++stats_.recovered;
    out_.emplace_back(shard + kFecSizeFieldSize, size - kFecSizeFieldSize);
  }
}

}  // namespace strait::agent::kcp
