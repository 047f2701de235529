#include "agent/protocol/socks4.h"

#include <gtest/gtest.h>

#include <string>

namespace strait::agent::socks4 {
namespace {

using common::HostPort;

Bytes bytes(const std::string& text) { return {reinterpret_cast<const uint8_t*>(text.data()), text.size()}; }
std::string raw(std::initializer_list<int> values) {
  std::string out;
  for (int v : values) out.push_back(static_cast<char>(v));
  return out;
}

TEST(Socks4Parse, ConnectWithUserId) {
  std::string message = raw({4, 1, 0x1f, 0x90, 10, 0, 0, 1}) + "alice" + raw({0});
  auto parsed = parse_request(bytes(message + "early"));
  ASSERT_EQ(parsed.state, ParseState::kComplete);
  EXPECT_EQ(parsed.value.command, command::kConnect);
  EXPECT_EQ(parsed.value.address, (HostPort{"10.0.0.1", 8080}));
  EXPECT_EQ(parsed.value.user_id, "alice");
  EXPECT_FALSE(parsed.value.socks4a);
  EXPECT_EQ(parsed.size, message.size());
  for (size_t n = 0; n < message.size(); ++n) {
    EXPECT_EQ(parse_request(bytes(message.substr(0, n))).state, ParseState::kIncomplete) << n;
  }
}

TEST(Socks4Parse, Socks4aHostName) {
  std::string message = raw({4, 1, 0, 80, 0, 0, 0, 9, 0}) + "example.com" + raw({0});
  auto parsed = parse_request(bytes(message));
  ASSERT_EQ(parsed.state, ParseState::kComplete);
  EXPECT_TRUE(parsed.value.socks4a);
  EXPECT_EQ(parsed.value.address, (HostPort{"example.com", 80}));
  EXPECT_EQ(parsed.value.user_id, "");
  EXPECT_EQ(parse_request(bytes(raw({4, 1, 0, 80, 0, 0, 0, 9, 0}) + "exam")).state, ParseState::kIncomplete);
}

TEST(Socks4Parse, RefusesBadRequests) {
  auto version = parse_request(bytes(raw({5, 1, 0})));
  EXPECT_EQ(version.state, ParseState::kInvalid);
  EXPECT_EQ(version.reply, reply::kRejected);
  EXPECT_EQ(parse_request(bytes(raw({4, 3, 0, 80, 1, 2, 3, 4, 0}))).state, ParseState::kInvalid);
  // Fields without their NUL are refused once longer than the protocol allows.
  EXPECT_EQ(parse_request(bytes(raw({4, 1, 0, 80, 1, 2, 3, 4}) + std::string(255, 'u'))).state,
            ParseState::kIncomplete);
  EXPECT_EQ(parse_request(bytes(raw({4, 1, 0, 80, 1, 2, 3, 4}) + std::string(256, 'u'))).state, ParseState::kInvalid);
  EXPECT_EQ(parse_request(bytes(raw({4, 1, 0, 80, 0, 0, 0, 1, 0}) + std::string(256, 'h'))).state,
            ParseState::kInvalid);
  auto empty_host = parse_request(bytes(raw({4, 1, 0, 80, 0, 0, 0, 1, 0, 0})));
  EXPECT_EQ(empty_host.state, ParseState::kInvalid);
  EXPECT_NE(empty_host.reason.find("zero-length"), std::string::npos);
  auto forged = parse_request(bytes(raw({4, 1, 0, 80, 0, 0, 0, 1, 0}) + "evil\nhost" + raw({0})));
  EXPECT_EQ(forged.state, ParseState::kInvalid);
  EXPECT_NE(forged.reason.find("host-name alphabet"), std::string::npos);
}

TEST(Socks4Encode, RequestsAndReplies) {
  EXPECT_EQ(*encode_request(command::kConnect, {"1.2.3.4", 80}, "bob"), raw({4, 1, 0, 80, 1, 2, 3, 4, 'b', 'o', 'b', 0}));
  EXPECT_EQ(*encode_request(command::kConnect, {"h.example", 443}, ""),
            raw({4, 1, 1, 187, 0, 0, 0, 1, 0}) + "h.example" + raw({0}));
  EXPECT_FALSE(encode_request(command::kConnect, {"::1", 80}, "").ok());
  EXPECT_FALSE(encode_request(command::kConnect, {"1.2.3.4", 80}, std::string("a\0b", 3)).ok());
  EXPECT_EQ(encode_reply(reply::kGranted, {"10.0.0.2", 1080}), raw({0, 90, 4, 56, 10, 0, 0, 2}));
  auto reply = parse_reply(bytes(raw({0, 91, 0, 0, 0, 0, 0, 0})));
  ASSERT_EQ(reply.state, ParseState::kComplete);
  EXPECT_EQ(reply.value, reply::kRejected);
  EXPECT_EQ(parse_reply(bytes(raw({0, 90, 0}))).state, ParseState::kIncomplete);
  EXPECT_EQ(parse_reply(bytes("HTTP/1.1 400")).state, ParseState::kInvalid);
}

}  // namespace
}  // namespace strait::agent::socks4
