#pragma once

// SOCKS4 and SOCKS4a wire format (the SOCKS4 protocol text and its 4A extension). Pure
// encoders and decoders over bytes, shared by the socks4 handler and connector.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "agent/protocol/parse_result.h"
#include "common/address.h"

namespace strait::agent::socks4 {

constexpr uint8_t kVersion = 0x04;
constexpr uint8_t kReplyVersion = 0x00;

namespace command {
constexpr uint8_t kConnect = 0x01;
constexpr uint8_t kBind = 0x02;
}  // namespace command

namespace reply {
constexpr uint8_t kGranted = 90;
constexpr uint8_t kRejected = 91;
constexpr uint8_t kNoIdentd = 92;
constexpr uint8_t kUserIdMismatch = 93;
}  // namespace reply

// USERID and the 4a host name are NUL-terminated; these bound what a reader buffers.
constexpr size_t kMaxUserId = 255;
constexpr size_t kMaxHostName = 255;
constexpr size_t kReplySize = 8;

struct Request {
  uint8_t command = 0;
  common::HostPort address;  // an IPv4 literal, or the 4a host name
  std::string user_id;
  bool socks4a = false;
};

using Bytes = std::span<const uint8_t>;

Parsed<Request> parse_request(Bytes bytes);
// The reply code; `size` is always kReplySize.
Parsed<uint8_t> parse_reply(Bytes bytes);

// A 4a request when the host is not an IPv4 literal; IPv6 cannot be expressed.
absl::StatusOr<std::string> encode_request(uint8_t command, const common::HostPort& address, std::string_view user_id);
// `address` is the bound address; a host that is not IPv4 is sent as 0.0.0.0.
std::string encode_reply(uint8_t code, const common::HostPort& address);
// A reply without an address (0.0.0.0:0), as for refusals.
std::string encode_reply(uint8_t code);

}  // namespace strait::agent::socks4
