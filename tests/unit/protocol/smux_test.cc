#include "agent/protocol/smux.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace strait::agent::smux {
namespace {

std::vector<uint8_t> raw(std::initializer_list<int> values) { return {values.begin(), values.end()}; }

template <size_t N>
std::vector<uint8_t> vec(const std::array<uint8_t, N>& bytes) {
  return {bytes.begin(), bytes.end()};
}

Parsed<FrameHeader> parse(std::initializer_list<int> values, int version) {
  auto bytes = raw(values);
  return parse_frame_header(bytes, version);
}

TEST(SmuxCodec, GoldenHeadersAreLittleEndian) {
  // SYN of the first client stream, version 1.
  EXPECT_EQ(vec(encode_frame_header({1, command::kSyn, 0, 3})), raw({1, 0, 0, 0, 3, 0, 0, 0}));
  // FIN, version 2, a large stream id.
  EXPECT_EQ(vec(encode_frame_header({2, command::kFin, 0, 0x01020304})), raw({2, 1, 0, 0, 4, 3, 2, 1}));
  // PSH of 0x1234 bytes on stream 5.
  EXPECT_EQ(vec(encode_frame_header({1, command::kPsh, 0x1234, 5})), raw({1, 2, 0x34, 0x12, 5, 0, 0, 0}));
  EXPECT_EQ(vec(encode_frame_header({2, command::kPsh, 65535, 2})), raw({2, 2, 0xFF, 0xFF, 2, 0, 0, 0}));
  EXPECT_EQ(vec(encode_frame_header({1, command::kNop, 0, 0})), raw({1, 3, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(vec(encode_frame_header({2, command::kNop, 0, 0})), raw({2, 3, 0, 0, 0, 0, 0, 0}));
  // UPD: consumed 0x0A0B0C0D, window 65536.
  EXPECT_EQ(vec(encode_update(2, 2, {0x0A0B0C0D, 65536})),
            raw({2, 4, 8, 0, 2, 0, 0, 0, 0x0D, 0x0C, 0x0B, 0x0A, 0, 0, 1, 0}));
}

TEST(SmuxCodec, ParsesWhatItEncodes) {
  for (int version : {1, 2}) {
    for (uint8_t cmd : {command::kSyn, command::kFin, command::kPsh, command::kNop, command::kUpd}) {
      if (cmd == command::kUpd && version == 1) continue;
      uint16_t length = cmd == command::kPsh ? 40000 : cmd == command::kUpd ? 8 : 0;
      FrameHeader header{static_cast<uint8_t>(version), cmd, length, 0xDEADBEEF};
      auto bytes = encode_frame_header(header);
      auto parsed = parse_frame_header(bytes, version);
      ASSERT_EQ(parsed.state, ParseState::kComplete) << parsed.reason;
      EXPECT_EQ(parsed.value, header);
      EXPECT_EQ(parsed.size, kHeaderSize);
      for (size_t n = 0; n < kHeaderSize; ++n) {
        EXPECT_EQ(parse_frame_header(std::span(bytes).first(n), version).state, ParseState::kIncomplete);
      }
    }
  }
  auto update = encode_update(2, 7, {123456, 65536});
  auto data = parse_update(std::span(update).subspan(kHeaderSize));
  ASSERT_EQ(data.state, ParseState::kComplete);
  EXPECT_EQ(data.value.consumed, 123456u);
  EXPECT_EQ(data.value.window, 65536u);
  EXPECT_EQ(parse_update(std::span(update).subspan(kHeaderSize, 7)).state, ParseState::kIncomplete);
}

TEST(SmuxCodec, RefusesWhatSmuxWouldRefuseOrMisread) {
  struct Case {
    std::initializer_list<int> bytes;
    int version;
    const char* reason;
  };
  for (const auto& c : std::initializer_list<Case>{
           {{2, 0, 0, 0, 3, 0, 0, 0}, 1, "frame version 2, expected 1"},
           {{1, 0, 0, 0, 3, 0, 0, 0}, 2, "frame version 1, expected 2"},
           {{0}, 1, "frame version 0, expected 1"},  // refused at its first byte
           {{1, 5, 0, 0, 3, 0, 0, 0}, 1, "unknown command 5"},
           {{2, 0xFF, 0, 0, 3, 0, 0, 0}, 2, "unknown command 255"},
           {{2, 4, 7, 0, 3, 0, 0, 0}, 2, "UPD frame of length 7, expected 8"},
           {{2, 4, 0, 0, 3, 0, 0, 0}, 2, "UPD frame of length 0, expected 8"},
           {{1, 4, 8, 0, 3, 0, 0, 0}, 1, "UPD frame in a version 1 session"},
           {{1, 0, 1, 0, 3, 0, 0, 0}, 1, "SYN with 1 bytes of data"},
           {{2, 1, 0, 1, 3, 0, 0, 0}, 2, "FIN with 256 bytes of data"},
           {{1, 3, 0xFF, 0xFF, 0, 0, 0, 0}, 1, "NOP with 65535 bytes of data"},
       }) {
    auto parsed = parse(c.bytes, c.version);
    EXPECT_EQ(parsed.state, ParseState::kInvalid) << c.reason;
    EXPECT_EQ(parsed.reason, c.reason);
  }
  // PSH of any length up to the 16-bit maximum is fine, whatever our own frame size.
  EXPECT_EQ(parse({1, 2, 0xFF, 0xFF, 3, 0, 0, 0}, 1).state, ParseState::kComplete);
  EXPECT_EQ(parse({1, 2, 0, 0, 3, 0, 0, 0}, 1).state, ParseState::kComplete);
}

TEST(SmuxCodec, WindowArithmeticIsModular) {
  EXPECT_FALSE(consumed_beyond_written(100, 100));
  EXPECT_FALSE(consumed_beyond_written(100, 0));
  EXPECT_TRUE(consumed_beyond_written(100, 101));
  EXPECT_TRUE(consumed_beyond_written(0, 1));
  // The counters wrapped: 5 written after 2^32, 0xFFFFFFF0 consumed: 21 in flight.
  EXPECT_FALSE(consumed_beyond_written(5, 0xFFFFFFF0u));
  EXPECT_EQ(send_window(5, 0xFFFFFFF0u, 100), 79u);

  EXPECT_EQ(send_window(0, 0, kInitialPeerWindow), kInitialPeerWindow);
  EXPECT_EQ(send_window(262144, 0, kInitialPeerWindow), 0u);
  EXPECT_EQ(send_window(300000, 0, kInitialPeerWindow), 0u);
  EXPECT_EQ(send_window(1000, 900, 65536), 65436u);
  // A first UPD that shrinks the window below what is in flight stops the writer.
  EXPECT_EQ(send_window(262144, 1, 65536), 0u);

  EXPECT_TRUE(update_due(10, 10, 10, 65536));         // the first read
  EXPECT_FALSE(update_due(20, 10, 10, 65536));        // a small later read
  EXPECT_TRUE(update_due(40000, 100, 32768, 65536));  // half the buffer since the last UPD
  EXPECT_FALSE(update_due(40000, 100, 32767, 65536));
  EXPECT_FALSE(update_due(0, 0, 0, 65536));  // nothing read
}

TEST(SmuxConfig, ValidateMirrorsSmuxVerifyConfigAndOurBounds) {
  EXPECT_TRUE(validate(Config{}).ok());
  auto refused = [](auto change) {
    Config config;
    change(config);
    return std::string(validate(config).message());
  };
  EXPECT_EQ(refused([](Config& c) { c.version = 3; }), "unsupported protocol version 3 (1 or 2)");
  EXPECT_EQ(refused([](Config& c) { c.keepalive_interval = {}; }), "keep-alive interval must be positive");
  EXPECT_EQ(refused([](Config& c) { c.keepalive_timeout = std::chrono::seconds(5); }),
            "keep-alive timeout must be larger than keep-alive interval");
  EXPECT_EQ(refused([](Config& c) { c.max_frame_size = 0; }), "max frame size must be positive");
  EXPECT_EQ(refused([](Config& c) { c.max_frame_size = 65536; }), "max frame size must not be larger than 65535");
  EXPECT_EQ(refused([](Config& c) { c.max_receive_buffer = 0; }), "max receive buffer must be positive");
  EXPECT_EQ(refused([](Config& c) { c.max_stream_buffer = 0; }), "max stream buffer must be positive");
  EXPECT_EQ(refused([](Config& c) { c.max_stream_buffer = c.max_receive_buffer + 1; }),
            "max stream buffer must not be larger than max receive buffer");
  EXPECT_NE(refused([](Config& c) { c.max_receive_buffer = (64 << 20) + 1; }), "");
  EXPECT_NE(refused([](Config& c) { c.max_streams = 0; }), "");
  EXPECT_NE(refused([](Config& c) { c.keepalive_timeout = std::chrono::hours(25); }), "");
  // Disabled keepalive: its durations are not checked (smux).
  Config disabled;
  disabled.keepalive_disabled = true;
  disabled.keepalive_interval = {};
  EXPECT_TRUE(validate(disabled).ok());
  Config largest;
  largest.max_frame_size = 65535;
  largest.version = 2;
  EXPECT_TRUE(validate(largest).ok());
}

}  // namespace
}  // namespace strait::agent::smux
