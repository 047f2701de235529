#include "agent/protocol/relay.h"

#include <algorithm>
#include <string_view>

#include "common/strings.h"

namespace strait::agent::relay_wire {
namespace {

using common::HostPort;
using common::str_cat;

constexpr size_t kMaxFieldSize = 0xFF;  // ULEN, PLEN and a domain's LEN are one byte

uint16_t read_u16(Bytes bytes, size_t offset) { return static_cast<uint16_t>(bytes[offset] << 8 | bytes[offset + 1]); }

void append_u16(std::string& out, size_t value) {
  out.push_back(static_cast<char>(value >> 8 & 0xFF));
  out.push_back(static_cast<char>(value & 0xFF));
}

std::string hex(uint8_t value) {
  constexpr char kDigits[] = "0123456789abcdef";
  return {'0', 'x', kDigits[value >> 4], kDigits[value & 0x0F]};
}

// Decodes one feature's DATA into `out` and returns why it is refused, or nothing.
std::optional<std::string> decode_feature(uint8_t type, Bytes data, Request& out) {
  switch (type) {
    case feature::kUserAuth: {
      if (data.size() < 2) return "relay: user auth feature shorter than 2 bytes";
      size_t user_size = data[0];
      if (data.size() < 2 + user_size) return "relay: username overruns its feature";
      size_t password_size = data[1 + user_size];
      if (data.size() < 2 + user_size + password_size) return "relay: password overruns its feature";
      auto user = data.subspan(1, user_size);
      auto password = data.subspan(2 + user_size, password_size);
      out.auth = Credentials{{user.begin(), user.end()}, {password.begin(), password.end()}};
      return std::nullopt;
    }
    case feature::kAddr: {
      if (data.size() < 4) return "relay: address feature shorter than 4 bytes";
      if (data[0] == atyp::kDomain && data[1] == 0) {
        out.address = HostPort{"", read_u16(data, 2)};
        return std::nullopt;
      }
      auto address = socks5::parse_address(data);
      if (address.state == ParseState::kIncomplete) return "relay: address overruns its feature";
      if (address.state == ParseState::kInvalid) return str_cat("relay: ", address.reason);
      out.address = std::move(address.value);
      return std::nullopt;
    }
    case feature::kTunnel: {
      if (data.size() < kTunnelIdMinSize) return "relay: tunnel feature shorter than 16 bytes";
      TunnelId id{};
      std::copy_n(data.begin(), std::min(data.size(), id.size()), id.begin());
      out.tunnel = id;
      return std::nullopt;
    }
    case feature::kNetwork:
      if (data.size() < 2) return "relay: network feature shorter than 2 bytes";
      out.network = read_u16(data, 0);
      return std::nullopt;
    default:
      return str_cat("relay: unknown feature type ", hex(type));
  }
}

// A request or a response: the layout is the same, with STATUS in place of CMD/FLAGS (kept in
// `cmd`). `what` names the message in refusals.
Parsed<Request> parse_message(Bytes bytes, std::string_view what) {
  using Result = Parsed<Request>;
  if (bytes.empty()) return Result::incomplete();
  if (bytes[0] != kVersion) {
    return Result::invalid(status::kBadRequest,
                           str_cat("relay: ", what, " version ", hex(bytes[0]), ", expected 0x01"));
  }
  if (bytes.size() < kHeaderSize) return Result::incomplete();
  size_t total = kHeaderSize + read_u16(bytes, 2);
  if (bytes.size() < total) return Result::incomplete();
  Request message;
  message.cmd = bytes[1];
  for (Bytes rest = bytes.subspan(kHeaderSize, total - kHeaderSize); !rest.empty();) {
    if (rest.size() < kFeatureHeaderSize)
      return Result::invalid(status::kBadRequest, "relay: feature header overruns FEALEN");
    size_t data_size = read_u16(rest, 1);
    if (rest.size() < kFeatureHeaderSize + data_size) {
      return Result::invalid(status::kBadRequest, str_cat("relay: feature ", hex(rest[0]), " overruns FEALEN"));
    }
    if (auto error = decode_feature(rest[0], rest.subspan(kFeatureHeaderSize, data_size), message)) {
      return Result::invalid(status::kBadRequest, std::move(*error));
    }
    rest = rest.subspan(kFeatureHeaderSize + data_size);
  }
  return Result::complete(std::move(message), total);
}

void append_feature(std::string& out, uint8_t type, std::string_view data) {
  out.push_back(static_cast<char>(type));
  append_u16(out, data.size());
  out.append(data);
}

absl::StatusOr<std::string> encode_address(const HostPort& address) {
  if (address.host.size() > kMaxFieldSize) {
    return absl::InvalidArgumentError(str_cat("relay: host name of ", address.host.size(), " bytes, at most 255 fit"));
  }
  if (!address.host.empty()) return socks5::encode_address(address);
  std::string out{static_cast<char>(atyp::kDomain), '\0'};
  append_u16(out, address.port);
  return out;
}

// VER | code | FEALEN | features. FEALEN cannot overflow: all four features together take at
// most 515 + 262 + 23 + 5 bytes.
absl::StatusOr<std::string> encode_message(const Request& message) {
  std::string features;
  if (message.auth) {
    const auto& [username, password] = *message.auth;
    if (username.size() > kMaxFieldSize || password.size() > kMaxFieldSize) {
      return absl::InvalidArgumentError("relay: username and password are limited to 255 bytes each");
    }
    append_feature(features, feature::kUserAuth,
                   str_cat(static_cast<char>(username.size()), username, static_cast<char>(password.size()), password));
  }
  if (message.address) {
    auto address = encode_address(*message.address);
    if (!address.ok()) return address.status();
    append_feature(features, feature::kAddr, *address);
  }
  if (message.tunnel) {
    append_feature(features, feature::kTunnel,
                   std::string_view(reinterpret_cast<const char*>(message.tunnel->data()), message.tunnel->size()));
  }
  if (message.network) {
    std::string network;
    append_u16(network, *message.network);
    append_feature(features, feature::kNetwork, network);
  }
  std::string out{static_cast<char>(kVersion), static_cast<char>(message.cmd)};
  append_u16(out, features.size());
  out.append(features);
  return out;
}

}  // namespace

Parsed<Request> parse_request(Bytes bytes) { return parse_message(bytes, "request"); }

Parsed<Response> parse_response(Bytes bytes) {
  auto message = parse_message(bytes, "response");
  if (message.state != ParseState::kComplete) return message.forward<Response>();
  return Parsed<Response>::complete(Response{message.value.cmd, std::move(message.value.address)}, message.size);
}

Parsed<Bytes> parse_datagram(Bytes bytes) {
  if (bytes.size() < 2) return Parsed<Bytes>::incomplete();
  size_t size = read_u16(bytes, 0);
  if (bytes.size() < 2 + size) return Parsed<Bytes>::incomplete();
  return Parsed<Bytes>::complete(bytes.subspan(2, size), 2 + size);
}

absl::StatusOr<std::string> encode_request(const Request& request) { return encode_message(request); }

absl::StatusOr<std::string> encode_response(const Response& response) {
  Request message;
  message.cmd = response.status;
  message.address = response.address;
  return encode_message(message);
}

absl::StatusOr<std::string> frame_datagram(Bytes payload) {
  if (payload.size() > kMaxDatagramSize) {
    return absl::InvalidArgumentError(str_cat("relay: datagram of ", payload.size(), " bytes, at most 65535 fit"));
  }
  std::string out;
  out.reserve(2 + payload.size());
  append_u16(out, payload.size());
  out.append(payload.begin(), payload.end());
  return out;
}

}  // namespace strait::agent::relay_wire
