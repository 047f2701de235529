#include "agent/protocol/snappy_frames.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"

namespace strait::agent::kcp {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes unhex(std::string_view text) {
  std::string bytes = absl::HexStringToBytes(absl::string_view(text.data(), text.size()));
  return {bytes.begin(), bytes.end()};
}
Bytes bytes_of(std::string_view text) { return {text.begin(), text.end()}; }

// The start of the snappy stream kcptun-client sent inside KCP (--crypt none, compression on),
// reassembled from the captured PUSH segments: stream identifier; an uncompressed chunk with
// the smux SYN 01 00 00 00 03 00 00 00 (masked CRC-32C 0x2fac3944, recomputed in Python with
// a bitwise CRC-32C); then a 171-byte compressed chunk holding smux PSH frames.
constexpr char kKcptunStream[] =
    "ff060000734e61507059010c00004439ac2f010000000300000000ab0000659bd9bade17440102d60b0300000068656c6c6f206b6370"
    "204e0a000022fe0100fe0100fe0100fe0100fe0100fe0100fe0100fe0100fe0100fe0100fe0100fe0100fe0100fe0100fe0100fe0100"
    "fe0100fe0100fe0100fe0100fe0100fe0100fe0100fe0100fe0100fe0100fe0100fe0100fe0100fe0100fe0100fe0100fe0100fe0100"
    "fe0100fe0100fe0100fe0100fe0100fe0100fe0100fe0100fe0100fe0100fe0100fe0100da0100";

Bytes decode_all(const Bytes& stream, absl::Status* status = nullptr, size_t piece = 0) {
  SnappyFrameDecoder decoder;
  Bytes out;
  absl::Status result;
  if (piece == 0) piece = stream.size() + 1;
  for (size_t at = 0; at < stream.size() && result.ok(); at += piece) {
    result = decoder.feed(std::span(stream).subspan(at, std::min(piece, stream.size() - at)), out);
  }
  if (status) *status = result;
  return out;
}

TEST(SnappyFramesCrc, MaskedCrc32cMatchesTheSpec) {
  // CRC-32C("123456789") = 0xe3069283 (RFC 3720 check value); masked per framing_format.txt.
  EXPECT_EQ(snappy_masked_crc(bytes_of("123456789")), 0xc78ab0e5u);
  EXPECT_EQ(snappy_masked_crc(unhex("0100000003000000")), 0x2fac3944u);
}

TEST(SnappyFramesGolden, DecodesKcptunsStream) {
  Bytes stream = unhex(kKcptunStream);
  for (size_t piece : {size_t{0}, size_t{1}, size_t{3}, size_t{7}}) {
    absl::Status status;
    Bytes out = decode_all(stream, &status, piece);
    ASSERT_TRUE(status.ok()) << status;
    ASSERT_GE(out.size(), 8u + 8u + 30u);
    EXPECT_EQ(Bytes(out.begin(), out.begin() + 8), unhex("0100000003000000"));  // smux SYN, stream 3
    EXPECT_EQ(out[8], 1);                                                      // smux version
    EXPECT_EQ(out[9], 2);                                                      // PSH
    EXPECT_EQ(std::string(out.begin() + 16, out.begin() + 46), std::string("hello kcp ") + "hello kcp " + "hello kcp ");
  }
}

TEST(SnappyFramesRoundTrip, RandomAndCompressibleData) {
  std::mt19937 random(17);
  for (size_t size : {size_t{1}, size_t{100}, size_t{65536}, size_t{65537}, size_t{300000}}) {
    for (bool compressible : {false, true}) {
      Bytes data(size);
      for (auto& b : data) b = compressible ? static_cast<uint8_t>("abcabcabd"[random() % 9]) : static_cast<uint8_t>(random());
      SnappyFrameEncoder encoder;
      Bytes stream;
      encoder.encode(std::span(data).first(size / 2), stream);
      encoder.encode(std::span(data).subspan(size / 2), stream);
      EXPECT_EQ(Bytes(stream.begin(), stream.begin() + 10), Bytes(std::begin(kSnappyStreamIdentifier), std::end(kSnappyStreamIdentifier)));
      if (compressible && size > 1000) {
        EXPECT_LT(stream.size(), size / 2);
      }
      if (!compressible && size >= 100) {
        EXPECT_EQ(stream[10], 0x01) << "random data goes uncompressed";
      }
      for (size_t piece : {size_t{0}, size_t{1000}, size_t{4099}}) {
        absl::Status status;
        EXPECT_EQ(decode_all(stream, &status, piece), data) << size << " " << piece;
        EXPECT_TRUE(status.ok()) << status;
      }
    }
  }
  SnappyFrameEncoder encoder;
  Bytes stream;
  encoder.encode({}, stream);
  EXPECT_TRUE(stream.empty()) << "no identifier before data, as golang/snappy";
}

TEST(SnappyFramesRefusals, SayWhy) {
  auto refuse = [](std::string_view hex, std::string reason) {
    absl::Status status;
    decode_all(unhex(hex), &status);
    EXPECT_FALSE(status.ok()) << hex;
    EXPECT_NE(std::string(status.message()).find(reason), std::string::npos) << status;
  };
  std::string identifier = "ff060000734e61507059";
  refuse(identifier + "010c00004439ac2f0100000003000001", "checksum");
  refuse(identifier + "02050000aabbccddee", "reserved unskippable chunk type 0x02");
  refuse(identifier + "7f000000", "reserved unskippable chunk type 0x7f");
  refuse(identifier + "01050001", "uncompressed chunk of 65541 bytes");
  refuse(identifier + "00ffffff", "compressed chunk of 16777215 bytes");
  refuse(identifier + "010300000000", "uncompressed chunk of 3 bytes");
  refuse("010c00004439ac2f0100000003000000", "does not start with the stream identifier");
  refuse("ff060000734e61507058", "not \"sNaPpY\"");
  refuse("ff070000734e6150705900", "not 6");
  refuse(identifier + "0009000000000000ffffffff7f", "compressed");
  // Once failed, always failed, and nothing more comes out.
  SnappyFrameDecoder decoder;
  Bytes out;
  EXPECT_FALSE(decoder.feed(unhex("0200000000"), out).ok());
  EXPECT_FALSE(decoder.feed(unhex(identifier), out).ok());
  EXPECT_TRUE(decoder.failed());
  EXPECT_TRUE(out.empty());
}

TEST(SnappyFramesSkippable, PaddingAndSkippableChunksStreamByUnbuffered) {
  SnappyFrameDecoder decoder;
  Bytes out;
  // A 1 MiB skippable chunk in 4 KiB pieces never piles up, then real data follows.
  ASSERT_TRUE(decoder.feed(unhex("ff060000734e61507059fe000010"), out).ok());
  Bytes filler(4096, 0);
  for (int i = 0; i < 256; ++i) {
    ASSERT_TRUE(decoder.feed(filler, out).ok());
    EXPECT_EQ(decoder.buffered(), 0u);
  }
  ASSERT_TRUE(decoder.feed(unhex("80020000abcd010c00004439ac2f0100000003000000"), out).ok());
  EXPECT_EQ(out, unhex("0100000003000000"));
  // A repeated stream identifier is allowed.
  ASSERT_TRUE(decoder.feed(unhex("ff060000734e61507059"), out).ok());
  // A partial chunk is held, bounded by one chunk.
  ASSERT_TRUE(decoder.feed(unhex("010c0000"), out).ok());
  EXPECT_EQ(decoder.buffered(), 4u);
}

}  // namespace
}  // namespace strait::agent::kcp
