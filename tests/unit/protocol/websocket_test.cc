#include "agent/protocol/websocket.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <boost/beast/websocket/error.hpp>

namespace strait::agent::websocket {
namespace {

namespace http = boost::beast::http;
using BeastError = boost::beast::websocket::error;

std::vector<uint8_t> raw(std::initializer_list<int> values) { return {values.begin(), values.end()}; }

std::string text(const std::vector<uint8_t>& bytes, size_t size) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), size);
}

// RFC 6455 §5.7's examples, and the key of its §1.3 handshake.
const MaskKey kRfcMask = {0x37, 0xfa, 0x21, 0x3d};

TEST(WebSocketCodec, GoldenHeadersFromRfc6455Examples) {
  HeaderBytes header;
  ASSERT_EQ(encode_header(opcode::kText, 5, std::nullopt, header), 2u);
  EXPECT_EQ(header[0], 0x81);
  EXPECT_EQ(header[1], 0x05);
  ASSERT_EQ(encode_header(opcode::kText, 5, kRfcMask, header), 6u);
  EXPECT_EQ(std::vector<uint8_t>(header.begin(), header.begin() + 6), raw({0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d}));
  // 256 bytes binary: 16-bit length; 64 KiB: 64-bit length.
  ASSERT_EQ(encode_header(opcode::kBinary, 256, std::nullopt, header), 4u);
  EXPECT_EQ(std::vector<uint8_t>(header.begin(), header.begin() + 4), raw({0x82, 0x7E, 0x01, 0x00}));
  ASSERT_EQ(encode_header(opcode::kBinary, 65536, std::nullopt, header), 10u);
  EXPECT_EQ(std::vector<uint8_t>(header.begin(), header.begin() + 10),
            raw({0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00}));
  // 125 still fits the first byte; 126 does not.
  EXPECT_EQ(encode_header(opcode::kBinary, 125, std::nullopt, header), 2u);
  EXPECT_EQ(encode_header(opcode::kBinary, 126, std::nullopt, header), 4u);
  EXPECT_EQ(encode_header(opcode::kBinary, 65535, kRfcMask, header), 8u);
}

TEST(WebSocketCodec, MaskedHelloFromRfc6455) {
  std::vector<uint8_t> payload = raw({'H', 'e', 'l', 'l', 'o'});
  apply_mask(payload, kRfcMask, 0);
  EXPECT_EQ(payload, raw({0x7f, 0x9f, 0x4d, 0x51, 0x58}));
  // The offset continues the key where an earlier piece of the payload stopped.
  std::vector<uint8_t> tail = raw({'l', 'l', 'o'});
  apply_mask(tail, kRfcMask, 2);
  EXPECT_EQ(tail, raw({0x4d, 0x51, 0x58}));
  EXPECT_EQ(control_frame(opcode::kPing, "Hello", std::nullopt), std::string("\x89\x05Hello", 7));
}

