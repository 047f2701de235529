// Fuzzes the Shadowsocks AEAD stream decoder (agent/protocol/shadowsocks) as an ss handler or
// connector runs it: bytes from a peer fed in pieces of fuzzer-chosen sizes. It must never use
// more than it was given, never return plaintext after a failure, and refuse everything once
// failed. The input is also sealed as plaintext and must decode back whole, whatever the cut.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>

#include "agent/protocol/shadowsocks.h"
#include "tests/fuzz/ss_fuzz_key.h"

namespace ss_wire = strait::agent::ss_wire;

namespace {

std::span<const uint8_t> as_bytes(const std::string& text) {
  return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

// Feeds `wire` in pieces whose sizes come from `cuts` (cycled); returns the plaintext and
// whether the decoder refused the stream.
std::pair<std::string, bool> decode_in_pieces(const ss_wire::Method& method, const std::string& key,
                                              std::span<const uint8_t> wire, std::span<const uint8_t> cuts) {
  ss_wire::StreamDecryptor decryptor(method, key);
  std::string received;
  std::string plain;
  size_t offset = 0;
  size_t turn = 0;
  while (offset < wire.size()) {
    size_t piece = cuts.empty() ? wire.size() : 1 + cuts[turn++ % cuts.size()] * 7;
    piece = std::min(piece, wire.size() - offset);
    received.append(reinterpret_cast<const char*>(wire.data() + offset), piece);
    offset += piece;
    size_t before = plain.size();
    auto decoded = decryptor.decode(as_bytes(received), plain);
    if (decoded.consumed > received.size()) __builtin_trap();
    if (decoded.invalid) {
      if (plain.size() != before && decoded.consumed == 0) __builtin_trap();
      if (!decryptor.failed() || !decryptor.decode(as_bytes(received), plain).invalid) __builtin_trap();
      return {plain, true};
    }
    received.erase(0, decoded.consumed);
    // What stays is less than one unit: the decoder took every whole one.
    if (received.size() >= decryptor.next_unit_size()) __builtin_trap();
    if (decryptor.next_unit_size() > ss_wire::kMaxPayload + ss_wire::kTagSize) __builtin_trap();
  }
  return {plain, false};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  auto [method, key] = strait::fuzz::ss_key_for(data[0]);
  std::span<const uint8_t> input(data + 1, size - 1);
  size_t cut_count = std::min<size_t>(input.size(), 8);
  auto cuts = input.first(cut_count);

  decode_in_pieces(method, key, input, cuts);

  std::string salt(method.key_size, '\x07');
  ss_wire::StreamEncryptor encryptor(method, key, as_bytes(salt));
  std::string wire;
  encryptor.seal(input, wire);
  auto [plain, failed] = decode_in_pieces(method, key, as_bytes(wire), cuts);
  if (failed || plain.size() != input.size()) __builtin_trap();
  if (!input.empty() && std::memcmp(plain.data(), input.data(), input.size()) != 0) __builtin_trap();
  return 0;
}
