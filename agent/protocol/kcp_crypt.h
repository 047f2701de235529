#pragma once

// kcp-go packet encryption (xtaci/kcp-go crypt.go and sess.go; PROTOCOLS.md §5). Every UDP
// packet of a KCP session with a crypt starts with a 20-byte header:
//
//   NONCE(16) | CRC32(4, LE) | FEC header and KCP segments ...
//
// NONCE is fresh random bytes, CRC32 (IEEE) covers everything after the header, and the whole
// packet from byte 0 is then encrypted in place: block ciphers in CFB over the whole packet
// with a fixed IV (so the random nonce acts as the real IV), salsa20 with the first 8 bytes as
// its nonce, `xor` with a 1500-byte table, `none` not at all. Pure code over bytes, fuzzed.

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "absl/status/status.h"

namespace strait::agent::kcp {

constexpr size_t kNonceSize = 16;
constexpr size_t kCrcSize = 4;
constexpr size_t kCryptHeaderSize = kNonceSize + kCrcSize;
constexpr size_t kKeySize = 32;
// kcp-go's mtuLimit: its receive buffer, so also the length of the `xor` table.
constexpr size_t kMtuLimit = 1500;

using Key = std::array<uint8_t, kKeySize>;

// pbkdf2-hmac-sha1(password = key, salt = "kcp-go", 4096 iterations, 32 bytes).
Key derive_key(std::string_view key);

class PacketCrypt {
 public:
  virtual ~PacketCrypt();
  // packet[0..20) is the header area: fills a fresh random nonce and the CRC32 of
  // packet[20..), then encrypts the whole packet in place. Packets shorter than the header
  // are left alone (a caller bug: every packet it sends has the header).
  virtual void seal(std::span<uint8_t> packet) = 0;
  // Decrypts in place and checks the CRC. False when shorter than the header or the CRC does
  // not match (wrong key, corrupt or foreign packet); the content is then unspecified.
  virtual bool open(std::span<uint8_t> packet) = 0;
  // The canonical kcptun name of the method ("aes", "salsa20", ...), for logs.
  virtual std::string_view name() const = 0;
};

// What to do with a method name kcptun does not know: kcptun refuses it, GOST silently uses
// aes (also for an empty name). The caller decides which peer it imitates.
enum class UnknownCrypt { kRefuse, kUseAes };

// The canonical name that `method` selects ("" when refused), so a caller can report a GOST
// fallback to aes before building anything.
std::string_view resolve_crypt_name(std::string_view method, UnknownCrypt unknown);

// Names: aes, aes-128, aes-192, salsa20, blowfish, twofish, cast5, 3des, sm4, tea, xtea, xor,
// none, and kcptun's `null`, which returns nullptr with an OK `error` (no crypt header at all).
// `twofish` is refused (no implementation in OpenSSL). Blowfish and CAST5 come from OpenSSL's
// legacy provider, loaded into a private library context so the process default is untouched.
std::unique_ptr<PacketCrypt> make_packet_crypt(std::string_view method, std::string_view key, absl::Status& error,
                                               UnknownCrypt unknown = UnknownCrypt::kRefuse);
// The same from an already derived key (derive_key costs 4096 HMAC rounds: derive it once per
// configuration, not per session).
std::unique_ptr<PacketCrypt> make_packet_crypt_with_key(std::string_view method, const Key& key, absl::Status& error,
                                                        UnknownCrypt unknown = UnknownCrypt::kRefuse);

}  // namespace strait::agent::kcp
