#include "agent/protocol/kcp_crypt.h"

#include <isa-l.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <iterator>
#include <mutex>
#include <string>

namespace strait::agent::kcp {
namespace {

// kcp-go crypt.go: the fixed CFB IV (its first 8 bytes for 64-bit block ciphers) and the salt
// of the `xor` table.
constexpr uint8_t kInitialVector[16] = {0xa7, 0x73, 0x4f, 0x9c, 0x12, 0xac, 0x1b, 0x01,
                                        0xa4, 0x15, 0xf2, 0xc1, 0xfc, 0x78, 0xe6, 0x6b};
constexpr std::string_view kKeySalt = "kcp-go";
constexpr std::string_view kXorSalt = "sH3CIVoF#rWLtJo6";
constexpr int kKeyIterations = 4096;
constexpr int kXorIterations = 32;
constexpr uint32_t kTeaDelta = 0x9e3779b9;
constexpr int kTeaCycles = 8;    // kcp-go: tea.NewCipherWithRounds(key, 16), two rounds a cycle
constexpr int kXteaCycles = 32;  // golang.org/x/crypto/xtea: the standard 64 rounds

uint32_t crc32_ieee_of(std::span<const uint8_t> bytes) {
  return crc32_gzip_refl(0, bytes.data(), bytes.size());
}
uint32_t load_le32(const uint8_t* p) { return p[0] | p[1] << 8 | p[2] << 16 | static_cast<uint32_t>(p[3]) << 24; }
void store_le32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint32_t load_be32(const uint8_t* p) { return static_cast<uint32_t>(p[0]) << 24 | p[1] << 16 | p[2] << 8 | p[3]; }
void store_be32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}

// Every crypt frames the packet the same way; subclasses only transform bytes.
class FramedCrypt : public PacketCrypt {
 public:
  void seal(std::span<uint8_t> packet) final {
    if (packet.size() < kCryptHeaderSize) return;
    next_nonce(packet.data());
    store_le32(packet.data() + kNonceSize, crc32_ieee_of(packet.subspan(kCryptHeaderSize)));
    encrypt(packet);
  }
  bool open(std::span<uint8_t> packet) final {
    if (packet.size() < kCryptHeaderSize) return false;
    decrypt(packet);
    return load_le32(packet.data() + kNonceSize) == crc32_ieee_of(packet.subspan(kCryptHeaderSize));
  }

 protected:
  virtual void encrypt(std::span<uint8_t> packet) = 0;
  virtual void decrypt(std::span<uint8_t> packet) = 0;

 private:
  // One RAND_bytes call per 64 packets instead of one each: the DRBG call costs more than
  // encrypting a small packet.
  void next_nonce(uint8_t* out) {
    if (nonce_used_ == nonce_pool_.size()) {
      RAND_bytes(nonce_pool_.data(), static_cast<int>(nonce_pool_.size()));
      nonce_used_ = 0;
    }
    std::memcpy(out, nonce_pool_.data() + nonce_used_, kNonceSize);
    nonce_used_ += kNonceSize;
  }
  std::array<uint8_t, 64 * kNonceSize> nonce_pool_{};
  size_t nonce_used_ = nonce_pool_.size();
};

class NoneCrypt final : public FramedCrypt {
 public:
  std::string_view name() const override { return "none"; }

 private:
  void encrypt(std::span<uint8_t>) override {}
  void decrypt(std::span<uint8_t>) override {}
};

class XorCrypt final : public FramedCrypt {
 public:
  explicit XorCrypt(const Key& key) {
    PKCS5_PBKDF2_HMAC(reinterpret_cast<const char*>(key.data()), static_cast<int>(key.size()),
                      reinterpret_cast<const unsigned char*>(kXorSalt.data()), static_cast<int>(kXorSalt.size()),
                      kXorIterations, EVP_sha1(), static_cast<int>(table_.size()), table_.data());
  }
  std::string_view name() const override { return "xor"; }

