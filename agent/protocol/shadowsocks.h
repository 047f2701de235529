#pragma once

// Shadowsocks AEAD wire format (SIP004, shadowsocks.org "AEAD ciphers"; PROTOCOLS.md §6):
// key derivation, the chunked TCP stream and the one-packet UDP form. Pure functions and
// cipher state over bytes, shared by the ss/ssu handlers and connectors and fuzzed directly.
//
//   master key = EVP_BytesToKey(MD5, no salt, 1 round) of the password (or the raw `key`)
//   subkey     = HKDF-SHA1(ikm = master key, salt = SALT, info = "ss-subkey"), key size
//   TCP, each direction: SALT | { seal(LEN(2,BE)) | seal(PAYLOAD[LEN]) } ...  LEN 1..0x3FFF
//   UDP, each packet:    SALT | seal(ATYP ADDR PORT | PAYLOAD)  with a zero nonce
//   nonce: 12 bytes, little-endian counter from 0, +1 after every seal or open; tag 16 bytes
// The 2022 edition (SIP022) reuses the chunk codec with BLAKE3 subkeys, 0xFFFF-byte chunks
// and header chunks ahead of the first: see shadowsocks2022.h.

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace strait::agent::ss_wire {

constexpr size_t kTagSize = 16;
constexpr size_t kNonceSize = 12;
constexpr size_t kLengthSize = 2;
constexpr size_t kMaxPayload = 0x3FFF;  // SIP004: the top two bits of LEN are zero
constexpr size_t kMaxPayload2022 = 0xFFFF;  // SIP022 §3.1.2
constexpr size_t kSealedLengthSize = kLengthSize + kTagSize;
constexpr size_t kMaxChunkSize = kSealedLengthSize + kMaxPayload + kTagSize;
constexpr size_t kMaxSaltSize = 32;
constexpr std::string_view kSubkeyInfo = "ss-subkey";

using Bytes = std::span<const uint8_t>;

enum class Cipher { kAes128Gcm, kAes256Gcm, kChacha20Poly1305 };

struct Method {
  Cipher cipher = Cipher::kAes128Gcm;
  std::string_view name;  // the canonical (shadowsocks-libev) name
  size_t key_size = 16;   // also the salt size
  bool edition_2022 = false;  // SIP022: a base64 PSK, BLAKE3 subkeys, header chunks
};

// A method by any of its names, case-insensitive: aes-128-gcm / AEAD_AES_128_GCM,
// aes-256-gcm / AEAD_AES_256_GCM, chacha20-ietf-poly1305 / AEAD_CHACHA20_POLY1305, and the
// SIP022 2022-blake3-aes-128-gcm, 2022-blake3-aes-256-gcm, 2022-blake3-chacha20-poly1305.
std::optional<Method> find_method(std::string_view name);
// The canonical names, for messages.
std::string method_names();

// EVP_BytesToKey(MD5, no salt, one round) of `password`, cut to `key_size` bytes.
std::string password_to_key(std::string_view password, size_t key_size);
// HKDF-SHA1 of the master key with `salt` and info "ss-subkey", as long as the master key.
std::string derive_subkey(std::string_view master_key, Bytes salt);
// The session subkey of either edition: derive_subkey, or for SIP022 BLAKE3
// derive_key("shadowsocks 2022 session subkey", key || salt).
std::string session_subkey(const Method& method, std::string_view key, Bytes salt);

// One direction's AEAD under one subkey, with its nonce counter.
class AeadCipher {
 public:
  AeadCipher(Cipher cipher, std::string_view subkey, bool encrypt);
  ~AeadCipher();
  AeadCipher(AeadCipher&&) noexcept;
  AeadCipher& operator=(AeadCipher&&) noexcept;

  // Appends ciphertext and tag of `plain` to `out`; the nonce counter then moves on.
  void seal(Bytes plain, std::string& out);
  // Writes the plaintext of `sealed` (ciphertext | tag) to `out`, which holds at least
  // sealed.size() - kTagSize bytes; false when the tag does not match (the counter then
  // stays, but a stream that failed once is never read again).
  bool open(Bytes sealed, uint8_t* out);
  // Sets the next nonce (SIP022 UDP takes it from the packet header).
  void set_nonce(std::span<const uint8_t, kNonceSize> nonce);

 private:
  struct Context;
  std::unique_ptr<Context> context_;
  std::array<uint8_t, kNonceSize> nonce_{};
};

// SIP022: the header chunks that open a stream, built by shadowsocks2022.cc on the first seal.
struct Opening2022 {
  bool request = true;        // client: salt | identity headers | fixed | variable header
  std::string identity;       // request: SIP023 identity headers, already sealed
  std::string target;         // request: ATYP ADDR PORT
  std::string request_salt;   // response: the salt of the request it answers
};

// The sending half of a TCP stream: the salt on first use, then chunks.
class StreamEncryptor {
 public:
  // A fresh random salt.
  StreamEncryptor(const Method& method, std::string_view master_key);
  // A given salt (tests and golden vectors).
  StreamEncryptor(const Method& method, std::string_view master_key, Bytes salt);

  // Appends the salt (on the first call) and `plain` in chunks of at most kMaxPayload
  // (kMaxPayload2022). Empty input appends only the salt if it is still due, except that a
  // SIP022 response waits for payload and a SIP022 request opens with padding instead.
  void seal(Bytes plain, std::string& out);
  std::string_view salt() const { return salt_; }
  // True until the first seal that wrote something.
  bool first_seal_due() const { return !salt_sent_; }
  // SIP022: what the first seal puts between the salt and the chunks.
  void set_opening(Opening2022 opening) { opening_ = std::move(opening); }

 private:
  Method method_;
  std::string salt_;
  bool salt_sent_ = false;
  AeadCipher aead_;
  std::optional<Opening2022> opening_;
};

struct Decoded {
  size_t consumed = 0;  // bytes of input used (whole salt, length and payload units)
  size_t produced = 0;  // plaintext bytes written (the span form)
  bool invalid = false;  // a tag did not match or a length was out of range: the stream is dead
  std::string_view reason;
};

// The receiving half of a TCP stream. Incremental: decode() uses whole units from the front
// of its input and leaves a partial one for the next call (with more bytes behind it).
class StreamDecryptor {
 public:
  StreamDecryptor(const Method& method, std::string master_key);
  // SIP022 server: the request headers were read (shadowsocks2022.h); chunks follow.
  StreamDecryptor(const Method& method, std::string salt, AeadCipher established);
  // SIP022 client: the peer's stream opens with a response header naming this salt.
  void expect_response_to(std::string request_salt) { request_salt_ = std::move(request_salt); }

  // Appends the plaintext of every whole chunk at the front of `in` to `out`.
  Decoded decode(Bytes in, std::string& out);
  // The same into `out`, chunk by chunk while the next payload fits in what is left of it
  // (so a reader decrypts straight into its own buffer); `produced` says how much.
  Decoded decode(Bytes in, std::span<uint8_t> out);
  // Input bytes the next unit needs (salt, sealed length or sealed payload): a reader that
  // has fewer buffered should read at least the difference.
  size_t next_unit_size() const;
  // The peer's salt once read, else empty.
  std::string_view salt() const { return salt_; }
  bool failed() const { return failed_; }

 private:
  Method method_;
  std::string master_key_;
  std::string salt_;
  std::optional<AeadCipher> aead_;
  size_t payload_size_ = 0;  // 0: a sealed length is next; else that payload
  bool failed_ = false;
  std::string request_salt_;  // SIP022 client until the response header is read
};

// One side of a UDP flow's packets, whatever the edition: plaintext is ATYP ADDR PORT |
// PAYLOAD both ways (SIP022 codecs add and check their own headers around it). Used by one
// coroutine at a time.
class PacketCodec {
 public:
  virtual ~PacketCodec() = default;
  virtual std::string seal(Bytes plain) = 0;
  // Nothing when the packet is not ours (wrong key, tampered, replayed, stale).
  virtual std::optional<std::string> open(Bytes packet) = 0;
};
// SIP004 packets under one master key.
std::unique_ptr<PacketCodec> make_aead_packet_codec(const Method& method, std::string master_key);

// One UDP packet: SALT | seal(plain) with a fresh random salt and a zero nonce.
std::string seal_packet(const Method& method, std::string_view master_key, Bytes plain);
// The same with a given salt (tests).
std::string seal_packet(const Method& method, std::string_view master_key, Bytes plain, Bytes salt);
// The plaintext of one packet; nothing when it is too short or its tag does not match.
std::optional<std::string> open_packet(const Method& method, std::string_view master_key, Bytes packet);

}  // namespace strait::agent::ss_wire
