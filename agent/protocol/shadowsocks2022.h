#pragma once

// Shadowsocks 2022 (SIP022, shadowsocks.org "SIP022 AEAD-2022 Ciphers"; identity headers
// SIP023) over TCP: the header chunks that open each direction, and the keys they use. The
// chunks after them are the AEAD codec of shadowsocks.h with a 0xFFFF length cap. UDP is in
// shadowsocks2022_udp.h. Pure functions over bytes, fuzzed directly.
//
//   request:  SALT | identity headers (SIP023, 16 B each) | seal(type 0, timestamp u64 BE,
//             length u16 BE) | seal(ATYP ADDR PORT, padding length u16 BE, padding, payload)
//             | { seal(LEN) | seal(PAYLOAD) } ...
//   response: SALT | seal(type 1, timestamp, request salt, length) | seal(PAYLOAD) | ...
//   session subkey  = BLAKE3 derive_key("shadowsocks 2022 session subkey", PSK || SALT)
//   identity header = AES-ECB(derive_key("shadowsocks 2022 identity subkey", iPSK || SALT),
//                             BLAKE3(next PSK)[0..16))

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "agent/protocol/parse_result.h"
#include "agent/protocol/shadowsocks.h"
#include "common/address.h"

namespace strait::agent::ss2022 {

using ss_wire::Bytes;

constexpr std::string_view kSessionSubkeyContext = "shadowsocks 2022 session subkey";
constexpr std::string_view kIdentitySubkeyContext = "shadowsocks 2022 identity subkey";  // SIP023
constexpr uint8_t kTypeRequest = 0;   // HeaderTypeClientStream / HeaderTypeClientPacket
constexpr uint8_t kTypeResponse = 1;  // HeaderTypeServerStream / HeaderTypeServerPacket
constexpr uint64_t kMaxTimeSkew = 30;  // seconds either way (§3.1.3)
constexpr size_t kMaxPadding = 900;    // MaxPaddingLength
constexpr size_t kFixedRequestSize = 1 + 8 + 2;
constexpr size_t kIdentityHeaderSize = 16;
constexpr size_t kMaxResponseHeadSize = 1 + 8 + ss_wire::kMaxSaltSize + 2;

// Seconds since the Unix epoch, the clock headers carry.
uint64_t unix_now();
// Whether `timestamp` is within kMaxTimeSkew of `now`.
bool timestamp_fresh(uint64_t timestamp, uint64_t now);

// BLAKE3(psk)[0..16): how an identity header names the next key (SIP023).
std::string identity_hash(std::string_view psk);
// One AES block (ECB, no padding) under a 16- or 32-byte key; what SIP022/SIP023 seal
// separate and identity headers with.
void aes_block(std::string_view key, Bytes in, uint8_t* out, bool encrypt);

// A server's users (SIP023): the user PSK and its name, by identity_hash of the PSK.
struct User {
  std::string name;
  std::string key;
};
using Users = std::unordered_map<std::string, User>;

// The identity headers a client puts after the salt: one per key but the last of `keys`
// (iPSK0, iPSK1, ..., uPSK), each naming the key after it.
std::string identity_headers(const ss_wire::Method& method, std::span<const std::string> keys, Bytes salt);

// What a stream's first seal writes after the salt (StreamEncryptor): the request or
// response header chunks with as much of `plain` as they carry. Returns the bytes of
// `plain` used. A request without payload gets 1..900 bytes of random padding.
size_t seal_opening(const ss_wire::Opening2022& opening, ss_wire::AeadCipher& aead, Bytes plain, std::string& out);

// The parts of that with the clock and padding given (tests and the fuzzer).
std::string variable_header(std::string_view target, Bytes padding, Bytes payload);
void seal_request_head(ss_wire::AeadCipher& aead, uint64_t timestamp, Bytes variable_header, std::string& out);
void seal_response_head(ss_wire::AeadCipher& aead, uint64_t timestamp, Bytes request_salt, Bytes first_payload,
                        std::string& out);

// A request's opening as the server reads it.
struct RequestHead {
  std::string salt;
  std::string key;             // the PSK of the session: the server's, or the user's
  const User* user = nullptr;  // with users: whose identity header it was
  common::HostPort target;
  std::string payload;  // initial payload from the variable header
  std::optional<ss_wire::AeadCipher> aead;  // the request stream's cipher, past the headers
};

// Reads salt, identity header (when `users` is given), fixed and variable header from the
// front of `in`. Incomplete until all are there; invalid (with the reason) on a failed tag, an
// unknown user, a wrong type, a timestamp more than 30 s from `now`, a bad address, padding
// over 900 or past the chunk, or neither padding nor payload. The salt is not checked for
// replay here: the caller keeps the salts.
Parsed<RequestHead> parse_request_head(const ss_wire::Method& method, std::string_view key, const Users* users,
                                       Bytes in, uint64_t now);

// Plaintext size of the response header for `method`: type, timestamp, salt, length.
constexpr size_t response_head_size(const ss_wire::Method& method) { return 1 + 8 + method.key_size + 2; }
// Checks an opened response header against the request's salt and the clock; the length of
// the first payload chunk, or 0 with `reason` set.
size_t check_response_head(Bytes head, std::string_view request_salt, uint64_t now, std::string_view& reason);

}  // namespace strait::agent::ss2022
