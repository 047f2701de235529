#include "agent/protocol/blake3.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace strait::agent {
namespace {

// The official vectors (BLAKE3-team/BLAKE3 test_vectors/test_vectors.json): input i is
// bytes 0, 1, ..., 250, 0, 1, ... of length `length`; derive_key uses kContext.
constexpr char kContext[] = "BLAKE3 2019-12-27 16:29:52 test vectors context";

struct Vector {
  size_t length;
  const char* hash;        // first 32 bytes of the extended output
  const char* derive_key;  // first 32 bytes
};

constexpr Vector kVectors[] = {
    {0, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
     "2cc39783c223154fea8dfb7c1b1660f2ac2dcbd1c1de8277b0b0dd39b7e50d7d"},
    {1, "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213",
     "b3e2e340a117a499c6cf2398a19ee0d29cca2bb7404c73063382693bf66cb06c"},
    {1023, "10108970eeda3eb932baac1428c7a2163b0e924c9a9e25b35bba72b28f70bd11",
     "74a16c1c3d44368a86e1ca6df64be6a2f64cce8f09220787450722d85725dea5"},
    {1024, "42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7",
     "7356cd7720d5b66b6d0697eb3177d9f8d73a4a5c5e968896eb6a689684302706"},
    {1025, "d00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444",
     "effaa245f065fbf82ac186839a249707c3bddf6d3fdda22d1b95a3c970379bcb"},
    {2048, "e776b6028c7cd22a4d0ba182a8bf62205d2ef576467e838ed6f2529b85fba24a",
     "7b2945cb4fef70885cc5d78a87bf6f6207dd901ff239201351ffac04e1088a23"},
    {3072, "b98cb0ff3623be03326b373de6b9095218513e64f1ee2edd2525c7ad1e5cffd2",
     "050df97f8c2ead654d9bb3ab8c9178edcd902a32f8495949feadcc1e0480c46b"},
    {3073, "7124b49501012f81cc7f11ca069ec9226cecb8a2c850cfe644e327d22d3e1cd3",
     "72613c9ec9ff7e40f8f5c173784c532ad852e827dba2bf85b2ab4b76f7079081"},
    {8193, "bab6c09cb8ce8cf459261398d2e7aef35700bf488116ceb94a36d0f5f1b7bc3b",
     "af1e0346e389b17c23200270a64aa4e1ead98c61695d917de7d5b00491c9b0f1"},
    {102400, "bc3e3d41a1146b069abffad3c0d44860cf664390afce4d9661f7902e7943e085",
     "4652cff7a3f385a6103b5c260fc1593e13c778dbe608efb092fe7ee69df6e9c6"},
};

std::vector<uint8_t> input_of(size_t length) {
  std::vector<uint8_t> input(length);
  for (size_t i = 0; i < length; ++i) input[i] = static_cast<uint8_t>(i % 251);
  return input;
}

std::string hex(std::span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string text;
  for (uint8_t byte : bytes) {
    text += kDigits[byte >> 4];
    text += kDigits[byte & 15];
  }
  return text;
}

TEST(Blake3, HashMatchesTheOfficialVectors) {
  for (const auto& vector : kVectors) {
    EXPECT_EQ(hex(blake3::hash(input_of(vector.length))), vector.hash) << "length " << vector.length;
  }
}

TEST(Blake3, DeriveKeyMatchesTheOfficialVectors) {
  for (const auto& vector : kVectors) {
    uint8_t out[32];
    blake3::derive_key(kContext, input_of(vector.length), out);
    EXPECT_EQ(hex(out), vector.derive_key) << "length " << vector.length;
  }
}

TEST(Blake3, ExtendedOutputContinuesPastTheFirstBlock) {
  // All 131 bytes of the vector for the empty input: two root blocks and a part of a third.
  uint8_t out[131];
  blake3::hash({}, out);
  EXPECT_EQ(hex(out),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262e00f03e7b69af26b7faaf09fcd333050338ddfe0"
            "85b8cc869ca98b206c08243a26f5487789e8f660afe6c99ef9e0c52b92e7393024a80459cf91f476f9ffdbda7001c22e159b402631"
            "f277ca96f2defdf1078282314e763699a31c5363165421cce14d");
  // A shorter request is a prefix of a longer one.
  uint8_t sixteen[16];
  blake3::derive_key(kContext, input_of(5), sixteen);
  uint8_t full[32];
  blake3::derive_key(kContext, input_of(5), full);
  EXPECT_EQ(hex(sixteen), hex(std::span(full).first(16)));
}

}  // namespace
}  // namespace strait::agent
