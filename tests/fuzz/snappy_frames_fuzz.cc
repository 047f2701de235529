// Fuzzes the snappy framing decoder (agent/protocol/snappy_frames) as a KCP session runs it
// on the peer's byte stream: fed whole and in fuzzer-sized pieces it must give the same bytes
// and the same verdict, and never hold more than one chunk. The input is also encoded and
// must decode back whole.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "agent/protocol/snappy_frames.h"

namespace kcp = strait::agent::kcp;

namespace {

constexpr size_t kMaxHeld = kcp::kSnappyChunkHeaderSize + kcp::kSnappyChecksumSize + kcp::kSnappyMaxCompressedBlock;

bool decode(std::span<const uint8_t> stream, size_t piece, std::vector<uint8_t>& out) {
  kcp::SnappyFrameDecoder decoder;
  bool ok = true;
  for (size_t at = 0; at < stream.size() && ok; at += piece) {
    ok = decoder.feed(stream.subspan(at, std::min(piece, stream.size() - at)), out).ok();
    if (decoder.buffered() > kMaxHeld) __builtin_trap();
  }
  if (!ok && decoder.feed(stream.first(0), out).ok()) __builtin_trap();
  return ok;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  size_t piece = 1 + data[0] % 64;
  auto stream = std::span<const uint8_t>(data + 1, size - 1);
  std::vector<uint8_t> whole, pieces;
  bool whole_ok = decode(stream, stream.size() + 1, whole);
  bool pieces_ok = decode(stream, piece, pieces);
  // A failure may come earlier or later in the bytes, but what was decoded before it agrees.
  if (whole_ok != pieces_ok) __builtin_trap();
  if (whole_ok && whole != pieces) __builtin_trap();

  kcp::SnappyFrameEncoder encoder;
  std::vector<uint8_t> encoded, decoded;
  encoder.encode(stream, encoded);
  if (!decode(encoded, piece * 97, decoded)) __builtin_trap();
  if (decoded.size() != stream.size() || !std::equal(decoded.begin(), decoded.end(), stream.begin())) __builtin_trap();
  return 0;
}