TEST(WebSocketCodec, AcceptKeyOfRfc6455Handshake) {
  EXPECT_EQ(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(WebSocketDecoder, ServerUnmasksAndConcatenatesFragmentsAcrossAnySplit) {
  // "Hel" (text, no FIN), a ping in between, then "lo" (continuation, FIN), all masked.
  std::vector<uint8_t> wire = raw({0x01, 0x83, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d});
  auto ping = control_frame(opcode::kPing, "hi", kRfcMask);
  wire.insert(wire.end(), ping.begin(), ping.end());
  std::vector<uint8_t> last = raw({0x80, 0x82, 0x37, 0xfa, 0x21, 0x3d, 'l' ^ 0x37, 'o' ^ 0xfa});
  wire.insert(wire.end(), last.begin(), last.end());
  for (size_t piece = 1; piece <= wire.size(); ++piece) {
    FrameDecoder decoder(Role::kServer);
    std::string payload;
    std::vector<std::string> pings;
    for (size_t at = 0; at < wire.size(); at += piece) {
      std::vector<uint8_t> bytes(wire.begin() + at, wire.begin() + std::min(wire.size(), at + piece));
      auto result = decoder.decode(bytes);
      ASSERT_TRUE(result.error.empty()) << result.error;
      payload += text(bytes, result.payload);
      if (result.ping) pings.push_back(*result.ping);
    }
    EXPECT_EQ(payload, "Hello") << "pieces of " << piece;
    EXPECT_EQ(pings, std::vector<std::string>{"hi"}) << "pieces of " << piece;
  }
}

TEST(WebSocketDecoder, ClientReadsUnmaskedFramesAndStopsAtClose) {
  FrameDecoder decoder(Role::kClient);
  std::vector<uint8_t> wire = raw({0x82, 0x03, 'a', 'b', 'c', 0x88, 0x02, 0x03, 0xE8, 0x82, 0x01, 'z'});
  auto result = decoder.decode(wire);
  EXPECT_TRUE(result.error.empty()) << result.error;
  EXPECT_EQ(text(wire, result.payload), "abc");
  EXPECT_TRUE(result.closed);
  // Nothing after the close frame counts.
  std::vector<uint8_t> more = raw({0x82, 0x01, 'q'});
  EXPECT_EQ(decoder.decode(more).payload, 0u);
}

TEST(WebSocketDecoder, ProtocolViolationsAreRefusedWithTheirReason) {
  struct Case {
    Role role;
    std::vector<uint8_t> wire;
    std::string reason;
  };
  const std::vector<Case> cases = {
      {Role::kServer, raw({0x82, 0x01, 'x'}), "without a mask"},
      {Role::kClient, raw({0x82, 0x81, 1, 2, 3, 4, 'x'}), "masked frame from the server"},
      {Role::kClient, raw({0xC2, 0x00}), "reserved bits"},
      {Role::kClient, raw({0x83, 0x00}), "unknown opcode 3"},
      {Role::kClient, raw({0x8B, 0x00}), "unknown opcode 11"},
      {Role::kClient, raw({0x09, 0x00}), "fragmented control frame"},
      {Role::kClient, raw({0x89, 0x7E, 0x00, 0x7E}), "longer than 125"},
      {Role::kClient, raw({0x80, 0x00}), "continuation frame outside a message"},
      {Role::kClient, raw({0x02, 0x00, 0x82, 0x00}), "new message before the last one ended"},
      {Role::kClient, raw({0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0}), "top bit"},
      {Role::kClient, raw({0x88, 0x01, 0x03}), "one-byte body"},
  };
  for (const auto& c : cases) {
    FrameDecoder decoder(c.role);
    auto wire = c.wire;
    auto result = decoder.decode(wire);
    EXPECT_NE(result.error.find(c.reason), std::string::npos) << "got \"" << result.error << "\", want " << c.reason;
    EXPECT_EQ(result.payload, 0u);
    // A failed decoder takes nothing more.
    std::vector<uint8_t> more = raw({0x82, 0x01, 'q'});
    EXPECT_EQ(decoder.decode(more).payload, 0u);
  }
}

TEST(WebSocketDecoder, EmptyFramesAndPongsCarryNoPayload) {
  FrameDecoder decoder(Role::kClient);
  std::vector<uint8_t> wire = raw({0x82, 0x00, 0x8A, 0x02, 'p', 'q', 0x89, 0x00, 0x82, 0x01, 'k'});
  auto result = decoder.decode(wire);
  EXPECT_TRUE(result.error.empty()) << result.error;
  EXPECT_EQ(text(wire, result.payload), "k");
  ASSERT_TRUE(result.ping);
  EXPECT_EQ(*result.ping, "");
  EXPECT_FALSE(result.closed);
}

http::request<http::empty_body> upgrade_request() {
  http::request<http::empty_body> request(http::verb::get, "/ws", 11);
  request.set(http::field::host, "example");
  request.set(http::field::upgrade, "websocket");
  request.set(http::field::connection, "keep-alive, Upgrade");
  request.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
  request.set(http::field::sec_websocket_version, "13");
  return request;
}

TEST(WebSocketHandshake, RequestChecksNameTheField) {
  EXPECT_FALSE(check_upgrade_request(upgrade_request()));
  auto no_key = upgrade_request();
  no_key.erase(http::field::sec_websocket_key);
  EXPECT_EQ(check_upgrade_request(no_key), BeastError::no_sec_key);
  auto short_key = upgrade_request();
  short_key.set(http::field::sec_websocket_key, "c2hvcnQ=");
  EXPECT_EQ(check_upgrade_request(short_key), BeastError::bad_sec_key);
  auto version = upgrade_request();
  version.set(http::field::sec_websocket_version, "8");
  EXPECT_EQ(check_upgrade_request(version), BeastError::bad_sec_version);
  auto post = upgrade_request();
  post.method(http::verb::post);
  EXPECT_EQ(check_upgrade_request(post), BeastError::bad_method);
  auto plain = upgrade_request();
  plain.erase(http::field::upgrade);
  EXPECT_EQ(check_upgrade_request(plain), BeastError::no_upgrade);
  auto http10 = upgrade_request();
  http10.version(10);
  EXPECT_EQ(check_upgrade_request(http10), BeastError::bad_http_version);
}

TEST(WebSocketHandshake, ResponseMustAcceptOurKey) {
  http::response<http::empty_body> response(http::status::switching_protocols, 11);
  response.set(http::field::upgrade, "websocket");
  response.set(http::field::connection, "Upgrade");
  response.set(http::field::sec_websocket_accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  EXPECT_FALSE(check_upgrade_response(response, "dGhlIHNhbXBsZSBub25jZQ=="));
  EXPECT_EQ(check_upgrade_response(response, "AAAAAAAAAAAAAAAAAAAAAA=="), BeastError::bad_sec_accept);
  response.result(http::status::ok);
  EXPECT_EQ(check_upgrade_response(response, "dGhlIHNhbXBsZSBub25jZQ=="), BeastError::upgrade_declined);
}

}  // namespace
}  // namespace strait::agent::websocket
