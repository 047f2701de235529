#include "agent/protocol/snappy_frames.h"

#include <isa-l.h>
#include <snappy.h>

#include <algorithm>
#include <cstring>

namespace strait::agent::kcp {
namespace {

constexpr uint8_t kCompressed = 0x00;
constexpr uint8_t kUncompressed = 0x01;
constexpr uint8_t kFirstSkippable = 0x80;
constexpr uint8_t kStreamIdentifier = 0xff;
constexpr size_t kIdentifierSize = sizeof(kSnappyStreamIdentifier);
constexpr uint32_t kMaskDelta = 0xa282ead8;

uint32_t load_le32(const uint8_t* p) { return p[0] | p[1] << 8 | p[2] << 16 | static_cast<uint32_t>(p[3]) << 24; }
void store_le32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void store_header(uint8_t* p, uint8_t type, size_t length) {
  p[0] = type;
  for (int i = 0; i < 3; ++i) p[1 + i] = static_cast<uint8_t>(length >> (8 * i));
}
std::string hex_byte(uint8_t b) {
  constexpr char kDigits[] = "0123456789abcdef";
  return {'0', 'x', kDigits[b >> 4], kDigits[b & 15]};
}

}  // namespace

uint32_t snappy_masked_crc(std::span<const uint8_t> data) {
  // ISA-L's crc32_iscsi leaves out the final inversion: seed ~0 and invert for CRC-32C.
  uint32_t crc = ~crc32_iscsi(const_cast<uint8_t*>(data.data()), static_cast<int>(data.size()), 0xffffffffu);
  return ((crc >> 15) | (crc << 17)) + kMaskDelta;
}

void SnappyFrameEncoder::encode(std::span<const uint8_t> in, std::vector<uint8_t>& out) {
  if (in.empty()) return;
  if (!wrote_identifier_) {
    out.insert(out.end(), std::begin(kSnappyStreamIdentifier), std::end(kSnappyStreamIdentifier));
    wrote_identifier_ = true;
  }
  while (!in.empty()) {
    auto piece = in.first(std::min(in.size(), kSnappyMaxBlock));
    in = in.subspan(piece.size());
    size_t start = out.size();
    size_t body = start + kSnappyChunkHeaderSize + kSnappyChecksumSize;
    out.resize(body + snappy::MaxCompressedLength(piece.size()));
    size_t compressed = 0;
    snappy::RawCompress(reinterpret_cast<const char*>(piece.data()), piece.size(),
                        reinterpret_cast<char*>(out.data() + body), &compressed);
    uint8_t type = kCompressed;
    // golang/snappy keeps the compressed form only when it saves at least 1/8.
    if (compressed >= piece.size() - piece.size() / 8) {
      type = kUncompressed;
      compressed = piece.size();
      std::memcpy(out.data() + body, piece.data(), piece.size());
    }
    out.resize(body + compressed);
    store_header(out.data() + start, type, kSnappyChecksumSize + compressed);
    store_le32(out.data() + start + kSnappyChunkHeaderSize, snappy_masked_crc(piece));
  }
}

size_t SnappyFrameDecoder::fail(std::string reason) {
  error_ = absl::InvalidArgumentError("snappy: " + reason);
  pending_.clear();
  pending_.shrink_to_fit();
  return 0;
}

size_t SnappyFrameDecoder::take_chunk(std::span<const uint8_t> in, std::vector<uint8_t>& out) {
  if (in.size() < kSnappyChunkHeaderSize) return 0;
  uint8_t type = in[0];
  size_t length = in[1] | in[2] << 8 | static_cast<size_t>(in[3]) << 16;
  if (!seen_identifier_ && type != kStreamIdentifier) {
    return fail("stream does not start with the stream identifier (chunk type " + hex_byte(type) + ")");
  }
  if (type == kStreamIdentifier) {
    if (length != kIdentifierSize - kSnappyChunkHeaderSize) {
      return fail("stream identifier chunk of " + std::to_string(length) + " bytes, not 6");
    }
    if (in.size() < kIdentifierSize) return 0;
    if (std::memcmp(in.data(), kSnappyStreamIdentifier, kIdentifierSize) != 0) {
      return fail("stream identifier is not \"sNaPpY\"");
    }
    seen_identifier_ = true;
    return kIdentifierSize;
  }
  if (type >= kFirstSkippable) {
    skip_ = length;
    return kSnappyChunkHeaderSize;
  }
  if (type != kCompressed && type != kUncompressed) {
    return fail("reserved unskippable chunk type " + hex_byte(type));
  }
  size_t limit = type == kCompressed ? kSnappyMaxCompressedBlock : kSnappyMaxBlock;
  if (length < kSnappyChecksumSize || length - kSnappyChecksumSize > limit) {
    return fail(std::string(type == kCompressed ? "compressed" : "uncompressed") + " chunk of " +
                std::to_string(length) + " bytes (allowed: 4 to " + std::to_string(limit + kSnappyChecksumSize) + ")");
  }
  if (in.size() < kSnappyChunkHeaderSize + length) return 0;
  uint32_t expected = load_le32(in.data() + kSnappyChunkHeaderSize);
  auto body = in.subspan(kSnappyChunkHeaderSize + kSnappyChecksumSize, length - kSnappyChecksumSize);
  size_t start = out.size();
  if (type == kCompressed) {
    const char* block = reinterpret_cast<const char*>(body.data());
    size_t size = 0;
    if (!snappy::GetUncompressedLength(block, body.size(), &size) || size > kSnappyMaxBlock) {
      return fail("compressed chunk with a corrupt or over-long block (decoded length " + std::to_string(size) + ")");
    }
    out.resize(start + size);
    if (!snappy::RawUncompress(block, body.size(), reinterpret_cast<char*>(out.data() + start))) {
      out.resize(start);
      return fail("corrupt compressed block");
    }
  } else {
    out.insert(out.end(), body.begin(), body.end());
  }
  if (snappy_masked_crc(std::span<const uint8_t>(out).subspan(start)) != expected) {
    out.resize(start);
    return fail("checksum mismatch in a " + std::string(type == kCompressed ? "compressed" : "uncompressed") + " chunk");
  }
  return kSnappyChunkHeaderSize + length;
}

absl::Status SnappyFrameDecoder::feed(std::span<const uint8_t> in, std::vector<uint8_t>& out) {
  while (error_.ok() && !in.empty()) {
    if (skip_ > 0) {
      size_t n = std::min(skip_, in.size());
      skip_ -= n;
      in = in.subspan(n);
      continue;
    }
    if (pending_.empty()) {
      // The common case: whole chunks straight from the caller's bytes, no copy.
      size_t used = take_chunk(in, out);
      if (used == 0) {
        if (error_.ok()) pending_.assign(in.begin(), in.end());
        break;
      }
      in = in.subspan(used);
      continue;
    }
    // Top up the kept bytes to a whole header, then to a whole chunk; the header was already
    // checked (length within limits) when it became complete.
    size_t want = kSnappyChunkHeaderSize;
    if (pending_.size() >= kSnappyChunkHeaderSize) {
      want += pending_[1] | pending_[2] << 8 | static_cast<size_t>(pending_[3]) << 16;
    }
    size_t n = std::min(want - pending_.size(), in.size());
    pending_.insert(pending_.end(), in.begin(), in.begin() + static_cast<ptrdiff_t>(n));
    in = in.subspan(n);
    if (take_chunk(pending_, out) != 0) pending_.clear();
  }
  return error_;
}

}  // namespace strait::agent::kcp
