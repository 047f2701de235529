#include "agent/protocol/socks5.h"

#include <gtest/gtest.h>

#include <string>

namespace strait::agent::socks5 {
namespace {

using common::HostPort;

Bytes bytes(const std::string& text) { return {reinterpret_cast<const uint8_t*>(text.data()), text.size()}; }
std::string raw(std::initializer_list<int> values) {
  std::string out;
  for (int v : values) out.push_back(static_cast<char>(v));
  return out;
}

// Every proper prefix of a valid message asks for more bytes.
template <typename Parse>
void expect_prefixes_incomplete(Parse parse, const std::string& message) {
  for (size_t n = 0; n < message.size(); ++n) {
    EXPECT_EQ(parse(bytes(message.substr(0, n))).state, ParseState::kIncomplete) << "prefix of " << n << " bytes";
  }
}

TEST(Socks5Parse, GreetingListsMethodsAndKeepsPipelinedBytes) {
  std::string greeting = raw({5, 2, 0, 2});
  auto parsed = parse_greeting(bytes(greeting + "next"));
  ASSERT_EQ(parsed.state, ParseState::kComplete);
  EXPECT_EQ(parsed.size, 4u);
  EXPECT_EQ(parsed.value, (std::vector<uint8_t>{0, 2}));
  expect_prefixes_incomplete(parse_greeting, greeting);
}

TEST(Socks5Parse, RefusesWrongVersionAndEmptyMethodList) {
  auto socks4 = parse_greeting(bytes(raw({4, 1, 0, 80})));
  EXPECT_EQ(socks4.state, ParseState::kInvalid);
  EXPECT_EQ(socks4.reply, method::kNoAcceptable);
  EXPECT_NE(socks4.reason.find("version byte 4"), std::string::npos);
  EXPECT_EQ(parse_greeting(bytes(raw({5, 0}))).state, ParseState::kInvalid);
}

TEST(Socks5Parse, UserPassCredentials) {
  std::string message = raw({1, 4}) + "user" + raw({6}) + "secret";
  auto parsed = parse_user_pass(bytes(message));
  ASSERT_EQ(parsed.state, ParseState::kComplete);
  EXPECT_EQ(parsed.value.username, "user");
  EXPECT_EQ(parsed.value.password, "secret");
  EXPECT_EQ(parsed.size, message.size());
  expect_prefixes_incomplete(parse_user_pass, message);
  auto empty = parse_user_pass(bytes(raw({1, 0, 0})));
  ASSERT_EQ(empty.state, ParseState::kComplete);
  EXPECT_EQ(empty.value.username, "");
  EXPECT_EQ(parse_user_pass(bytes(raw({5, 1, 'u', 1, 'p'}))).state, ParseState::kInvalid);
}

TEST(Socks5Parse, RequestsForEveryAddressType) {
  auto v4 = parse_request(bytes(raw({5, 1, 0, 1, 10, 0, 0, 1, 0x1f, 0x90})));
  ASSERT_EQ(v4.state, ParseState::kComplete);
  EXPECT_EQ(v4.value.command, command::kConnect);
  EXPECT_EQ(v4.value.address, (HostPort{"10.0.0.1", 8080}));

  std::string v6_message = raw({5, 3, 0, 4}) + std::string(15, '\0') + raw({1, 0, 53});
  auto v6 = parse_request(bytes(v6_message));
  ASSERT_EQ(v6.state, ParseState::kComplete);
  EXPECT_EQ(v6.value.command, command::kUdpAssociate);
  EXPECT_EQ(v6.value.address, (HostPort{"::1", 53}));
  expect_prefixes_incomplete(parse_request, v6_message);

  std::string domain_message = raw({5, 2, 0, 3, 11}) + "example.com" + raw({0, 21});
  auto domain = parse_request(bytes(domain_message));
  ASSERT_EQ(domain.state, ParseState::kComplete);
  EXPECT_EQ(domain.value.address, (HostPort{"example.com", 21}));
  EXPECT_EQ(domain.size, domain_message.size());
}

TEST(Socks5Parse, RefusesBadRequestsWithTheRightReplyCode) {
  auto command = parse_request(bytes(raw({5, 9, 0, 1, 1, 2, 3, 4, 0, 80})));
  EXPECT_EQ(command.state, ParseState::kInvalid);
  EXPECT_EQ(command.reply, reply::kCommandNotSupported);
  auto address_type = parse_request(bytes(raw({5, 1, 0, 7, 1, 2, 3, 4, 0, 80})));
  EXPECT_EQ(address_type.state, ParseState::kInvalid);
  EXPECT_EQ(address_type.reply, reply::kAddressTypeNotSupported);
  auto empty_domain = parse_request(bytes(raw({5, 1, 0, 3, 0, 0, 80})));
  EXPECT_EQ(empty_domain.state, ParseState::kInvalid);
  EXPECT_NE(empty_domain.reason.find("zero-length"), std::string::npos);
  EXPECT_EQ(parse_request(bytes(raw({5, 1, 0, 3, 3, 'a', 0, 'b', 0, 80}))).state, ParseState::kInvalid);
  EXPECT_EQ(parse_request(bytes(raw({4, 1, 0, 1}))).state, ParseState::kInvalid);
}

TEST(Socks5Parse, RefusesDomainNamesOutsideTheHostNameAlphabet) {
  for (std::string name : {std::string("x\"},\"level\":\"critical\"\nnext"), std::string("a b"), std::string("a\0b", 3),
                           std::string("\x1b[31mred")}) {
    auto request = parse_request(bytes(raw({5, 1, 0, 3, static_cast<int>(name.size())}) + name + raw({0, 80})));
    ASSERT_EQ(request.state, ParseState::kInvalid) << name;
    EXPECT_EQ(request.reply, reply::kGeneralFailure);
    EXPECT_NE(request.reason.find("host-name alphabet"), std::string::npos);
  }
  for (std::string name : {std::string("_srv.example-1.org"), std::string("::1"), std::string("10.0.0.1")}) {
    auto request = parse_request(bytes(raw({5, 1, 0, 3, static_cast<int>(name.size())}) + name + raw({0, 80})));
    ASSERT_EQ(request.state, ParseState::kComplete) << name;
    EXPECT_EQ(request.value.address.host, name);
  }
}

TEST(Socks5Encode, RequestsAndRepliesRoundTrip) {
  for (const HostPort& address : {HostPort{"192.168.1.2", 443}, HostPort{"2001:db8::7", 8443},
                                  HostPort{"a.example", 1}}) {
    auto request = encode_request(command::kConnect, address);
    ASSERT_TRUE(request.ok());
    auto parsed = parse_request(bytes(*request));
    ASSERT_EQ(parsed.state, ParseState::kComplete);
    EXPECT_EQ(parsed.value.address, address);
    auto reply = parse_reply(bytes(encode_reply(reply::kConnectionRefused, address)));
    ASSERT_EQ(reply.state, ParseState::kComplete);
    EXPECT_EQ(reply.value.code, reply::kConnectionRefused);
    EXPECT_EQ(reply.value.address, address);
  }
  EXPECT_EQ(encode_reply(reply::kSucceeded, {}), raw({5, 0, 0, 1, 0, 0, 0, 0, 0, 0}));
}

TEST(Socks5Encode, RefusesNamesTheProtocolCannotCarry) {
  EXPECT_FALSE(encode_request(command::kConnect, HostPort{std::string(256, 'a'), 80}).ok());
  EXPECT_FALSE(encode_request(command::kConnect, HostPort{"", 80}).ok());
  EXPECT_TRUE(encode_request(command::kConnect, HostPort{std::string(255, 'a'), 80}).ok());
  EXPECT_FALSE(encode_user_pass(std::string(256, 'u'), "p").ok());
  EXPECT_EQ(*encode_user_pass("u", "pw"), raw({1, 1, 'u', 2, 'p', 'w'}));
}

TEST(Socks5Parse, ClientSideMessages) {
  auto selection = parse_method_selection(bytes(raw({5, 2})));
  ASSERT_EQ(selection.state, ParseState::kComplete);
  EXPECT_EQ(selection.value, method::kUserPass);
  EXPECT_EQ(parse_method_selection(bytes(raw({5}))).state, ParseState::kIncomplete);
  EXPECT_EQ(parse_method_selection(bytes("HTTP/1.1 400")).state, ParseState::kInvalid);
  EXPECT_TRUE(parse_user_pass_status(bytes(raw({1, 0}))).value);
  EXPECT_FALSE(parse_user_pass_status(bytes(raw({1, 1}))).value);
  EXPECT_EQ(parse_user_pass_status(bytes(raw({5, 0}))).state, ParseState::kInvalid);
  EXPECT_EQ(parse_reply(bytes(raw({5, 0, 0, 9}))).state, ParseState::kInvalid);
}

TEST(Socks5Udp, DatagramHeaders) {
  auto header = encode_udp_header(HostPort{"127.0.0.1", 53});
  ASSERT_TRUE(header.ok());
  std::string datagram = *header + "payload";
  auto parsed = parse_udp_header(bytes(datagram));
  ASSERT_EQ(parsed.state, ParseState::kComplete);
  EXPECT_EQ(parsed.value.address, (HostPort{"127.0.0.1", 53}));
  EXPECT_EQ(parsed.value.fragment, 0);
  EXPECT_EQ(datagram.substr(parsed.size), "payload");

  auto fragment = parse_udp_header(bytes(raw({0, 0, 1, 1, 1, 2, 3, 4, 0, 53})));
  ASSERT_EQ(fragment.state, ParseState::kComplete);
  EXPECT_EQ(fragment.value.fragment, 1);
  // A datagram is all there is: a short one is refused, never "incomplete".
  EXPECT_EQ(parse_udp_header(bytes(raw({0, 0, 0, 1, 1, 2}))).state, ParseState::kInvalid);
  EXPECT_EQ(parse_udp_header(bytes(raw({0, 1, 0, 1, 1, 2, 3, 4, 0, 53}))).state, ParseState::kInvalid);
  EXPECT_EQ(parse_udp_header(bytes(raw({0, 0, 0, 3, 0, 0, 53}))).state, ParseState::kInvalid);
}

TEST(Socks5Udp, TunnelFramesFollowEachOther) {
  std::string payload = "dns query";
  auto first = encode_udp_tun_frame(HostPort{"10.1.2.3", 53}, bytes(payload));
  auto second = encode_udp_tun_frame(HostPort{"resolver.example", 853}, bytes(std::string("x")));
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(static_cast<uint8_t>((*first)[2]), 0xFF);  // GOST's FRAG marker
  std::string stream = *first + *second;
  auto frame = parse_udp_tun_frame(bytes(stream));
  ASSERT_EQ(frame.state, ParseState::kComplete);
  EXPECT_EQ(frame.value.address, (HostPort{"10.1.2.3", 53}));
  EXPECT_EQ(stream.substr(frame.value.payload_offset, frame.value.payload_size), payload);
  auto next = parse_udp_tun_frame(bytes(stream.substr(frame.size)));
  ASSERT_EQ(next.state, ParseState::kComplete);
  EXPECT_EQ(next.value.address, (HostPort{"resolver.example", 853}));
  expect_prefixes_incomplete(parse_udp_tun_frame, *first);
  EXPECT_EQ(parse_udp_tun_frame(bytes(raw({0, 0, 0xFF, 1, 1, 2, 3, 4, 0, 53}))).state, ParseState::kInvalid);
  EXPECT_FALSE(encode_udp_tun_frame(HostPort{"10.0.0.1", 53}, {}).ok());
  EXPECT_FALSE(encode_udp_tun_frame(HostPort{"10.0.0.1", 53}, bytes(std::string(65536, 'x'))).ok());
}

}  // namespace
}  // namespace strait::agent::socks5
