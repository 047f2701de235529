#include "agent/protocol/shadowsocks.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <algorithm>
#include <stdexcept>

#include "agent/protocol/blake3.h"
#include "agent/protocol/shadowsocks2022.h"
#include "common/strings.h"

namespace strait::agent::ss_wire {
namespace {

struct MethodName {
  std::string_view name;
  Method method;
};

constexpr Method kAes128{Cipher::kAes128Gcm, "aes-128-gcm", 16};
constexpr Method kAes256{Cipher::kAes256Gcm, "aes-256-gcm", 32};
constexpr Method kChacha{Cipher::kChacha20Poly1305, "chacha20-ietf-poly1305", 32};
constexpr Method kAes128In2022{Cipher::kAes128Gcm, "2022-blake3-aes-128-gcm", 16, true};
constexpr Method kAes256In2022{Cipher::kAes256Gcm, "2022-blake3-aes-256-gcm", 32, true};
constexpr Method kChachaIn2022{Cipher::kChacha20Poly1305, "2022-blake3-chacha20-poly1305", 32, true};

constexpr MethodName kMethods[] = {
    {"aes-128-gcm", kAes128},
    {"AEAD_AES_128_GCM", kAes128},  // go-shadowsocks2's names, which GOST accepts
    {"aes-256-gcm", kAes256},
    {"AEAD_AES_256_GCM", kAes256},
    {"chacha20-ietf-poly1305", kChacha},
    {"AEAD_CHACHA20_POLY1305", kChacha},
    {"2022-blake3-aes-128-gcm", kAes128In2022},
    {"2022-blake3-aes-256-gcm", kAes256In2022},
    {"2022-blake3-chacha20-poly1305", kChachaIn2022},
};

// Fetched once (explicit fetches are what OpenSSL 3 makes fast); immutable, shared by all
// threads, kept for the life of the process.
const EVP_CIPHER* evp_cipher(Cipher cipher) {
  static EVP_CIPHER* const aes128 = EVP_CIPHER_fetch(nullptr, "AES-128-GCM", nullptr);
  static EVP_CIPHER* const aes256 = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  static EVP_CIPHER* const chacha = EVP_CIPHER_fetch(nullptr, "ChaCha20-Poly1305", nullptr);
  switch (cipher) {
    case Cipher::kAes128Gcm:
      return aes128;
    case Cipher::kAes256Gcm:
      return aes256;
    case Cipher::kChacha20Poly1305:
      return chacha;
  }
  return nullptr;
}

const uint8_t* data_of(std::string_view text) { return reinterpret_cast<const uint8_t*>(text.data()); }
Bytes bytes_of(std::string_view text) { return {data_of(text), text.size()}; }

std::string random_salt(size_t size) {
  std::string salt(size, '\0');
  // RAND_bytes fails only when the system has no entropy source at all.
  if (RAND_bytes(reinterpret_cast<unsigned char*>(salt.data()), static_cast<int>(size)) != 1) {
    throw std::runtime_error("shadowsocks: no randomness for a salt");
  }
  return salt;
}

Decoded fail(Decoded result, bool& failed, std::string_view reason) {
  failed = true;
  result.invalid = true;
  result.reason = reason;
  return result;
}

}  // namespace

std::optional<Method> find_method(std::string_view name) {
  for (const auto& entry : kMethods) {
    if (common::iequals(entry.name, name)) return entry.method;
  }
  return std::nullopt;
}

std::string method_names() {
  return "aes-128-gcm, aes-256-gcm, chacha20-ietf-poly1305, 2022-blake3-aes-128-gcm, 2022-blake3-aes-256-gcm, "
         "2022-blake3-chacha20-poly1305";
}

std::string password_to_key(std::string_view password, size_t key_size) {
  std::string key;
  std::string block;
  unsigned char digest[EVP_MAX_MD_SIZE];
  while (key.size() < key_size) {
    std::string input = block;
    input.append(password);
    unsigned int size = 0;
    EVP_Digest(input.data(), input.size(), digest, &size, EVP_md5(), nullptr);
    block.assign(reinterpret_cast<const char*>(digest), size);
    key += block;
  }
  key.resize(key_size);
  return key;
}

std::string derive_subkey(std::string_view master_key, Bytes salt) {
  static EVP_KDF* const hkdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  std::string subkey(master_key.size(), '\0');
  EVP_KDF_CTX* context = EVP_KDF_CTX_new(hkdf);
  char digest[] = "SHA1";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<char*>(master_key.data()), master_key.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<uint8_t*>(salt.data()), salt.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<char*>(kSubkeyInfo.data()), kSubkeyInfo.size()),
      OSSL_PARAM_construct_end(),
  };
  EVP_KDF_derive(context, reinterpret_cast<unsigned char*>(subkey.data()), subkey.size(), params);
  EVP_KDF_CTX_free(context);
  return subkey;
}

