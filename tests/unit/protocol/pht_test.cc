#include "agent/protocol/pht.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "support/asio_test.h"

namespace strait::agent {
namespace {

TEST(PhtCodec, LinesRoundTripEverySize) {
  for (size_t size = 0; size < 70; ++size) {
    std::string data = testing::payload(size, static_cast<unsigned>(size) + 7);
    std::string line;
    pht::append_line(line, data);
    ASSERT_EQ(line.size(), pht::base64_size(size) + 1);
    ASSERT_EQ(line.back(), '\n');
    std::string decoded;
    ASSERT_TRUE(pht::decode_base64(line, decoded)) << line;
    EXPECT_EQ(decoded, data);
  }
  std::string line;
  pht::append_line(line, "hello");
  EXPECT_EQ(line, "aGVsbG8=\n");
}

TEST(PhtCodec, DecodesAsGoStdEncoding) {
  auto decode = [](std::string_view text) -> std::optional<std::string> {
    std::string out;
    if (!pht::decode_base64(text, out)) return std::nullopt;
    return out;
  };
  EXPECT_EQ(decode("Zm9v"), "foo");
  EXPECT_EQ(decode("Zm8="), "fo");
  EXPECT_EQ(decode("Zg=="), "f");
  EXPECT_EQ(decode("Zm9v\r\nYmFy"), "foobar");  // Go skips CR and LF anywhere
  EXPECT_EQ(decode("Zh=="), "f");               // non-zero trailing bits pass (not Strict)
  EXPECT_EQ(decode(""), "");
  EXPECT_EQ(decode("Zg"), std::nullopt);  // padding is required
  EXPECT_EQ(decode("Zg="), std::nullopt);
  EXPECT_EQ(decode("Z==="), std::nullopt);
  EXPECT_EQ(decode("Zg==Zg=="), std::nullopt);  // nothing after padding
  EXPECT_EQ(decode("Zm9-"), std::nullopt);      // URL alphabet is not standard
  EXPECT_EQ(decode("Zm 9v"), std::nullopt);
}

TEST(PhtCodec, PushBodyIsReadAsGostServerReadsIt) {
  EXPECT_EQ(pht::parse_push_body("").kind, pht::PushKind::kClose);      // GOST's close
  EXPECT_EQ(pht::parse_push_body("\n").kind, pht::PushKind::kClose);    // an empty line closes
  EXPECT_EQ(pht::parse_push_body("Zm9v").kind, pht::PushKind::kClose);  // no line at all
  auto data = pht::parse_push_body("Zm9v\nignored");
  EXPECT_EQ(data.kind, pht::PushKind::kData);
  EXPECT_EQ(data.data, "foo");
  EXPECT_EQ(pht::parse_push_body("!!!!\n").kind, pht::PushKind::kInvalid);
}

TEST(PhtCodec, PullDecoderSplitsLinesAcrossReads) {
  pht::PullDecoder decoder;
  std::string out;
  std::string body = "\nZm9v\n\r\nYmFy\r\n\nYg==";
  for (char c : body) ASSERT_TRUE(decoder.feed(std::string_view(&c, 1), out));
  EXPECT_EQ(out, "foobar");
  EXPECT_EQ(decoder.lines(), 5u);
  EXPECT_FALSE(decoder.ended_on_data()) << "a keepalive line counted as data";
  ASSERT_TRUE(decoder.finish(out));  // a last line without its newline counts
  EXPECT_EQ(out, "foobarb");
  EXPECT_EQ(decoder.lines(), 6u);
  EXPECT_TRUE(decoder.ended_on_data());
  pht::PullDecoder strict(8);
  EXPECT_FALSE(strict.feed("Zm9vZm9vZm9v\n", out)) << "a line over the limit passed";
  pht::PullDecoder bad;
  EXPECT_FALSE(bad.feed("@@@@\n", out));
  EXPECT_FALSE(bad.feed("Zm9v\n", out)) << "a decoder went on after a bad line";
}

TEST(PhtCodec, TokenAndPathOfTargetFollowGoForms) {
  EXPECT_EQ(pht::token_of_target("/push?token=abc"), "abc");
  EXPECT_EQ(pht::token_of_target("/push"), "");
  EXPECT_EQ(pht::token_of_target("/push?a=1&token=x%2By&token=second"), "x+y");
  EXPECT_EQ(pht::token_of_target("/pull?token=a+b"), "a b");
  EXPECT_EQ(pht::token_of_target("/pull?token=a;b=c"), std::nullopt);  // Go ≥ 1.17 refuses ';'
  EXPECT_EQ(pht::token_of_target("/pull?token=%zz"), std::nullopt);
  EXPECT_EQ(pht::token_of_target("/pull?token=%4"), std::nullopt);
  EXPECT_EQ(pht::path_of_target("/push?token=abc"), "/push");
  EXPECT_EQ(pht::path_of_target("HTTP://example.com/pull?x"), "/pull");
  EXPECT_EQ(pht::path_of_target("http://example.com"), "/");
}

TEST(PhtCodec, TokensLookLikeXids) {
  std::array<uint8_t, pht::kTokenSize> random{};
  for (size_t i = 0; i < random.size(); ++i) random[i] = static_cast<uint8_t>(i * 37 + 255);
  std::string token = pht::token_from_random(random);
  EXPECT_TRUE(pht::is_xid_token(token)) << token;
  EXPECT_TRUE(pht::is_xid_token("9m4e2mr0ui3e8a215n4g"));  // an xid from rs/xid's tests
  EXPECT_FALSE(pht::is_xid_token("9m4e2mr0ui3e8a215n4w"));
  EXPECT_FALSE(pht::is_xid_token("short"));
  EXPECT_EQ(pht::token_of_authorize_body("token=" + token), token);
  EXPECT_EQ(pht::token_of_authorize_body("token="), std::nullopt);
  EXPECT_EQ(pht::token_of_authorize_body("token=a b"), std::nullopt);
  EXPECT_EQ(pht::token_of_authorize_body("nope"), std::nullopt);
}

TEST(PhtCodec, ByteQueueReadsAcrossPieces) {
  pht::ByteQueue queue;
  queue.append("abc");
  queue.append("");
  queue.append("defg");
  EXPECT_EQ(queue.size(), 7u);
  char two[2];
  EXPECT_EQ(queue.read(two), 2u);
  EXPECT_EQ(std::string(two, 2), "ab");
  EXPECT_EQ(queue.take(4), "cdef");
  EXPECT_EQ(queue.take(10), "g");
  EXPECT_TRUE(queue.empty());
}

}  // namespace
}  // namespace strait::agent
