#pragma once

// SOCKS5 wire format (RFC 1928, RFC 1929) plus GOST's UDP-over-TCP framing ("UDPTun",
// command 0xF3). Pure encoders and decoders over bytes, shared by the socks5 handler and
// connector and fuzzed directly.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/protocol/parse_result.h"
#include "common/address.h"

namespace strait::agent::socks5 {

constexpr uint8_t kVersion = 0x05;
constexpr uint8_t kUserPassVersion = 0x01;

namespace method {
constexpr uint8_t kNoAuth = 0x00;
constexpr uint8_t kUserPass = 0x02;
constexpr uint8_t kTls = 0x80;          // GOST: the connection continues in TLS
constexpr uint8_t kTlsUserPass = 0x82;  // GOST: TLS, then RFC 1929 inside it
constexpr uint8_t kNoAcceptable = 0xFF;
}  // namespace method

namespace command {
constexpr uint8_t kConnect = 0x01;
constexpr uint8_t kBind = 0x02;
constexpr uint8_t kUdpAssociate = 0x03;
constexpr uint8_t kUdpTun = 0xF3;  // GOST: datagrams travel on this TCP connection
}  // namespace command

namespace reply {
constexpr uint8_t kSucceeded = 0x00;
constexpr uint8_t kGeneralFailure = 0x01;
constexpr uint8_t kNotAllowed = 0x02;
constexpr uint8_t kNetworkUnreachable = 0x03;
constexpr uint8_t kHostUnreachable = 0x04;
constexpr uint8_t kConnectionRefused = 0x05;
constexpr uint8_t kTtlExpired = 0x06;
constexpr uint8_t kCommandNotSupported = 0x07;
constexpr uint8_t kAddressTypeNotSupported = 0x08;
}  // namespace reply

namespace atyp {
constexpr uint8_t kIpv4 = 0x01;
constexpr uint8_t kDomain = 0x03;
constexpr uint8_t kIpv6 = 0x04;
}  // namespace atyp

struct Credentials {
  std::string username;
  std::string password;
};

struct Request {
  uint8_t command = 0;
  common::HostPort address;
};

struct Reply {
  uint8_t code = 0;
  common::HostPort address;
};

struct UdpHeader {
  uint8_t fragment = 0;
  common::HostPort address;
};

// One datagram of the UDPTun framing: RSV(2) = payload length | FRAG | address | payload.
struct UdpTunFrame {
  common::HostPort address;
  size_t payload_offset = 0;
  size_t payload_size = 0;
};

using Bytes = std::span<const uint8_t>;

// ATYP | ADDR | PORT, as in requests, replies and UDP headers.
Parsed<common::HostPort> parse_address(Bytes bytes);
Parsed<std::vector<uint8_t>> parse_greeting(Bytes bytes);
Parsed<Credentials> parse_user_pass(Bytes bytes);
Parsed<Request> parse_request(Bytes bytes);
Parsed<Reply> parse_reply(Bytes bytes);
// Client side of the handshake: the server's chosen method, and the RFC 1929 status (true = ok).
Parsed<uint8_t> parse_method_selection(Bytes bytes);
Parsed<bool> parse_user_pass_status(Bytes bytes);
// A whole UDP ASSOCIATE datagram; `size` is the header length, the payload follows it.
Parsed<UdpHeader> parse_udp_header(Bytes datagram);
Parsed<UdpTunFrame> parse_udp_tun_frame(Bytes bytes);

// Fails for a domain name longer than 255 bytes or an empty host.
absl::StatusOr<std::string> encode_address(const common::HostPort& address);
std::string encode_greeting(std::span<const uint8_t> methods);
std::string encode_method_selection(uint8_t method);
absl::StatusOr<std::string> encode_user_pass(std::string_view username, std::string_view password);
std::string encode_user_pass_status(bool ok);
absl::StatusOr<std::string> encode_request(uint8_t command, const common::HostPort& address);
// `address` is the bound address; one that cannot be encoded is sent as 0.0.0.0:0.
std::string encode_reply(uint8_t code, const common::HostPort& address);
// A reply without an address (0.0.0.0:0), as for refusals.
std::string encode_reply(uint8_t code);
absl::StatusOr<std::string> encode_udp_header(const common::HostPort& address);
// GOST writes 0xFF as FRAG in UDPTun frames; readers ignore it.
absl::StatusOr<std::string> encode_udp_tun_frame(const common::HostPort& address, std::span<const uint8_t> payload);

// "1.2.3.4:80" / "[::1]:80" / "name:80" of a socket or stream address string as a HostPort.
common::HostPort host_port_or_any(std::string_view text);

}  // namespace strait::agent::socks5
