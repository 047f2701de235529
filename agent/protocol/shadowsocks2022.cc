#include "agent/protocol/shadowsocks2022.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include "agent/protocol/blake3.h"
#include "agent/protocol/socks5.h"

namespace strait::agent::ss2022 {
namespace {

using ss_wire::AeadCipher;
using ss_wire::kTagSize;

Bytes bytes_of(std::string_view text) { return {reinterpret_cast<const uint8_t*>(text.data()), text.size()}; }
void append(std::string& out, Bytes bytes) { out.append(reinterpret_cast<const char*>(bytes.data()), bytes.size()); }

void put_u64(std::string& out, uint64_t value) {
  for (int shift = 56; shift >= 0; shift -= 8) out += static_cast<char>(value >> shift);
}
void put_u16(std::string& out, size_t value) {
  out += static_cast<char>(value >> 8);
  out += static_cast<char>(value & 0xFF);
}
uint64_t get_u64(Bytes in) {
  uint64_t value = 0;
  for (size_t i = 0; i < 8; ++i) value = value << 8 | in[i];
  return value;
}
size_t get_u16(Bytes in) { return static_cast<size_t>(in[0]) << 8 | in[1]; }

std::string random_bytes(size_t size) {
  std::string bytes(size, '\0');
  if (size > 0 && RAND_bytes(reinterpret_cast<unsigned char*>(bytes.data()), static_cast<int>(size)) != 1) {
    throw std::runtime_error("shadowsocks 2022: no randomness");
  }
  return bytes;
}

// 1..kMaxPadding: the spec asks for non-zero random padding when there is no payload.
size_t random_padding_size() {
  auto two = random_bytes(2);
  return 1 + (static_cast<size_t>(static_cast<uint8_t>(two[0])) << 8 | static_cast<uint8_t>(two[1])) % kMaxPadding;
}

std::string identity_subkey(const ss_wire::Method& method, std::string_view key, Bytes salt) {
  std::string material(key);
  append(material, salt);
  std::string subkey(method.key_size, '\0');
  blake3::derive_key(kIdentitySubkeyContext, bytes_of(material),
                     std::span(reinterpret_cast<uint8_t*>(subkey.data()), subkey.size()));
  return subkey;
}

}  // namespace

uint64_t unix_now() {
  auto since_epoch = std::chrono::system_clock::now().time_since_epoch();
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(since_epoch).count());
}

bool timestamp_fresh(uint64_t timestamp, uint64_t now) {
  return (timestamp > now ? timestamp - now : now - timestamp) <= kMaxTimeSkew;
}

std::string identity_hash(std::string_view psk) {
  auto digest = blake3::hash(bytes_of(psk));
  return std::string(reinterpret_cast<const char*>(digest.data()), kIdentityHeaderSize);
}

void aes_block(std::string_view key, Bytes in, uint8_t* out, bool encrypt) {
  // Fetched once, immutable, shared by all threads.
  static EVP_CIPHER* const aes128 = EVP_CIPHER_fetch(nullptr, "AES-128-ECB", nullptr);
  static EVP_CIPHER* const aes256 = EVP_CIPHER_fetch(nullptr, "AES-256-ECB", nullptr);
  EVP_CIPHER_CTX* context = EVP_CIPHER_CTX_new();
  EVP_CipherInit_ex2(context, key.size() == 32 ? aes256 : aes128, reinterpret_cast<const uint8_t*>(key.data()),
                     nullptr, encrypt ? 1 : 0, nullptr);
  EVP_CIPHER_CTX_set_padding(context, 0);
  int written = 0;
  EVP_CipherUpdate(context, out, &written, in.data(), 16);
  EVP_CIPHER_CTX_free(context);
}

std::string identity_headers(const ss_wire::Method& method, std::span<const std::string> keys, Bytes salt) {
  std::string headers;
  for (size_t i = 0; i + 1 < keys.size(); ++i) {
    std::string next = identity_hash(keys[i + 1]);
    uint8_t sealed[kIdentityHeaderSize];
    aes_block(identity_subkey(method, keys[i], salt), bytes_of(next), sealed, true);
    append(headers, sealed);
  }
  return headers;
}

std::string variable_header(std::string_view target, Bytes padding, Bytes payload) {
  std::string header(target);
  put_u16(header, padding.size());
  append(header, padding);
  append(header, payload);
  return header;
}

void seal_request_head(AeadCipher& aead, uint64_t timestamp, Bytes variable_header, std::string& out) {
  std::string fixed(1, static_cast<char>(kTypeRequest));
  put_u64(fixed, timestamp);
  put_u16(fixed, variable_header.size());
  aead.seal(bytes_of(fixed), out);
  aead.seal(variable_header, out);
}

void seal_response_head(AeadCipher& aead, uint64_t timestamp, Bytes request_salt, Bytes first_payload,
                        std::string& out) {
  std::string fixed(1, static_cast<char>(kTypeResponse));
  put_u64(fixed, timestamp);
  append(fixed, request_salt);
  put_u16(fixed, first_payload.size());
  aead.seal(bytes_of(fixed), out);
  aead.seal(first_payload, out);
}

