#pragma once

// The snappy framing format (google/snappy framing_format.txt), which kcptun and GOST wrap
// around the KCP byte stream unless `nocomp` (PROTOCOLS.md §5):
//
//   chunk = TYPE(1) | LENGTH(3, LE) | DATA[LENGTH]
//   0xff stream identifier "sNaPpY" (must come first; may repeat)
//   0x00 compressed:   masked CRC-32C(4, LE) of the uncompressed data | snappy block
//   0x01 uncompressed: masked CRC-32C(4, LE) | data
//   0x02-0x7f reserved, unskippable: error;  0x80-0xfe skippable (0xfe = padding)
//   uncompressed data of a chunk ≤ 65536 bytes;  mask(c) = ((c >> 15) | (c << 17)) + 0xa282ead8
//
// Pure code over bytes, fuzzed.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace strait::agent::kcp {

constexpr size_t kSnappyChunkHeaderSize = 4;
constexpr size_t kSnappyChecksumSize = 4;
constexpr size_t kSnappyMaxBlock = 65536;  // uncompressed bytes a chunk may carry
// snappy's MaxCompressedLength(65536): the longest compressed chunk a conforming writer emits.
constexpr size_t kSnappyMaxCompressedBlock = 32 + kSnappyMaxBlock + kSnappyMaxBlock / 6;
constexpr uint8_t kSnappyStreamIdentifier[] = {0xff, 0x06, 0x00, 0x00, 's', 'N', 'a', 'P', 'p', 'Y'};

// The framing format's checksum: CRC-32C of `data`, rotated and offset.
uint32_t snappy_masked_crc(std::span<const uint8_t> data);

// One direction's writer, as golang/snappy's Writer (which kcptun flushes after every write):
// the stream identifier before the first data, then each ≤ 65536-byte piece as a compressed
// chunk when that saves at least 1/8, else as an uncompressed chunk.
class SnappyFrameEncoder {
 public:
  // Appends the chunks for `in` to `out`. Nothing for empty input.
  void encode(std::span<const uint8_t> in, std::vector<uint8_t>& out);

 private:
  bool wrote_identifier_ = false;
};

// One direction's reader. Complete chunks are decoded as they arrive; an incomplete chunk is
// kept (at most one chunk: ≤ 4 + 4 + kSnappyMaxCompressedBlock bytes); skippable chunks are
// skipped as they stream by, whatever their length, without being buffered.
class SnappyFrameDecoder {
 public:
  // Appends the data of every complete chunk in `in` (after what earlier calls kept) to `out`.
  // An error (bad identifier, CRC mismatch, reserved chunk type, over-long chunk, corrupt
  // block) says why; the stream is then dead and every later call returns the same error.
  absl::Status feed(std::span<const uint8_t> in, std::vector<uint8_t>& out);

  bool failed() const { return !error_.ok(); }
  // Bytes of an incomplete chunk held for the next call.
  size_t buffered() const { return pending_.size(); }

 private:
  // Decodes the chunk at the start of `in` if it is complete. Returns bytes used (0 = needs
  // more); sets error_ on a bad chunk.
  size_t take_chunk(std::span<const uint8_t> in, std::vector<uint8_t>& out);
  size_t fail(std::string reason);  // records the error; returns 0 (nothing used)

  bool seen_identifier_ = false;
  size_t skip_ = 0;  // bytes of a skippable chunk still to pass over
  std::vector<uint8_t> pending_;
  absl::Status error_;
};

}  // namespace strait::agent::kcp