 private:
  // kcp-go XORs min(packet, table) bytes; longer packets keep their tail in clear.
  void apply(std::span<uint8_t> packet) {
    size_t n = std::min(packet.size(), table_.size());
    for (size_t i = 0; i < n; ++i) packet[i] ^= table_[i];
  }
  void encrypt(std::span<uint8_t> packet) override { apply(packet); }
  void decrypt(std::span<uint8_t> packet) override { apply(packet); }
  std::array<uint8_t, kMtuLimit> table_{};
};

class Salsa20Crypt final : public FramedCrypt {
 public:
  explicit Salsa20Crypt(const Key& key) : key_(key) {
    static const int ready = sodium_init();  // picks the SIMD implementation; idempotent
    (void)ready;
  }
  ~Salsa20Crypt() override { sodium_memzero(key_.data(), key_.size()); }
  std::string_view name() const override { return "salsa20"; }

 private:
  static constexpr size_t kClear = crypto_stream_salsa20_NONCEBYTES;  // the nonce prefix stays clear
  void apply(std::span<uint8_t> packet) {
    crypto_stream_salsa20_xor(packet.data() + kClear, packet.data() + kClear, packet.size() - kClear, packet.data(),
                              key_.data());
  }
  void encrypt(std::span<uint8_t> packet) override { apply(packet); }
  void decrypt(std::span<uint8_t> packet) override { apply(packet); }
  Key key_;
};

// TEA and XTEA are not in OpenSSL; both are big-endian 64-bit block ciphers with a 128-bit
// key as in golang.org/x/crypto, used in CFB-64 like the others.
using TeaKey = std::array<uint32_t, 4>;

void tea_encipher(const TeaKey& k, uint32_t& v0, uint32_t& v1) {
  uint32_t sum = 0;
  for (int i = 0; i < kTeaCycles; ++i) {
    sum += kTeaDelta;
    v0 += ((v1 << 4) + k[0]) ^ (v1 + sum) ^ ((v1 >> 5) + k[1]);
    v1 += ((v0 << 4) + k[2]) ^ (v0 + sum) ^ ((v0 >> 5) + k[3]);
  }
}

void xtea_encipher(const TeaKey& k, uint32_t& v0, uint32_t& v1) {
  uint32_t sum = 0;
  for (int i = 0; i < kXteaCycles; ++i) {
    v0 += (((v1 << 4) ^ (v1 >> 5)) + v1) ^ (sum + k[sum & 3]);
    sum += kTeaDelta;
    v1 += (((v0 << 4) ^ (v0 >> 5)) + v0) ^ (sum + k[(sum >> 11) & 3]);
  }
}

template <void (*Encipher)(const TeaKey&, uint32_t&, uint32_t&)>
class Cfb64Crypt final : public FramedCrypt {
 public:
  Cfb64Crypt(const Key& key, std::string_view name) : name_(name) {
    for (int i = 0; i < 4; ++i) key_[i] = load_be32(key.data() + 4 * i);
  }
  std::string_view name() const override { return name_; }

 private:
  static constexpr size_t kBlock = 8;
  void encipher(uint8_t* block) const {
    uint32_t v0 = load_be32(block), v1 = load_be32(block + 4);
    Encipher(key_, v0, v1);
    store_be32(block, v0);
    store_be32(block + 4, v1);
  }
  // The feedback register takes the ciphertext: the output when encrypting, the input when
  // decrypting.
  void cfb(std::span<uint8_t> packet, bool decrypting) const {
    uint8_t reg[kBlock];
    std::memcpy(reg, kInitialVector, kBlock);
    for (size_t at = 0; at < packet.size(); at += kBlock) {
      encipher(reg);
      size_t n = std::min(kBlock, packet.size() - at);
      for (size_t i = 0; i < n; ++i) {
        uint8_t in = packet[at + i];
        packet[at + i] = in ^ reg[i];
        reg[i] = decrypting ? in : packet[at + i];
      }
    }
  }
  void encrypt(std::span<uint8_t> packet) override { cfb(packet, false); }
  void decrypt(std::span<uint8_t> packet) override { cfb(packet, true); }
  TeaKey key_{};
  std::string_view name_;
};

// OpenSSL's CFB-128/CFB-64 with the fixed IV equals kcp-go's hand-written CFB. The key
// schedule runs once; each packet only resets the IV.
class EvpCfbCrypt final : public FramedCrypt {
 public:
  EvpCfbCrypt(const EVP_CIPHER* cipher, std::span<const uint8_t> key, std::string_view name) : name_(name) {
    for (int enc = 0; enc < 2; ++enc) {
      EVP_CIPHER_CTX* ctx = contexts_[enc] = EVP_CIPHER_CTX_new();
      ok_ = ok_ && ctx && EVP_CipherInit_ex(ctx, cipher, nullptr, nullptr, nullptr, enc) == 1 &&
            EVP_CIPHER_CTX_set_key_length(ctx, static_cast<int>(key.size())) == 1 &&
            EVP_CipherInit_ex(ctx, nullptr, nullptr, key.data(), kInitialVector, enc) == 1;
    }
  }
  ~EvpCfbCrypt() override {
    for (auto* ctx : contexts_) EVP_CIPHER_CTX_free(ctx);
  }
  bool ok() const { return ok_; }
  std::string_view name() const override { return name_; }

