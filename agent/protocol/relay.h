#pragma once

// GOST relay protocol wire format (go-gost/relay, PROTOCOLS.md §3): request and response
// headers with their features, and the LEN-prefixed datagrams of relay CONNECT over UDP.
// Pure encoders and decoders over bytes, shared by the relay handler and connector and fuzzed
// directly. Relay BIND over UDP uses GOST's UDP tun framing, which lives in socks5.h.
//
//   Request : VER(1)=0x01 | CMD/FLAGS(1) | FEALEN(2,BE) | FEATURES[FEALEN]
//   Response: VER(1)=0x01 | STATUS(1)    | FEALEN(2,BE) | FEATURES[FEALEN]
//   Feature : TYPE(1) | LEN(2,BE) | DATA[LEN]

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "agent/protocol/parse_result.h"
#include "agent/protocol/socks5.h"
#include "common/address.h"

namespace strait::agent::relay_wire {

constexpr uint8_t kVersion = 0x01;
constexpr size_t kHeaderSize = 4;         // VER | CMD/STATUS | FEALEN
constexpr size_t kFeatureHeaderSize = 3;  // TYPE | LEN
constexpr size_t kMaxDatagramSize = 0xFFFF;

namespace command {
constexpr uint8_t kConnect = 0x01;  // GOST servers treat 0x00 as CONNECT too
constexpr uint8_t kBind = 0x02;
constexpr uint8_t kAssociate = 0x03;  // defined by GOST, refused by its server
constexpr uint8_t kMask = 0x0F;       // the command is the low nibble, flags the high one
constexpr uint8_t kUdpFlag = 0x80;    // FUDP: "deprecated by the network feature", still sent
}  // namespace command

namespace status {
constexpr uint8_t kOk = 0x00;
constexpr uint8_t kBadRequest = 0x01;
constexpr uint8_t kUnauthorized = 0x02;
constexpr uint8_t kForbidden = 0x03;
constexpr uint8_t kTimeout = 0x04;
constexpr uint8_t kServiceUnavailable = 0x05;
constexpr uint8_t kHostUnreachable = 0x06;
constexpr uint8_t kNetworkUnreachable = 0x07;
constexpr uint8_t kInternalServerError = 0x08;
}  // namespace status

namespace feature {
constexpr uint8_t kUserAuth = 0x01;  // ULEN(1) UNAME PLEN(1) PASSWD
constexpr uint8_t kAddr = 0x02;      // a SOCKS5 address: ATYP ADDR PORT(2)
constexpr uint8_t kTunnel = 0x03;    // tunnel ID (request) / connector ID (response)
constexpr uint8_t kNetwork = 0x04;   // NETWORK(2)
}  // namespace feature

namespace network {
constexpr uint16_t kTcp = 0x0000;  // GOST also reads any unknown value as tcp
constexpr uint16_t kUdp = 0x0001;
constexpr uint16_t kIp = 0x0002;
constexpr uint16_t kUnix = 0x0010;
constexpr uint16_t kSerial = 0x0011;
}  // namespace network

// The Addr feature carries an RFC 1928 address (ATYP 1 IPv4, 3 domain, 4 IPv6).
namespace atyp = socks5::atyp;

// go-gost/relay writes 20 bytes since v0.5 (ID 16 | FLAG 1 | RSV 2 | WEIGHT 1) and its current
// decoder refuses fewer; releases before v0.5 wrote the 16-byte ID alone. We read either (a
// missing tail reads as zeros) and always write 20.
constexpr size_t kTunnelIdSize = 20;
constexpr size_t kTunnelIdMinSize = 16;
using TunnelId = std::array<uint8_t, kTunnelIdSize>;

struct Credentials {
  std::string username;
  std::string password;
  friend bool operator==(const Credentials&, const Credentials&) = default;
};

// The `{}` initializers let `Request{.cmd = ..., .address = ...}` leave the rest absent
// without -Wmissing-field-initializers.
struct Request {
  uint8_t cmd = command::kConnect;  // the CMD/FLAGS byte as sent
  std::optional<Credentials> auth{};
  // An empty host is "any": go-gost/x clients before mid-2026 send BIND of ":port" (rtcp) and
  // the UDP association (cmd 0x82) as a zero-length domain.
  std::optional<common::HostPort> address{};
  std::optional<TunnelId> tunnel{};
  std::optional<uint16_t> network{};  // a network:: value, as sent

  // The command without its flags: command::kConnect, kBind, ... (0 also means CONNECT).
  uint8_t command() const { return cmd & command::kMask; }
  // The GOST server's rule: the FUDP flag or a udp network feature.
  bool udp() const { return (cmd & command::kUdpFlag) != 0 || network == network::kUdp; }
  friend bool operator==(const Request&, const Request&) = default;
};

struct Response {
  uint8_t status = status::kOk;
  std::optional<common::HostPort> address{};  // the bound address of a BIND
  friend bool operator==(const Response&, const Response&) = default;
};

using Bytes = std::span<const uint8_t>;

// One header; `size` ends at FEALEN, the payload that follows is not consumed. Nothing is
// decided before all FEALEN bytes are there, so a header is at most 4 + 65535 bytes. Every
// refusal carries status::kBadRequest. As in GOST, a later feature of a type replaces an
// earlier one, and extra bytes at the end of a feature's DATA are ignored. A response keeps
// only its Addr feature (the others, such as a tunnel handler's connector ID, are checked and
// dropped).
Parsed<Request> parse_request(Bytes bytes);
Parsed<Response> parse_response(Bytes bytes);
// One `LEN(2,BE) | DATA[LEN]` datagram of relay CONNECT over UDP: `value` is the payload, a
// view into `bytes`, and `size` is 2 + LEN. LEN 0 is an empty datagram, never invalid.
Parsed<Bytes> parse_datagram(Bytes bytes);

// Features in GOST's order: UserAuth, Addr, Tunnel, Network. Addr is written as ATYP 1/4 for
// an IP literal, else as a domain. Fails for a username, password or host over 255 bytes.
absl::StatusOr<std::string> encode_request(const Request& request);
absl::StatusOr<std::string> encode_response(const Response& response);
// Fails for a payload over 65535 bytes.
absl::StatusOr<std::string> frame_datagram(Bytes payload);

}  // namespace strait::agent::relay_wire