std::string session_subkey(const Method& method, std::string_view key, Bytes salt) {
  if (!method.edition_2022) return derive_subkey(key, salt);
  std::string material(key);
  material.append(reinterpret_cast<const char*>(salt.data()), salt.size());
  std::string subkey(method.key_size, '\0');
  blake3::derive_key(ss2022::kSessionSubkeyContext, bytes_of(material),
                     std::span(reinterpret_cast<uint8_t*>(subkey.data()), subkey.size()));
  return subkey;
}

struct AeadCipher::Context {
  EVP_CIPHER_CTX* evp = EVP_CIPHER_CTX_new();
  ~Context() { EVP_CIPHER_CTX_free(evp); }
};

AeadCipher::AeadCipher(Cipher cipher, std::string_view subkey, bool encrypt) : context_(std::make_unique<Context>()) {
  EVP_CipherInit_ex2(context_->evp, evp_cipher(cipher), data_of(subkey), nullptr, encrypt ? 1 : 0, nullptr);
}

AeadCipher::~AeadCipher() = default;
AeadCipher::AeadCipher(AeadCipher&&) noexcept = default;
AeadCipher& AeadCipher::operator=(AeadCipher&&) noexcept = default;

void AeadCipher::seal(Bytes plain, std::string& out) {
  EVP_CIPHER_CTX* evp = context_->evp;
  EVP_CipherInit_ex2(evp, nullptr, nullptr, nonce_.data(), -1, nullptr);
  size_t start = out.size();
  out.resize(start + plain.size() + kTagSize);
  auto* sealed = reinterpret_cast<unsigned char*>(out.data() + start);
  int written = 0;
  int final_written = 0;
  if (!plain.empty()) EVP_CipherUpdate(evp, sealed, &written, plain.data(), static_cast<int>(plain.size()));
  EVP_CipherFinal_ex(evp, sealed + written, &final_written);
  EVP_CIPHER_CTX_ctrl(evp, EVP_CTRL_AEAD_GET_TAG, static_cast<int>(kTagSize), sealed + plain.size());
  for (auto& byte : nonce_) {
    if (++byte != 0) break;
  }
}

void AeadCipher::set_nonce(std::span<const uint8_t, kNonceSize> nonce) { std::copy(nonce.begin(), nonce.end(), nonce_.begin()); }

bool AeadCipher::open(Bytes sealed, uint8_t* out) {
  if (sealed.size() < kTagSize) return false;
  EVP_CIPHER_CTX* evp = context_->evp;
  EVP_CipherInit_ex2(evp, nullptr, nullptr, nonce_.data(), -1, nullptr);
  size_t size = sealed.size() - kTagSize;
  int written = 0;
  int final_written = 0;
  if (size > 0) EVP_CipherUpdate(evp, out, &written, sealed.data(), static_cast<int>(size));
  EVP_CIPHER_CTX_ctrl(evp, EVP_CTRL_AEAD_SET_TAG, static_cast<int>(kTagSize), const_cast<uint8_t*>(sealed.data() + size));
  if (EVP_CipherFinal_ex(evp, out + written, &final_written) != 1) return false;
  for (auto& byte : nonce_) {
    if (++byte != 0) break;
  }
  return true;
}

StreamEncryptor::StreamEncryptor(const Method& method, std::string_view master_key)
    : StreamEncryptor(method, master_key, bytes_of(random_salt(method.key_size))) {}

StreamEncryptor::StreamEncryptor(const Method& method, std::string_view master_key, Bytes salt)
    : method_(method), salt_(salt.begin(), salt.end()), aead_(method.cipher, session_subkey(method, master_key, salt), true) {}

void StreamEncryptor::seal(Bytes plain, std::string& out) {
  // A SIP022 response header carries the first payload's length: it waits for payload.
  if (opening_ && !opening_->request && plain.empty()) return;
  if (!salt_sent_) {
    out += salt_;
    salt_sent_ = true;
  }
  const size_t max_payload = method_.edition_2022 ? kMaxPayload2022 : kMaxPayload;
  out.reserve(out.size() + plain.size() + (plain.size() / max_payload + 1) * (kSealedLengthSize + kTagSize));
  if (opening_) {
    plain = plain.subspan(ss2022::seal_opening(*opening_, aead_, plain, out));
    opening_.reset();
  }
  while (!plain.empty()) {
    size_t size = std::min(plain.size(), max_payload);
    const uint8_t length[kLengthSize] = {static_cast<uint8_t>(size >> 8), static_cast<uint8_t>(size & 0xFF)};
    aead_.seal(length, out);
    aead_.seal(plain.first(size), out);
    plain = plain.subspan(size);
  }
}

StreamDecryptor::StreamDecryptor(const Method& method, std::string master_key)
    : method_(method), master_key_(std::move(master_key)) {}

StreamDecryptor::StreamDecryptor(const Method& method, std::string salt, AeadCipher established)
    : method_(method), salt_(std::move(salt)), aead_(std::move(established)) {}