 private:
  void apply(EVP_CIPHER_CTX* ctx, std::span<uint8_t> packet) {
    int written = 0;
    EVP_CipherInit_ex(ctx, nullptr, nullptr, nullptr, kInitialVector, -1);
    EVP_CipherUpdate(ctx, packet.data(), &written, packet.data(), static_cast<int>(packet.size()));
  }
  void encrypt(std::span<uint8_t> packet) override { apply(contexts_[1], packet); }
  void decrypt(std::span<uint8_t> packet) override { apply(contexts_[0], packet); }
  EVP_CIPHER_CTX* contexts_[2] = {nullptr, nullptr};
  bool ok_ = true;
  std::string_view name_;
};

// Blowfish and CAST5 live in OpenSSL 3's legacy provider. Loading it into the default
// context would change what every other fetch in the process may return, so they get a
// context of their own.
OSSL_LIB_CTX* legacy_context() {
  static OSSL_LIB_CTX* const context = [] {
    OSSL_LIB_CTX* ctx = OSSL_LIB_CTX_new();
    if (ctx && (!OSSL_PROVIDER_load(ctx, "legacy") || !OSSL_PROVIDER_load(ctx, "default"))) {
      OSSL_LIB_CTX_free(ctx);
      ctx = nullptr;
    }
    return ctx;
  }();
  return context;
}

enum class Kind { kEvp, kEvpLegacy, kSalsa20, kTea, kXtea, kXor, kNone, kNull, kUnavailable };

struct MethodEntry {
  std::string_view name;
  Kind kind;
  const char* evp_name;
  size_t key_size;
};

constexpr MethodEntry kMethods[] = {
    {"aes", Kind::kEvp, "AES-256-CFB", 32},       {"aes-128", Kind::kEvp, "AES-128-CFB", 16},
    {"aes-192", Kind::kEvp, "AES-192-CFB", 24},   {"salsa20", Kind::kSalsa20, nullptr, 32},
    {"blowfish", Kind::kEvpLegacy, "BF-CFB", 32}, {"twofish", Kind::kUnavailable, nullptr, 32},
    {"cast5", Kind::kEvpLegacy, "CAST5-CFB", 16}, {"3des", Kind::kEvp, "DES-EDE3-CFB", 24},
    {"sm4", Kind::kEvp, "SM4-CFB", 16},           {"tea", Kind::kTea, nullptr, 16},
    {"xtea", Kind::kXtea, nullptr, 16},           {"xor", Kind::kXor, nullptr, 32},
    {"none", Kind::kNone, nullptr, 0},            {"null", Kind::kNull, nullptr, 0},
};

const MethodEntry* find_entry(std::string_view method, UnknownCrypt unknown) {
  for (const auto& entry : kMethods) {
    if (entry.name == method) return &entry;
  }
  return unknown == UnknownCrypt::kUseAes ? &kMethods[0] : nullptr;
}

const EVP_CIPHER* fetch_cipher(const MethodEntry& entry) {
  OSSL_LIB_CTX* ctx = entry.kind == Kind::kEvpLegacy ? legacy_context() : nullptr;
  if (entry.kind == Kind::kEvpLegacy && !ctx) return nullptr;
  // Fetched once per name for the life of the process; fetching is a locked table lookup.
  static EVP_CIPHER* cache[std::size(kMethods)] = {};
  static std::once_flag once[std::size(kMethods)];
  size_t index = static_cast<size_t>(&entry - kMethods);
  std::call_once(once[index], [&] { cache[index] = EVP_CIPHER_fetch(ctx, entry.evp_name, nullptr); });
  return cache[index];
}

}  // namespace

