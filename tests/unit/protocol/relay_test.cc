#include "agent/protocol/relay.h"

#include <gtest/gtest.h>

#include <string>

namespace strait::agent::relay_wire {
namespace {

using common::HostPort;

Bytes bytes(const std::string& text) { return {reinterpret_cast<const uint8_t*>(text.data()), text.size()}; }
std::string raw(std::initializer_list<int> values) {
  std::string out;
  for (int v : values) out.push_back(static_cast<char>(v));
  return out;
}
std::string text(Bytes view) { return {view.begin(), view.end()}; }

// PROTOCOLS.md §3: a GOST client's CONNECT to example.com:80 with auth u/p.
const std::string kGoldenRequest =
    raw({0x01, 0x01, 0x00, 0x19, 0x01, 0x00, 0x04, 0x01, 'u', 0x01, 'p', 0x02, 0x00, 0x0f, 0x03, 0x0b}) +
    "example.com" + raw({0x00, 0x50});
const std::string kOkResponse = raw({0x01, 0x00, 0x00, 0x00});

// A request carrying one feature.
std::string with_feature(uint8_t type, const std::string& data) {
  size_t fealen = 3 + data.size();
  return raw({kVersion, command::kConnect, static_cast<int>(fealen >> 8), static_cast<int>(fealen & 0xFF), type,
              static_cast<int>(data.size() >> 8), static_cast<int>(data.size() & 0xFF)}) +
         data;
}

// Every proper prefix of a valid message asks for more bytes.
template <typename Parse>
void expect_prefixes_incomplete(Parse parse, const std::string& message) {
  for (size_t n = 0; n < message.size(); ++n) {
    EXPECT_EQ(parse(bytes(message.substr(0, n))).state, ParseState::kIncomplete) << "prefix of " << n << " bytes";
  }
}

void expect_refused(const std::string& message, const std::string& reason_part) {
  auto parsed = parse_request(bytes(message));
  ASSERT_EQ(parsed.state, ParseState::kInvalid) << reason_part;
  EXPECT_EQ(parsed.reply, status::kBadRequest);
  EXPECT_NE(parsed.reason.find(reason_part), std::string::npos) << parsed.reason;
}

TEST(RelayParse, GoldenConnectRequestKeepsThePayloadAfterIt) {
  auto parsed = parse_request(bytes(kGoldenRequest + "GET / HTTP/1.1\r\n"));
  ASSERT_EQ(parsed.state, ParseState::kComplete);
  EXPECT_EQ(parsed.size, kGoldenRequest.size());
  EXPECT_EQ(parsed.size, 4u + 0x19);
  EXPECT_EQ(parsed.value.command(), command::kConnect);
  EXPECT_FALSE(parsed.value.udp());
  ASSERT_TRUE(parsed.value.auth.has_value());
  EXPECT_EQ(parsed.value.auth->username, "u");
  EXPECT_EQ(parsed.value.auth->password, "p");
  EXPECT_EQ(parsed.value.address, (HostPort{"example.com", 80}));
  EXPECT_FALSE(parsed.value.tunnel.has_value());
  EXPECT_FALSE(parsed.value.network.has_value());
}

TEST(RelayEncode, GoldenConnectRequestByteForByte) {
  Request request;
  request.auth = Credentials{"u", "p"};
  request.address = HostPort{"example.com", 80};
  auto encoded = encode_request(request);
  ASSERT_TRUE(encoded.ok()) << encoded.status();
  EXPECT_EQ(*encoded, kGoldenRequest);
}

TEST(RelayParse, EveryTruncationOfAValidMessageIsIncomplete) {
  expect_prefixes_incomplete(parse_request, kGoldenRequest);
  expect_prefixes_incomplete(parse_response, kOkResponse);
  Request full{command::kConnect | command::kUdpFlag, Credentials{"user", "secret"}, HostPort{"2001:db8::1", 53},
               TunnelId{1, 2, 3}, network::kUdp};
  auto encoded = encode_request(full);
  ASSERT_TRUE(encoded.ok());
  expect_prefixes_incomplete(parse_request, *encoded);
  auto bind_reply = encode_response(Response{status::kOk, HostPort{"0.0.0.0", 18080}});
  ASSERT_TRUE(bind_reply.ok());
  expect_prefixes_incomplete(parse_response, *bind_reply);
}

TEST(RelayParse, Ipv4AndIpv6Addresses) {
  auto v4 = parse_request(bytes(with_feature(feature::kAddr, raw({atyp::kIpv4, 10, 0, 0, 1, 0x1f, 0x90}))));
  ASSERT_EQ(v4.state, ParseState::kComplete);
  EXPECT_EQ(v4.value.address, (HostPort{"10.0.0.1", 8080}));
  auto v6 =
      parse_request(bytes(with_feature(feature::kAddr, raw({atyp::kIpv6}) + std::string(15, '\0') + raw({1, 0, 53}))));
  ASSERT_EQ(v6.state, ParseState::kComplete);
  EXPECT_EQ(v6.value.address, (HostPort{"::1", 53}));
}

TEST(RelayParse, EmptyFeatureListAndPlainOkResponse) {
  auto request = parse_request(bytes(raw({1, 2, 0, 0})));
  ASSERT_EQ(request.state, ParseState::kComplete);
  EXPECT_EQ(request.size, 4u);
  EXPECT_EQ(request.value, (Request{.cmd = command::kBind}));
  auto response = parse_response(bytes(kOkResponse + "HTTP/1.1 200 OK"));
  ASSERT_EQ(response.state, ParseState::kComplete);
  EXPECT_EQ(response.size, 4u);
  EXPECT_EQ(response.value, (Response{status::kOk, std::nullopt}));
  EXPECT_EQ(*encode_response(Response{}), kOkResponse);
  auto refused = parse_response(bytes(raw({1, status::kNetworkUnreachable, 0, 0})));
  ASSERT_EQ(refused.state, ParseState::kComplete);
  EXPECT_EQ(refused.value.status, status::kNetworkUnreachable);
}

TEST(RelayParse, BindResponseCarriesTheBoundAddress) {
  auto parsed = parse_response(bytes(raw({1, 0, 0, 10, feature::kAddr, 0, 7, atyp::kIpv4, 0, 0, 0, 0, 0x46, 0xa0})));
  ASSERT_EQ(parsed.state, ParseState::kComplete);
  EXPECT_EQ(parsed.value.address, (HostPort{"0.0.0.0", 18080}));
}

TEST(RelayParse, RejectsWrongVersion) {
  expect_refused(raw({5, 1, 0, 0}), "version 0x05, expected 0x01");
  auto response = parse_response(bytes("HTTP/1.1 400 Bad Request"));
  EXPECT_EQ(response.state, ParseState::kInvalid);
  EXPECT_EQ(response.reply, status::kBadRequest);
  EXPECT_NE(response.reason.find("response version 0x48"), std::string::npos) << response.reason;
}

TEST(RelayParse, RejectsUnknownFeatureType) {
  expect_refused(with_feature(0x09, "abc"), "relay: unknown feature type 0x09");
  auto response = parse_response(bytes(raw({1, 0, 0, 3, 0x05, 0, 0})));
  EXPECT_EQ(response.state, ParseState::kInvalid);
  EXPECT_NE(response.reason.find("unknown feature type 0x05"), std::string::npos);
}

TEST(RelayParse, RejectsFeaturesLongerThanFealen) {
  // Feature LEN 2 but FEALEN leaves room for 1 data byte.
  expect_refused(raw({1, 1, 0, 4, feature::kNetwork, 0, 2, 0}), "feature 0x04 overruns FEALEN");
  // FEALEN ends inside the next feature's header.
  expect_refused(raw({1, 1, 0, 7, feature::kNetwork, 0, 2, 0, 1, feature::kNetwork, 0}),
                 "feature header overruns FEALEN");
}

TEST(RelayParse, RejectsTruncatedUserAuth) {
  expect_refused(with_feature(feature::kUserAuth, raw({0})), "shorter than 2 bytes");
  expect_refused(with_feature(feature::kUserAuth, raw({4, 'u', 's', 'e'})), "username overruns");
  expect_refused(with_feature(feature::kUserAuth, raw({1, 'u', 3, 'p', 'w'})), "password overruns");
  auto empty = parse_request(bytes(with_feature(feature::kUserAuth, raw({0, 0}))));
  ASSERT_EQ(empty.state, ParseState::kComplete);
  EXPECT_EQ(empty.value.auth, (Credentials{"", ""}));
}

TEST(RelayParse, RejectsTruncatedAddresses) {
  expect_refused(with_feature(feature::kAddr, raw({atyp::kIpv4, 1, 2})), "shorter than 4 bytes");
  expect_refused(with_feature(feature::kAddr, raw({atyp::kIpv4, 1, 2, 3, 4, 0})), "address overruns");
  expect_refused(with_feature(feature::kAddr, raw({atyp::kIpv6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0})),
                 "address overruns");
  expect_refused(with_feature(feature::kAddr, raw({atyp::kDomain, 5, 'a', 'b', 0, 80})), "address overruns");
}

TEST(RelayParse, RejectsUnknownAddressTypeAndHostileDomains) {
  expect_refused(with_feature(feature::kAddr, raw({7, 1, 2, 3, 4, 0, 80})), "unknown address type 7");
  expect_refused(with_feature(feature::kAddr, raw({atyp::kDomain, 3, 'a', ' ', 'b', 0, 80})), "host-name alphabet");
  expect_refused(with_feature(feature::kAddr, raw({atyp::kDomain, 2, 'a', '\n', 0, 80})), "host-name alphabet");
}

// Deliberately not refused: go-gost/x clients before mid-2026 encode BIND ":8080" (rtcp) and
// the UDP association (cmd 0x82, no address) as a zero-length domain.
TEST(RelayParse, AcceptsZeroLengthDomainAsAnyHost) {
  std::string association = raw({1, command::kBind | command::kUdpFlag, 0, 12, feature::kNetwork, 0, 2, 0, 1,
                                 feature::kAddr, 0, 4, atyp::kDomain, 0, 0, 0});
  auto parsed = parse_request(bytes(association));
  ASSERT_EQ(parsed.state, ParseState::kComplete);
  EXPECT_EQ(parsed.value.address, (HostPort{"", 0}));
  EXPECT_EQ(parsed.value.command(), command::kBind);
  EXPECT_TRUE(parsed.value.udp());
  auto rtcp = parse_request(bytes(with_feature(feature::kAddr, raw({atyp::kDomain, 0, 0x1f, 0x90}))));
  ASSERT_EQ(rtcp.state, ParseState::kComplete);
  EXPECT_EQ(rtcp.value.address, (HostPort{"", 8080}));
  EXPECT_EQ(*encode_request(rtcp.value), with_feature(feature::kAddr, raw({atyp::kDomain, 0, 0x1f, 0x90})));
}

TEST(RelayParse, RejectsShortTunnelAndNetworkFeatures) {
  expect_refused(with_feature(feature::kTunnel, std::string(15, 'x')), "tunnel feature shorter than 16 bytes");
  expect_refused(with_feature(feature::kNetwork, raw({1})), "network feature shorter than 2 bytes");
}

TEST(RelayParse, TunnelIdOfSixteenOrTwentyBytes) {
  std::string id16 = raw({0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  auto old_form = parse_request(bytes(with_feature(feature::kTunnel, id16)));
  ASSERT_EQ(old_form.state, ParseState::kComplete);
  TunnelId expected{0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};  // FLAG, RSV, WEIGHT read as 0
  EXPECT_EQ(old_form.value.tunnel, expected);
  auto new_form = parse_request(bytes(with_feature(feature::kTunnel, id16 + raw({0x80, 0, 0, 5}))));
  ASSERT_EQ(new_form.state, ParseState::kComplete);
  expected[16] = 0x80;
  expected[19] = 5;
  EXPECT_EQ(new_form.value.tunnel, expected);
  EXPECT_EQ(*encode_request(new_form.value), with_feature(feature::kTunnel, id16 + raw({0x80, 0, 0, 5})));
}

// GOST's decoders read what they need from a feature's DATA and ignore the rest.
TEST(RelayParse, IgnoresExtraBytesAtTheEndOfAFeature) {
  auto network = parse_request(bytes(with_feature(feature::kNetwork, raw({0, 1, 0xAA, 0xBB}))));
  ASSERT_EQ(network.state, ParseState::kComplete);
  EXPECT_EQ(network.value.network, network::kUdp);
  auto address = parse_request(bytes(with_feature(feature::kAddr, raw({atyp::kIpv4, 1, 2, 3, 4, 0, 80, 0xFF}))));
  ASSERT_EQ(address.state, ParseState::kComplete);
  EXPECT_EQ(address.value.address, (HostPort{"1.2.3.4", 80}));
}

TEST(RelayParse, LaterFeatureOfTheSameTypeWins) {
  auto parsed = parse_request(bytes(raw({1, 1, 0, 10, feature::kNetwork, 0, 2, 0, 1, feature::kNetwork, 0, 2, 0, 0})));
  ASSERT_EQ(parsed.state, ParseState::kComplete);
  EXPECT_EQ(parsed.value.network, network::kTcp);
}

TEST(RelayParse, CommandNibbleAndUdpFromFlagOrNetwork) {
  Request request{.cmd = 0x81};
  EXPECT_EQ(request.command(), command::kConnect);
  EXPECT_TRUE(request.udp());
  request = Request{.cmd = 0x00};
  EXPECT_EQ(request.command(), 0);  // GOST servers serve 0 as CONNECT
  EXPECT_FALSE(request.udp());
  request.network = network::kUdp;
  EXPECT_TRUE(request.udp());
  request.network = network::kUnix;
  EXPECT_FALSE(request.udp());
}

TEST(RelayParse, AcceptsTheLargestHeader) {
  // 13107 network features of 5 bytes fill FEALEN 0xFFFF exactly.
  std::string message = raw({1, 1, 0xFF, 0xFF});
  for (int i = 0; i < 13107; ++i) message += raw({feature::kNetwork, 0, 2, 0, 0});
  auto parsed = parse_request(bytes(message + "payload"));
  ASSERT_EQ(parsed.state, ParseState::kComplete);
  EXPECT_EQ(parsed.size, 4u + 0xFFFF);
  EXPECT_EQ(parse_request(bytes(message.substr(0, message.size() - 1))).state, ParseState::kIncomplete);
}

TEST(RelayEncode, FeaturesInGostOrder) {
  Request request{command::kConnect, Credentials{"a", ""}, HostPort{"192.168.1.2", 443}, TunnelId{}, network::kUnix};
  auto encoded = encode_request(request);
  ASSERT_TRUE(encoded.ok());
  std::string header = raw({1, 1, 0, 44});
  std::string user_auth = raw({feature::kUserAuth, 0, 3, 1, 'a', 0});
  std::string addr = raw({feature::kAddr, 0, 7, atyp::kIpv4, 192, 168, 1, 2, 0x01, 0xbb});
  std::string tunnel = raw({feature::kTunnel, 0, 20}) + std::string(20, '\0');
  std::string network_feature = raw({feature::kNetwork, 0, 2, 0, 0x10});
  std::string expected = header + user_auth + addr + tunnel + network_feature;
  EXPECT_EQ(*encoded, expected);
}

TEST(RelayEncode, RequestsAndResponsesRoundTrip) {
  for (const Request& request : {
           Request{},
           Request{command::kConnect | command::kUdpFlag, std::nullopt, HostPort{"10.0.0.1", 53}, std::nullopt,
                   network::kUdp},
           Request{command::kBind, Credentials{std::string(255, 'u'), std::string(255, 'p')},
                   HostPort{std::string(255, 'a'), 65535}, TunnelId{9}, network::kSerial},
           Request{command::kConnect, std::nullopt, HostPort{"2001:db8::7", 8443}, std::nullopt, std::nullopt},
       }) {
    auto encoded = encode_request(request);
    ASSERT_TRUE(encoded.ok()) << encoded.status();
    auto parsed = parse_request(bytes(*encoded));
    ASSERT_EQ(parsed.state, ParseState::kComplete);
    EXPECT_EQ(parsed.size, encoded->size());
    EXPECT_EQ(parsed.value, request);
  }
  for (const Response& response :
       {Response{status::kInternalServerError, std::nullopt}, Response{status::kOk, HostPort{"::", 40000}},
        Response{status::kOk, HostPort{"", 0}}}) {
    auto encoded = encode_response(response);
    ASSERT_TRUE(encoded.ok());
    auto parsed = parse_response(bytes(*encoded));
    ASSERT_EQ(parsed.state, ParseState::kComplete);
    EXPECT_EQ(parsed.value, response);
  }
}

TEST(RelayEncode, RefusesFieldsTheProtocolCannotCarry) {
  EXPECT_FALSE(encode_request(Request{.auth = Credentials{std::string(256, 'u'), "p"}}).ok());
  EXPECT_FALSE(encode_request(Request{.auth = Credentials{"u", std::string(256, 'p')}}).ok());
  EXPECT_FALSE(encode_request(Request{.address = HostPort{std::string(256, 'a'), 80}}).ok());
  EXPECT_FALSE(encode_response(Response{0, HostPort{std::string(256, 'a'), 80}}).ok());
}

TEST(RelayDatagram, FramesFollowEachOther) {
  auto first = frame_datagram(bytes("dns query"));
  auto empty = frame_datagram({});
  ASSERT_TRUE(first.ok() && empty.ok());
  EXPECT_EQ(*first, raw({0, 9}) + "dns query");
  EXPECT_EQ(*empty, raw({0, 0}));  // GOST writes and reads empty datagrams as LEN 0
  std::string stream = *first + *empty + raw({0});
  auto parsed = parse_datagram(bytes(stream));
  ASSERT_EQ(parsed.state, ParseState::kComplete);
  EXPECT_EQ(text(parsed.value), "dns query");
  EXPECT_EQ(parsed.size, 11u);
  auto next = parse_datagram(bytes(stream.substr(parsed.size)));
  ASSERT_EQ(next.state, ParseState::kComplete);
  EXPECT_TRUE(next.value.empty());
  EXPECT_EQ(next.size, 2u);
  EXPECT_EQ(parse_datagram(bytes(stream.substr(parsed.size + next.size))).state, ParseState::kIncomplete);
  expect_prefixes_incomplete(parse_datagram, *first);
}

TEST(RelayDatagram, LargestDatagramFitsAndOneMoreByteIsRefused) {
  std::string largest(kMaxDatagramSize, 'x');
  auto framed = frame_datagram(bytes(largest));
  ASSERT_TRUE(framed.ok());
  EXPECT_EQ(framed->substr(0, 2), raw({0xFF, 0xFF}));
  auto parsed = parse_datagram(bytes(*framed));
  ASSERT_EQ(parsed.state, ParseState::kComplete);
  EXPECT_EQ(parsed.value.size(), kMaxDatagramSize);
  EXPECT_FALSE(frame_datagram(bytes(largest + "x")).ok());
}

}  // namespace
}  // namespace strait::agent::relay_wire
