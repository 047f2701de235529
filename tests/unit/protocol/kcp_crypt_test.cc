#include "agent/protocol/kcp_crypt.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"

namespace strait::agent::kcp {
namespace {

std::vector<uint8_t> unhex(std::string_view text) {
  std::string bytes = absl::HexStringToBytes(absl::string_view(text.data(), text.size()));
  return {bytes.begin(), bytes.end()};
}
std::string hex(std::span<const uint8_t> bytes) {
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

constexpr const char* kAllMethods[] = {"aes",  "aes-128", "aes-192", "salsa20", "blowfish", "cast5", "3des",
                                       "sm4",  "tea",     "xtea",    "xor",     "none"};

// The first UDP payload kcptun-client (kcp-go) sent with `--key test --nocomp --datashard 10
// --parityshard 3` and each --crypt, captured with a UDP relay between kcptun-client and
// kcptun-server: FEC data shard SEQID 0 carrying one KCP PUSH segment (conv, 8-byte smux SYN).
struct Golden {
  const char* method;
  const char* packet;
};
constexpr Golden kKcptunFirstPackets[] = {
    {"aes", "ae976873aa07300644e5920db626d434cbe7fc2e3848b03b58dfde2aa225406e0b7dcf3533108c38ec72151a4b8b2f1dc8fc654656b3086d48acafda"},
    {"aes-128", "c052cbafc7bf24c18233a47336246ff41124ff3a5211fd38d184f87c3ad4ae1cecfb2a0fe4ad9f03cba397f58b199bd25cb5cd4d905c0b172cd7c5b4"},
    {"aes-192", "18d50cd574a9746825f076fe977beab5ed93ad2664fe251bd7c2ef2851818eece7c1900b0d7bbb3e85134756f894440b9bafc50741c5563366f6b436"},
    {"salsa20", "03678959a4e5fc732ee91b8a455a8ba16498b3b5a728ae764b5571acc6366282956b348ab89196b74a9ac4e85396111e997864870aebff077fb31ffa"},
    {"blowfish", "d32d5496fa9e5f196110f4e73176a8562c58d9d2a0ff856b03cf8bdef9b7737abb7d2cc2481bd7b508a98b5f98ab76949a0411ce61dd37ec75da37ca"},
    {"cast5", "1e1a732768d920c08753552633769cc6d89aa83e6c74f04c40556c05db86a94ea741751f0244389878832ee39ef51c2afe7394e1786b210c8c61151d"},
    {"3des", "2c4e67f3772b5d9b4d4d7920603203f12d39850c99978de2e961a21a2f8bcf7955901624d59c385f90b0ef7f08e5549a0b3cf6af5380ab656f35a675"},
    {"sm4", "188254047612e91f2e4cbed78ad6d77c90f5112970c53eeb2711b0de6da0c7d24cf5fdfe1054449a2ac4da56d28d71edbedfca4b809eb6c95decaabe"},
    {"tea", "3a6fb1e52f2043a49a8d572743b10c8e70aa276e6fece4ef574f4b94a3b1394dd5d614c42540232c185a353e9e91e0870d4abdc51a5a9e3cb334a6d7"},
    {"xtea", "8be4135ba5ace5c9662fd653b9cb168ad4230d33da16d9cda4965fd4209fa973ab8a3b9ccbc093e8d769afef9b524c24d39a0b716d81ed4a6c8a3f55"},
    {"xor", "a3d5658a45af07cad571e1fac191180d3c4e8a5964fc691df78d740ea4d68b58dfdffefcb55971c61bcb65daaa935982085b58188b30b127cffcfb04"},
    {"none", "249a66ed44c33706f18cf417720fa0b8954946c400000000f10022004f00496b51000002e90300000000000000000000080000000100000003000000"},
};

TEST(KcpCryptKeys, DerivesPbkdf2Sha1AsPython) {
  // python3: hashlib.pbkdf2_hmac('sha1', key, b'kcp-go', 4096, 32).hex()
  EXPECT_EQ(hex(derive_key("it's a secrect")), "25d7d7bd51050742d8d791f2b653c6c8b2366b7e25a124cf7a2e12eaf4ffa444");
  EXPECT_EQ(hex(derive_key("test")), "fc0327c66699e5622be3b108e336991375ba429750939d57003dc89d9fed8859");
  EXPECT_EQ(hex(derive_key("")), "b23383c32eefa3753ab6db6e639a0ddc3b50ec6b6c623c9171a15ba0879945cd");
}

TEST(KcpCryptGolden, OpensWhatKcptunSent) {
  for (const auto& golden : kKcptunFirstPackets) {
    SCOPED_TRACE(golden.method);
    absl::Status error;
    auto crypt = make_packet_crypt(golden.method, "test", error);
    ASSERT_TRUE(error.ok()) << error;
    ASSERT_TRUE(crypt);
    auto packet = unhex(golden.packet);
    ASSERT_TRUE(crypt->open(packet));
    // After the header: FEC SEQID 0, TYPE 0xf1, SIZE 0x22, then a KCP PUSH (cmd 81) segment.
    EXPECT_EQ(hex(std::span(packet).subspan(kCryptHeaderSize, 8)), "00000000f1002200");
    EXPECT_EQ(packet[kCryptHeaderSize + 8 + 4], 81);
    // The same bytes under another key fail the CRC.
    auto other = make_packet_crypt(golden.method, "not test", error);
    auto again = unhex(golden.packet);
    if (std::string_view(golden.method) != "none") {
      EXPECT_FALSE(other->open(again));
    }
  }
}

TEST(KcpCryptKnownAnswer, AesCfbMatchesPythonCryptography) {
  // python3 `cryptography`: AES-CFB(key = derive_key("it's a secrect")[:n], iv = kcp-go's IV)
  // over NONCE 00..0f | CRC32 LE | 37-byte body.
  constexpr char kPlain[] =
      "000102030405060708090a0b0c0d0e0f927a16476b63702d676f207061636b657420626f64792c203337206279746573206c6f6e6721212121";
  struct {
    const char* method;
    const char* cipher;
  } cases[] = {
      {"aes", "86834343335b168ca911bf584a05f9908c776b8e53f44ca261c033623c626013762e425b84ca7d5742b8a9f53b1b7a5d5cf307d8c4b5f97098"},
      {"aes-128", "ddd7e0a7981ba3e2a7f6d51f2a266318c75aec10817bb8fea92bcb3035e22ed9e9b698e1d6531b51bee0aba58cfc14085818311ad03f861605"},
  };
  for (const auto& c : cases) {
    absl::Status error;
    auto crypt = make_packet_crypt(c.method, "it's a secrect", error);
    auto packet = unhex(c.cipher);
    ASSERT_TRUE(crypt->open(packet)) << c.method;
    EXPECT_EQ(hex(packet), kPlain) << c.method;
  }
}

TEST(KcpCryptRoundTrip, SealOpenEveryMethodAndLength) {
  std::mt19937 random(7);
  for (const char* method : kAllMethods) {
    SCOPED_TRACE(method);
    absl::Status error;
    auto sender = make_packet_crypt(method, "round trip", error);
    auto receiver = make_packet_crypt(method, "round trip", error);
    ASSERT_TRUE(sender && receiver) << error;
    EXPECT_EQ(sender->name(), method);
    for (size_t size : {size_t{20}, size_t{21}, size_t{27}, size_t{28}, size_t{36}, size_t{100}, size_t{1350}, size_t{1500}}) {
      std::vector<uint8_t> packet(size);
      for (auto& b : packet) b = static_cast<uint8_t>(random());
      auto body = std::vector<uint8_t>(packet.begin() + kCryptHeaderSize, packet.end());
      sender->seal(packet);
      if (std::string_view(method) != "none" && size > 24) {
        EXPECT_NE(std::vector<uint8_t>(packet.begin() + kCryptHeaderSize, packet.end()), body) << size;
      }
      ASSERT_TRUE(receiver->open(packet)) << size;
      EXPECT_EQ(std::vector<uint8_t>(packet.begin() + kCryptHeaderSize, packet.end()), body) << size;
    }
    std::vector<uint8_t> sealed(64, 0x42), first;
    sender->seal(sealed);
    first = sealed;
    std::fill(sealed.begin(), sealed.end(), 0x42);
    sender->seal(sealed);
    EXPECT_NE(first, sealed) << "a fresh nonce per packet";
  }
}

TEST(KcpCryptRefusals, WrongKeyTruncatedAndFlippedBitsFail) {
  for (const char* method : kAllMethods) {
    SCOPED_TRACE(method);
    absl::Status error;
    auto crypt = make_packet_crypt(method, "k1", error);
    auto wrong = make_packet_crypt(method, "k2", error);
    std::vector<uint8_t> packet(200, 7);
    crypt->seal(packet);
    auto copy = packet;
    if (std::string_view(method) != "none") {
      EXPECT_FALSE(wrong->open(copy));
    }
    copy = packet;
    copy[150] ^= 1;
    EXPECT_FALSE(crypt->open(copy));
    std::vector<uint8_t> short_packet(kCryptHeaderSize - 1, 0);
    EXPECT_FALSE(crypt->open(short_packet));
    EXPECT_FALSE(crypt->open(std::span<uint8_t>()));
  }
}

TEST(KcpCryptNames, NullUnknownTwofishAndTheGostFallback) {
  absl::Status error;
  EXPECT_EQ(make_packet_crypt("null", "k", error), nullptr);
  EXPECT_TRUE(error.ok());
  EXPECT_EQ(make_packet_crypt("rot13", "k", error), nullptr);
  EXPECT_EQ(error.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(error.message().find("rot13"), std::string::npos);
  EXPECT_EQ(make_packet_crypt("twofish", "k", error), nullptr);
  EXPECT_EQ(error.code(), absl::StatusCode::kUnimplemented);
  EXPECT_NE(error.message().find("twofish"), std::string::npos);
  // GOST: unknown and empty names are aes.
  EXPECT_EQ(resolve_crypt_name("", UnknownCrypt::kUseAes), "aes");
  EXPECT_EQ(resolve_crypt_name("rot13", UnknownCrypt::kUseAes), "aes");
  EXPECT_EQ(resolve_crypt_name("rot13", UnknownCrypt::kRefuse), "");
  EXPECT_EQ(resolve_crypt_name("AES", UnknownCrypt::kRefuse), "");  // names are case-sensitive, as in kcptun
  auto fallback = make_packet_crypt("", "test", error, UnknownCrypt::kUseAes);
  ASSERT_TRUE(fallback && error.ok());
  EXPECT_EQ(fallback->name(), "aes");
  auto packet = unhex(kKcptunFirstPackets[0].packet);
  EXPECT_TRUE(fallback->open(packet));
}

}  // namespace
}  // namespace strait::agent::kcp
