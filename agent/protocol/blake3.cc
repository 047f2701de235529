#include "agent/protocol/blake3.h"

#include <algorithm>
#include <vector>

namespace strait::agent::blake3 {
namespace {

constexpr size_t kBlockSize = 64;
constexpr size_t kChunkSize = 1024;

// Domain flags (spec §2.1, table 3).
constexpr uint32_t kChunkStart = 1 << 0;
constexpr uint32_t kChunkEnd = 1 << 1;
constexpr uint32_t kParent = 1 << 2;
constexpr uint32_t kRoot = 1 << 3;
constexpr uint32_t kDeriveKeyContext = 1 << 5;
constexpr uint32_t kDeriveKeyMaterial = 1 << 6;

// The SHA-256 IV, which BLAKE3 reuses (spec §2.1).
constexpr std::array<uint32_t, 8> kIv = {0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
                                         0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19};
// The message word permutation applied between rounds (spec §2.2).
constexpr std::array<size_t, 16> kPermutation = {2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8};

using Words8 = std::array<uint32_t, 8>;
using Words16 = std::array<uint32_t, 16>;

constexpr uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

void g(Words16& s, size_t a, size_t b, size_t c, size_t d, uint32_t x, uint32_t y) {
  s[a] = s[a] + s[b] + x;
  s[d] = rotr(s[d] ^ s[a], 16);
  s[c] = s[c] + s[d];
  s[b] = rotr(s[b] ^ s[c], 12);
  s[a] = s[a] + s[b] + y;
  s[d] = rotr(s[d] ^ s[a], 8);
  s[c] = s[c] + s[d];
  s[b] = rotr(s[b] ^ s[c], 7);
}

Words16 compress(const Words8& cv, Words16 m, uint64_t counter, uint32_t block_len, uint32_t flags) {
  Words16 s = {cv[0], cv[1], cv[2], cv[3], cv[4], cv[5], cv[6], cv[7],
               kIv[0], kIv[1], kIv[2], kIv[3], static_cast<uint32_t>(counter), static_cast<uint32_t>(counter >> 32),
               block_len, flags};
  for (int round = 0; round < 7; ++round) {
    g(s, 0, 4, 8, 12, m[0], m[1]);
    g(s, 1, 5, 9, 13, m[2], m[3]);
    g(s, 2, 6, 10, 14, m[4], m[5]);
    g(s, 3, 7, 11, 15, m[6], m[7]);
    g(s, 0, 5, 10, 15, m[8], m[9]);
    g(s, 1, 6, 11, 12, m[10], m[11]);
    g(s, 2, 7, 8, 13, m[12], m[13]);
    g(s, 3, 4, 9, 14, m[14], m[15]);
    Words16 permuted;
    for (size_t i = 0; i < 16; ++i) permuted[i] = m[kPermutation[i]];
    m = permuted;
  }
  for (size_t i = 0; i < 8; ++i) {
    s[i] ^= s[i + 8];
    s[i + 8] ^= cv[i];
  }
  return s;
}

// A block of up to 64 bytes as little-endian words, zero-padded.
Words16 block_words(std::span<const uint8_t> block) {
  Words16 m{};
  for (size_t i = 0; i < block.size(); ++i) m[i / 4] |= static_cast<uint32_t>(block[i]) << (8 * (i % 4));
  return m;
}

Words8 first_eight(const Words16& words) {
  Words8 cv;
  std::copy_n(words.begin(), 8, cv.begin());
  return cv;
}

// A node whose compression is pending: it becomes a chaining value, or the root output.
struct Node {
  Words8 cv;
  Words16 block;
  uint64_t counter;
  uint32_t block_len;
  uint32_t flags;

  Words8 chaining_value() const { return first_eight(compress(cv, block, counter, block_len, flags)); }
};

// Every block of one chunk but the last compressed; the last is left pending.
Node chunk_node(const Words8& key, std::span<const uint8_t> chunk, uint64_t index, uint32_t base_flags) {
  Words8 cv = key;
  uint32_t start = kChunkStart;
  while (chunk.size() > kBlockSize) {
    cv = first_eight(compress(cv, block_words(chunk.first(kBlockSize)), index, kBlockSize, base_flags | start));
    chunk = chunk.subspan(kBlockSize);
    start = 0;
  }
  return Node{cv, block_words(chunk), index, static_cast<uint32_t>(chunk.size()), base_flags | start | kChunkEnd};
}

Node parent_node(const Words8& key, const Words8& left, const Words8& right, uint32_t base_flags) {
  Words16 block;
  std::copy(left.begin(), left.end(), block.begin());
  std::copy(right.begin(), right.end(), block.begin() + 8);
  return Node{key, block, 0, kBlockSize, base_flags | kParent};
}

// The tree of spec §2.3 built left to right with a stack of subtree chaining values: after
// each whole chunk, as many merges as trailing zero bits of the chunk count.
void hash_with(const Words8& key, uint32_t base_flags, std::span<const uint8_t> input, std::span<uint8_t> out) {
  std::vector<Words8> stack;
  uint64_t index = 0;
  while (input.size() > kChunkSize) {
    Words8 cv = chunk_node(key, input.first(kChunkSize), index, base_flags).chaining_value();
    input = input.subspan(kChunkSize);
    uint64_t total = ++index;
    while ((total & 1) == 0) {
      cv = parent_node(key, stack.back(), cv, base_flags).chaining_value();
      stack.pop_back();
      total >>= 1;
    }
    stack.push_back(cv);
  }
  Node root = chunk_node(key, input, index, base_flags);
  while (!stack.empty()) {
    root = parent_node(key, stack.back(), root.chaining_value(), base_flags);
    stack.pop_back();
  }
  // Extended output: the root compressed again with counters 0, 1, ... (spec §2.6).
  for (uint64_t block = 0; !out.empty(); ++block) {
    Words16 words = compress(root.cv, root.block, block, root.block_len, root.flags | kRoot);
    size_t n = std::min(out.size(), kBlockSize);
    for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(words[i / 4] >> (8 * (i % 4)));
    out = out.subspan(n);
  }
}

}  // namespace

void hash(std::span<const uint8_t> input, std::span<uint8_t> out) { hash_with(kIv, 0, input, out); }

std::array<uint8_t, kOutSize> hash(std::span<const uint8_t> input) {
  std::array<uint8_t, kOutSize> out;
  hash(input, out);
  return out;
}

void derive_key(std::string_view context, std::span<const uint8_t> key_material, std::span<uint8_t> out) {
  std::array<uint8_t, kOutSize> context_key;
  hash_with(kIv, kDeriveKeyContext, std::span(reinterpret_cast<const uint8_t*>(context.data()), context.size()),
            context_key);
  Words8 key;
  for (size_t i = 0; i < 8; ++i) key[i] = block_words(std::span(context_key).subspan(4 * i, 4))[0];
  hash_with(key, kDeriveKeyMaterial, key_material, out);
}

}  // namespace strait::agent::blake3
