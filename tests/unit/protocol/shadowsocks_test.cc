#include "agent/protocol/shadowsocks.h"

#include <gtest/gtest.h>

#include "absl/strings/escaping.h"

namespace strait::agent::ss_wire {
namespace {

std::string hex(std::string_view bytes) { return absl::BytesToHexString(absl::string_view(bytes.data(), bytes.size())); }
std::string unhex(std::string_view text) { return absl::HexStringToBytes(absl::string_view(text.data(), text.size())); }
Bytes bytes_of(const std::string& text) { return {reinterpret_cast<const uint8_t*>(text.data()), text.size()}; }

std::string counting_salt(size_t size) {
  std::string salt;
  for (size_t i = 0; i < size; ++i) salt.push_back(static_cast<char>(i));
  return salt;
}

// Vectors computed with Python's hashlib/hmac and the `cryptography` AEADs (an independent
// implementation): password "foobar", salt 00 01 02 ..., plaintext "hello".
constexpr char kAes128Stream[] =
    "000102030405060708090a0b0c0d0e0ff84b9cc69ae6388cf048d4698de9491ca6e15761c1b623fa94803f4a9586911f824240b6bde8c9";
constexpr char kChachaStream[] =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f5d928c1cfb3122f507f35f22a7e52bf8f7bfc7e7dd301fb2"
    "88ad174e3e1e3ac4c53ea7748f656e";
// UDP: 127.0.0.1:53 then "ping".
constexpr char kAes128Packet[] =
    "000102030405060708090a0b0c0d0e0ff9316b0619877743efd29090a7beb82fd5ff2897714f67bea43e5e";
constexpr char kChachaPacket[] =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f5ce824f542006cde43a828cfa745ea8980fef4a4d46c69f4"
    "369a04";

TEST(SsMethod, FindsNamesAndAliasesCaseInsensitively) {
  EXPECT_EQ(find_method("aes-128-gcm")->key_size, 16u);
  EXPECT_EQ(find_method("AEAD_AES_256_GCM")->name, "aes-256-gcm");
  EXPECT_EQ(find_method("Chacha20-IETF-Poly1305")->cipher, Cipher::kChacha20Poly1305);
  EXPECT_EQ(find_method("aead_chacha20_poly1305")->key_size, 32u);
  EXPECT_FALSE(find_method("aes-256-cfb"));
  EXPECT_FALSE(find_method(""));
}

TEST(SsKeys, BytesToKeyMatchesOpenSsl) {
  // `openssl enc -md md5 -nosalt -P -pass pass:foobar` prints the same bytes.
  EXPECT_EQ(hex(password_to_key("foobar", 16)), "3858f62230ac3c915f300c664312c63f");
  EXPECT_EQ(hex(password_to_key("foobar", 32)), "3858f62230ac3c915f300c664312c63f568378529614d22ddb49237d2f60bfdf");
}

TEST(SsKeys, SubkeyIsHkdfSha1WithSsSubkeyInfo) {
  std::string salt16 = counting_salt(16);
  std::string salt32 = counting_salt(32);
  EXPECT_EQ(hex(derive_subkey(password_to_key("foobar", 16), bytes_of(salt16))), "e59e945699e8699144c332b9e641ef65");
  EXPECT_EQ(hex(derive_subkey(password_to_key("foobar", 32), bytes_of(salt32))),
            "c4f0e9818348b2f30188d82b37a4cddc9f5ea531070ec67225160209faff573c");
}

void expect_golden_stream(const char* method_name, const char* expected) {
  auto method = *find_method(method_name);
  std::string key = password_to_key("foobar", method.key_size);
  std::string salt = counting_salt(method.key_size);
  StreamEncryptor encryptor(method, key, bytes_of(salt));
  std::string out;
  encryptor.seal(bytes_of(std::string("hello")), out);
  EXPECT_EQ(hex(out), expected) << method_name;

  StreamDecryptor decryptor(method, key);
  std::string plain;
  std::string wire = unhex(expected);
  auto decoded = decryptor.decode(bytes_of(wire), plain);
  EXPECT_FALSE(decoded.invalid) << decoded.reason;
  EXPECT_EQ(decoded.consumed, wire.size());
  EXPECT_EQ(plain, "hello");
  EXPECT_EQ(decryptor.salt(), salt);
}

TEST(SsStream, GoldenChunksAes128Gcm) { expect_golden_stream("aes-128-gcm", kAes128Stream); }
TEST(SsStream, GoldenChunksChacha20) { expect_golden_stream("chacha20-ietf-poly1305", kChachaStream); }

TEST(SsStream, RoundTripAcrossChunkBoundariesFedByteByByte) {
  for (const char* name : {"aes-128-gcm", "aes-256-gcm", "chacha20-ietf-poly1305"}) {
    auto method = *find_method(name);
    std::string key = password_to_key("secret", method.key_size);
    std::string message;
    for (size_t i = 0; i < 3 * kMaxPayload + 7; ++i) message.push_back(static_cast<char>(i * 31));
    StreamEncryptor encryptor(method, key);
    std::string wire;
    encryptor.seal(bytes_of(message), wire);
    // Four chunks: three full ones and 7 bytes.
    EXPECT_EQ(wire.size(), method.key_size + 4 * (kSealedLengthSize + kTagSize) + message.size()) << name;

    StreamDecryptor decryptor(method, key);
    std::string received;
    std::string plain;
    for (char byte : wire) {
      received.push_back(byte);
      auto decoded = decryptor.decode(bytes_of(received), plain);
      ASSERT_FALSE(decoded.invalid) << decoded.reason;
      received.erase(0, decoded.consumed);
    }
    EXPECT_TRUE(received.empty());
    EXPECT_EQ(plain, message) << name;
  }
}

TEST(SsStream, SecondSealSendsNoSecondSalt) {
  auto method = *find_method("aes-128-gcm");
  std::string key = password_to_key("k", 16);
  StreamEncryptor encryptor(method, key);
  std::string first;
  std::string second;
  encryptor.seal(bytes_of(std::string("a")), first);
  encryptor.seal(bytes_of(std::string("b")), second);
  EXPECT_EQ(first.size(), 16 + kSealedLengthSize + 1 + kTagSize);
  EXPECT_EQ(second.size(), kSealedLengthSize + 1 + kTagSize);
  StreamDecryptor decryptor(method, key);
  std::string plain;
  std::string wire = first + second;
  EXPECT_FALSE(decryptor.decode(bytes_of(wire), plain).invalid);
  EXPECT_EQ(plain, "ab");
}

TEST(SsStream, RefusesTamperingAndStaysRefused) {
  auto method = *find_method("aes-256-gcm");
  std::string key = password_to_key("secret", 32);
  StreamEncryptor encryptor(method, key);
  std::string wire;
  encryptor.seal(bytes_of(std::string("payload")), wire);
  for (size_t position : {size_t{0}, size_t{32}, size_t{32 + 17}, size_t{32 + 18}, wire.size() - 1}) {
    std::string tampered = wire;
    tampered[position] = static_cast<char>(tampered[position] ^ 0x01);
    StreamDecryptor decryptor(method, key);
    std::string plain;
    auto decoded = decryptor.decode(bytes_of(tampered), plain);
    EXPECT_TRUE(decoded.invalid) << "flipped byte " << position;
    EXPECT_TRUE(plain.empty());
    EXPECT_TRUE(decryptor.failed());
    EXPECT_TRUE(decryptor.decode(bytes_of(wire), plain).invalid) << "a failed stream is never read again";
  }
}

TEST(SsStream, WrongPasswordFailsAtTheFirstLength) {
  auto method = *find_method("chacha20-ietf-poly1305");
  StreamEncryptor encryptor(method, password_to_key("right", 32));
  std::string wire;
  encryptor.seal(bytes_of(std::string("x")), wire);
  StreamDecryptor decryptor(method, password_to_key("wrong", 32));
  std::string plain;
  auto decoded = decryptor.decode(bytes_of(wire), plain);
  EXPECT_TRUE(decoded.invalid);
  EXPECT_EQ(decoded.consumed, 32u);
}

// A length chunk sealed by hand with the stream's first nonce.
std::string stream_with_length(const Method& method, const std::string& key, uint16_t length) {
  std::string salt = counting_salt(method.key_size);
  AeadCipher aead(method.cipher, derive_subkey(key, bytes_of(salt)), true);
  std::string wire = salt;
  const uint8_t bytes[2] = {static_cast<uint8_t>(length >> 8), static_cast<uint8_t>(length & 0xFF)};
  aead.seal(bytes, wire);
  return wire;
}

TEST(SsStream, RefusesLengthsOutsideOneTo3FFF) {
  auto method = *find_method("aes-128-gcm");
  std::string key = password_to_key("k", 16);
  for (uint16_t length : {uint16_t{0}, uint16_t{0x4000}, uint16_t{0xFFFF}}) {
    StreamDecryptor decryptor(method, key);
    std::string plain;
    std::string wire = stream_with_length(method, key, length);
    EXPECT_TRUE(decryptor.decode(bytes_of(wire), plain).invalid) << length;
  }
  StreamDecryptor decryptor(method, key);
  std::string plain;
  std::string wire = stream_with_length(method, key, 0x3FFF);
  auto decoded = decryptor.decode(bytes_of(wire), plain);
  EXPECT_FALSE(decoded.invalid);
  EXPECT_EQ(decryptor.next_unit_size(), 0x3FFFu + kTagSize) << "waits for the whole payload";
}

TEST(SsStream, NeedsTheWholeSaltFirst) {
  auto method = *find_method("aes-256-gcm");
  StreamDecryptor decryptor(method, password_to_key("k", 32));
  std::string partial(31, 'x');
  std::string plain;
  auto decoded = decryptor.decode(bytes_of(partial), plain);
  EXPECT_EQ(decoded.consumed, 0u);
  EXPECT_FALSE(decoded.invalid);
  EXPECT_EQ(decryptor.next_unit_size(), 32u);
  EXPECT_TRUE(decryptor.salt().empty());
}

void expect_golden_packet(const char* method_name, const char* expected) {
  auto method = *find_method(method_name);
  std::string key = password_to_key("foobar", method.key_size);
  std::string salt = counting_salt(method.key_size);
  std::string plain = unhex("017f0000010035") + "ping";
  EXPECT_EQ(hex(seal_packet(method, key, bytes_of(plain), bytes_of(salt))), expected) << method_name;
  std::string packet = unhex(expected);
  auto opened = open_packet(method, key, bytes_of(packet));
  ASSERT_TRUE(opened);
  EXPECT_EQ(*opened, plain);
}

TEST(SsPacket, GoldenAes128Gcm) { expect_golden_packet("aes-128-gcm", kAes128Packet); }
TEST(SsPacket, GoldenChacha20) { expect_golden_packet("chacha20-ietf-poly1305", kChachaPacket); }

TEST(SsPacket, RefusesShortTamperedAndWrongKeyPackets) {
  auto method = *find_method("aes-128-gcm");
  std::string key = password_to_key("k", 16);
  std::string packet = seal_packet(method, key, bytes_of(std::string("\x01\x01\x02\x03\x04\x00\x50hi", 9)));
  EXPECT_TRUE(open_packet(method, key, bytes_of(packet)));
  EXPECT_FALSE(open_packet(method, password_to_key("other", 16), bytes_of(packet)));
  for (size_t position = 0; position < packet.size(); position += 5) {
    std::string tampered = packet;
    tampered[position] = static_cast<char>(tampered[position] ^ 0x80);
    EXPECT_FALSE(open_packet(method, key, bytes_of(tampered))) << position;
  }
  std::string short_packet = packet.substr(0, 16 + kTagSize - 1);
  EXPECT_FALSE(open_packet(method, key, bytes_of(short_packet)));
  EXPECT_FALSE(open_packet(method, key, {}));
}

TEST(SsPacket, EverySealUsesAFreshSalt) {
  auto method = *find_method("aes-256-gcm");
  std::string key = password_to_key("k", 32);
  std::string plain = "same";
  EXPECT_NE(seal_packet(method, key, bytes_of(plain)).substr(0, 32), seal_packet(method, key, bytes_of(plain)).substr(0, 32));
}

}  // namespace
}  // namespace strait::agent::ss_wire