PacketCrypt::~PacketCrypt() = default;

Key derive_key(std::string_view key) {
  Key out{};
  PKCS5_PBKDF2_HMAC(key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(kKeySalt.data()),
                    static_cast<int>(kKeySalt.size()), kKeyIterations, EVP_sha1(), static_cast<int>(out.size()),
                    out.data());
  return out;
}

std::string_view resolve_crypt_name(std::string_view method, UnknownCrypt unknown) {
  const MethodEntry* entry = find_entry(method, unknown);
  return entry ? entry->name : std::string_view();
}

std::unique_ptr<PacketCrypt> make_packet_crypt(std::string_view method, std::string_view key, absl::Status& error,
                                               UnknownCrypt unknown) {
  const MethodEntry* entry = find_entry(method, unknown);
  // Refuse before paying for the key derivation.
  if (!entry || entry->kind == Kind::kNull || entry->kind == Kind::kUnavailable) {
    return make_packet_crypt_with_key(method, Key{}, error, unknown);
  }
  return make_packet_crypt_with_key(method, derive_key(key), error, unknown);
}

std::unique_ptr<PacketCrypt> make_packet_crypt_with_key(std::string_view method, const Key& key, absl::Status& error,
                                                        UnknownCrypt unknown) {
  error = absl::OkStatus();
  const MethodEntry* entry = find_entry(method, unknown);
  if (!entry) {
    error = absl::InvalidArgumentError(
        "kcp: unknown crypt \"" + std::string(method) +
        "\" (known: aes, aes-128, aes-192, salsa20, blowfish, cast5, 3des, sm4, tea, xtea, xor, none, null)");
    return nullptr;
  }
  switch (entry->kind) {
    case Kind::kNull:
      return nullptr;
    case Kind::kUnavailable:
      error = absl::UnimplementedError("kcp: crypt \"" + std::string(entry->name) +
                                       "\" is not available in this build (no implementation in OpenSSL)");
      return nullptr;
    case Kind::kNone:
      return std::make_unique<NoneCrypt>();
    case Kind::kXor:
      return std::make_unique<XorCrypt>(key);
    case Kind::kSalsa20:
      return std::make_unique<Salsa20Crypt>(key);
    case Kind::kTea:
      return std::make_unique<Cfb64Crypt<tea_encipher>>(key, entry->name);
    case Kind::kXtea:
      return std::make_unique<Cfb64Crypt<xtea_encipher>>(key, entry->name);
    case Kind::kEvp:
    case Kind::kEvpLegacy:
      break;
  }
  const EVP_CIPHER* cipher = fetch_cipher(*entry);
  if (!cipher) {
    error = absl::UnavailableError(std::string("kcp: crypt \"") + std::string(entry->name) + "\" needs OpenSSL's " +
                                   entry->evp_name +
                                   (entry->kind == Kind::kEvpLegacy ? ", from the legacy provider, which did not load"
                                                                    : ", which this OpenSSL does not provide"));
    return nullptr;
  }
  auto crypt = std::make_unique<EvpCfbCrypt>(cipher, std::span<const uint8_t>(key.data(), entry->key_size), entry->name);
  if (!crypt->ok()) {
    error = absl::InternalError("kcp: OpenSSL refused the " + std::string(entry->evp_name) + " key");
    return nullptr;
  }
  return crypt;
}

}  // namespace strait::agent::kcp
