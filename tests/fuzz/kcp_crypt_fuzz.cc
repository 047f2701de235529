// Fuzzes kcp-go packet decryption (agent/protocol/kcp_crypt) as a KCP listener runs it on every
// datagram from anyone: open() of arbitrary bytes under each method must stay in bounds, and
// whatever passes must be the CRC-checked body. The input is also sealed as a packet body and
// must open back unchanged.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "agent/protocol/kcp_crypt.h"

namespace kcp = strait::agent::kcp;

namespace {

constexpr const char* kMethods[] = {"aes", "aes-128", "aes-192", "salsa20", "blowfish", "cast5",
                                    "3des", "sm4", "tea", "xtea", "xor", "none"};
constexpr size_t kCount = sizeof(kMethods) / sizeof(kMethods[0]);

kcp::PacketCrypt& crypt_for(uint8_t selector) {
  // Key derivation costs 4096 HMAC rounds: once per method for the whole run.
  static std::unique_ptr<kcp::PacketCrypt> crypts[kCount];
  size_t index = selector % kCount;
  if (!crypts[index]) {
    absl::Status error;
    crypts[index] = kcp::make_packet_crypt_with_key(kMethods[index], kcp::derive_key("fuzz"), error);
    if (!crypts[index]) __builtin_trap();
  }
  return *crypts[index];
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0 || size > 4096) return 0;
  kcp::PacketCrypt& crypt = crypt_for(data[0]);
  std::vector<uint8_t> packet(data + 1, data + size);
  crypt.open(packet);

  std::vector<uint8_t> sealed(kcp::kCryptHeaderSize + size - 1);
  std::memcpy(sealed.data() + kcp::kCryptHeaderSize, data + 1, size - 1);
  crypt.seal(sealed);
  if (!crypt.open(sealed)) __builtin_trap();
  if (size > 1 && std::memcmp(sealed.data() + kcp::kCryptHeaderSize, data + 1, size - 1) != 0) __builtin_trap();
  return 0;
}