size_t StreamDecryptor::next_unit_size() const {
  if (!aead_) return method_.key_size;
  if (!request_salt_.empty()) return ss2022::response_head_size(method_) + kTagSize;
  return payload_size_ == 0 ? kSealedLengthSize : payload_size_ + kTagSize;
}

Decoded StreamDecryptor::decode(Bytes in, std::span<uint8_t> out) {
  Decoded result;
  if (failed_) return fail(result, failed_, "shadowsocks: the stream failed before");
  if (!aead_) {
    if (in.size() < method_.key_size) return result;
    salt_.assign(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(method_.key_size));
    aead_.emplace(method_.cipher, session_subkey(method_, master_key_, bytes_of(salt_)), false);
    result.consumed = method_.key_size;
  }
  const size_t max_payload = method_.edition_2022 ? kMaxPayload2022 : kMaxPayload;
  for (;;) {
    Bytes rest = in.subspan(result.consumed);
    if (!request_salt_.empty()) {
      // SIP022 §3.1.3: the response header is also the first length chunk.
      size_t sealed_size = ss2022::response_head_size(method_) + kTagSize;
      if (rest.size() < sealed_size) return result;
      uint8_t head[ss2022::kMaxResponseHeadSize];
      if (!aead_->open(rest.first(sealed_size), head)) {
        return fail(result, failed_, "shadowsocks 2022: the response header failed authentication (wrong key?)");
      }
      std::string_view reason;
      size_t size = ss2022::check_response_head(std::span(head, sealed_size - kTagSize), request_salt_,
                                                ss2022::unix_now(), reason);
      if (size == 0) return fail(result, failed_, reason);
      request_salt_.clear();
      payload_size_ = size;
      result.consumed += sealed_size;
      continue;
    }
    if (payload_size_ == 0) {
      if (rest.size() < kSealedLengthSize) return result;
      uint8_t length[kLengthSize];
      if (!aead_->open(rest.first(kSealedLengthSize), length)) {
        return fail(result, failed_, "shadowsocks: a chunk length failed authentication (wrong key?)");
      }
      size_t size = static_cast<size_t>(length[0]) << 8 | length[1];
      if (size == 0 || size > max_payload) return fail(result, failed_, "shadowsocks: chunk length out of range");
      payload_size_ = size;
      result.consumed += kSealedLengthSize;
      continue;
    }
    if (rest.size() < payload_size_ + kTagSize || out.size() - result.produced < payload_size_) return result;
    if (!aead_->open(rest.first(payload_size_ + kTagSize), out.data() + result.produced)) {
      return fail(result, failed_, "shadowsocks: a chunk failed authentication");
    }
    result.consumed += payload_size_ + kTagSize;
    result.produced += payload_size_;
    payload_size_ = 0;
  }
}

Decoded StreamDecryptor::decode(Bytes in, std::string& out) {
  Decoded total;
  const size_t max_payload = method_.edition_2022 ? kMaxPayload2022 : kMaxPayload;
  for (;;) {
    size_t start = out.size();
    out.resize(start + max_payload);
    auto step = decode(in.subspan(total.consumed), std::span(reinterpret_cast<uint8_t*>(out.data() + start), max_payload));
    out.resize(start + step.produced);
    total.consumed += step.consumed;
    total.produced += step.produced;
    if (step.invalid) {
      total.invalid = true;
      total.reason = step.reason;
      return total;
    }
    if (step.consumed == 0) return total;
  }
}

namespace {

class AeadPacketCodec final : public PacketCodec {
 public:
  AeadPacketCodec(const Method& method, std::string master_key) : method_(method), key_(std::move(master_key)) {}
  std::string seal(Bytes plain) override { return seal_packet(method_, key_, plain); }
  std::optional<std::string> open(Bytes packet) override { return open_packet(method_, key_, packet); }

 private:
  Method method_;
  std::string key_;
};

}  // namespace

std::unique_ptr<PacketCodec> make_aead_packet_codec(const Method& method, std::string master_key) {
  return std::make_unique<AeadPacketCodec>(method, std::move(master_key));
}

std::string seal_packet(const Method& method, std::string_view master_key, Bytes plain, Bytes salt) {
  std::string packet(salt.begin(), salt.end());
  AeadCipher aead(method.cipher, derive_subkey(master_key, salt), true);
  aead.seal(plain, packet);
  return packet;
}

std::string seal_packet(const Method& method, std::string_view master_key, Bytes plain) {
  return seal_packet(method, master_key, plain, bytes_of(random_salt(method.key_size)));
}

std::optional<std::string> open_packet(const Method& method, std::string_view master_key, Bytes packet) {
  if (packet.size() < method.key_size + kTagSize) return std::nullopt;
  Bytes salt = packet.first(method.key_size);
  Bytes sealed = packet.subspan(method.key_size);
  AeadCipher aead(method.cipher, derive_subkey(master_key, salt), false);
  std::string plain(sealed.size() - kTagSize, '\0');
  if (!aead.open(sealed, reinterpret_cast<uint8_t*>(plain.data()))) return std::nullopt;
  return plain;
}

}  // namespace strait::agent::ss_wire