size_t seal_opening(const ss_wire::Opening2022& opening, AeadCipher& aead, Bytes plain, std::string& out) {
  if (!opening.request) {
    Bytes first = plain.first(std::min(plain.size(), ss_wire::kMaxPayload2022));
    seal_response_head(aead, unix_now(), bytes_of(opening.request_salt), first, out);
    return first.size();
  }
  // The variable header is one chunk: the payload it carries is what fits beside the target.
  size_t room = ss_wire::kMaxPayload2022 - opening.target.size() - 2;
  Bytes first = plain.first(std::min(plain.size(), room));
  std::string padding = first.empty() ? random_bytes(random_padding_size()) : std::string();
  out += opening.identity;
  seal_request_head(aead, unix_now(), bytes_of(variable_header(opening.target, bytes_of(padding), first)), out);
  return first.size();
}

Parsed<RequestHead> parse_request_head(const ss_wire::Method& method, std::string_view key, const Users* users,
                                       Bytes in, uint64_t now) {
  using Result = Parsed<RequestHead>;
  const size_t identity_size = users ? kIdentityHeaderSize : 0;
  size_t pos = method.key_size + identity_size;
  if (in.size() < pos + kFixedRequestSize + kTagSize) return Result::incomplete();
  RequestHead head;
  head.salt.assign(reinterpret_cast<const char*>(in.data()), method.key_size);
  head.key = key;
  if (users) {
    uint8_t hash[kIdentityHeaderSize];
    aes_block(identity_subkey(method, key, bytes_of(head.salt)), in.subspan(method.key_size, kIdentityHeaderSize),
              hash, false);
    auto user = users->find(std::string(reinterpret_cast<const char*>(hash), sizeof hash));
    if (user == users->end()) return Result::invalid(0, "shadowsocks 2022: no user has this identity header (wrong key?)");
    head.user = &user->second;
    head.key = user->second.key;
  }
  AeadCipher aead(method.cipher, ss_wire::session_subkey(method, head.key, bytes_of(head.salt)), false);
  uint8_t fixed[kFixedRequestSize];
  if (!aead.open(in.subspan(pos, kFixedRequestSize + kTagSize), fixed)) {
    return Result::invalid(0, "shadowsocks 2022: the request header failed authentication (wrong key?)");
  }
  if (fixed[0] != kTypeRequest) return Result::invalid(0, "shadowsocks 2022: not a request header (type " + std::to_string(fixed[0]) + ")");
  uint64_t timestamp = get_u64(Bytes(fixed).subspan(1));
  if (!timestamp_fresh(timestamp, now)) {
    return Result::invalid(0, "shadowsocks 2022: request timestamp more than 30 s off our clock (replay, or clock skew)");
  }
  size_t length = get_u16(Bytes(fixed).subspan(9));
  pos += kFixedRequestSize + kTagSize;
  if (in.size() < pos + length + kTagSize) return Result::incomplete();
  std::string variable(length, '\0');
  if (!aead.open(in.subspan(pos, length + kTagSize), reinterpret_cast<uint8_t*>(variable.data()))) {
    return Result::invalid(0, "shadowsocks 2022: the variable header failed authentication");
  }
  Bytes rest = bytes_of(variable);
  auto address = socks5::parse_address(rest);
  if (address.state != ParseState::kComplete) {
    return Result::invalid(0, "shadowsocks 2022: bad target address in the request header");
  }
  rest = rest.subspan(address.size);
  if (rest.size() < 2) return Result::invalid(0, "shadowsocks 2022: request header ends before its padding length");
  size_t padding = get_u16(rest);
  rest = rest.subspan(2);
  if (padding > kMaxPadding || padding > rest.size()) {
    return Result::invalid(0, "shadowsocks 2022: request padding longer than 900 or than its chunk");
  }
  rest = rest.subspan(padding);
  if (padding == 0 && rest.empty()) {
    return Result::invalid(0, "shadowsocks 2022: request header without payload or padding");
  }
  head.target = std::move(address.value);
  append(head.payload, rest);
  head.aead.emplace(std::move(aead));
  return Result::complete(std::move(head), pos + length + kTagSize);
}

size_t check_response_head(Bytes head, std::string_view request_salt, uint64_t now, std::string_view& reason) {
  if (head.size() != 1 + 8 + request_salt.size() + 2) {
    reason = "shadowsocks 2022: response header of the wrong size";
    return 0;
  }
  if (head[0] != kTypeResponse) {
    reason = "shadowsocks 2022: not a response header";
    return 0;
  }
  if (!timestamp_fresh(get_u64(head.subspan(1)), now)) {
    reason = "shadowsocks 2022: response timestamp more than 30 s off our clock";
    return 0;
  }
  if (!std::equal(request_salt.begin(), request_salt.end(), head.begin() + 9,
                  [](char a, uint8_t b) { return static_cast<uint8_t>(a) == b; })) {
    reason = "shadowsocks 2022: response header answers another request (salt mismatch)";
    return 0;
  }
  size_t length = get_u16(head.subspan(9 + request_salt.size()));
  if (length == 0) reason = "shadowsocks 2022: response header with an empty first chunk";
  return length;
}

}  // namespace strait::agent::ss2022
