#include "agent/protocol/socks5.h"

#include <boost/asio/ip/address.hpp>

#include "common/strings.h"

namespace strait::agent::socks5 {
namespace {

namespace ip = boost::asio::ip;
using common::HostPort;
using common::str_cat;

uint16_t read_u16(Bytes bytes, size_t offset) { return static_cast<uint16_t>(bytes[offset] << 8 | bytes[offset + 1]); }

void append_u16(std::string& out, uint16_t value) {
  out.push_back(static_cast<char>(value >> 8));
  out.push_back(static_cast<char>(value & 0xFF));
}

}  // namespace

Parsed<HostPort> parse_address(Bytes bytes) {
  using Result = Parsed<HostPort>;
  if (bytes.empty()) return Result::incomplete();
  size_t host_size = 0;
  size_t host_offset = 1;
  switch (bytes[0]) {
    case atyp::kIpv4:
      host_size = 4;
      break;
    case atyp::kIpv6:
      host_size = 16;
      break;
    case atyp::kDomain:
      if (bytes.size() < 2) return Result::incomplete();
      host_size = bytes[1];
      host_offset = 2;
      if (host_size == 0) return Result::invalid(reply::kGeneralFailure, "zero-length domain name");
      break;
    default:
      return Result::invalid(reply::kAddressTypeNotSupported, str_cat("unknown address type ", int{bytes[0]}));
  }
  size_t total = host_offset + host_size + 2;
  if (bytes.size() < total) return Result::incomplete();
  HostPort address;
  address.port = read_u16(bytes, host_offset + host_size);
  auto host = bytes.subspan(host_offset, host_size);
  if (bytes[0] == atyp::kIpv4) {
    ip::address_v4::bytes_type raw;
    std::copy(host.begin(), host.end(), raw.begin());
    address.host = ip::address_v4(raw).to_string();
  } else if (bytes[0] == atyp::kIpv6) {
    ip::address_v6::bytes_type raw;
    std::copy(host.begin(), host.end(), raw.begin());
    address.host = ip::address_v6(raw).to_string();
  } else {
    address.host.assign(host.begin(), host.end());
    if (!common::is_host_name(address.host)) {
      return Result::invalid(reply::kGeneralFailure, "domain name has bytes outside the host-name alphabet");
    }
  }
  return Result::complete(std::move(address), total);
}

Parsed<std::vector<uint8_t>> parse_greeting(Bytes bytes) {
  using Result = Parsed<std::vector<uint8_t>>;
  if (bytes.empty()) return Result::incomplete();
  if (bytes[0] != kVersion) return Result::invalid(method::kNoAcceptable, str_cat("not SOCKS5 (version byte ", int{bytes[0]}, ")"));
  if (bytes.size() < 2) return Result::incomplete();
  size_t count = bytes[1];
  if (count == 0) return Result::invalid(method::kNoAcceptable, "greeting offers no methods");
  if (bytes.size() < 2 + count) return Result::incomplete();
  return Result::complete(std::vector<uint8_t>(bytes.begin() + 2, bytes.begin() + 2 + count), 2 + count);
}

Parsed<Credentials> parse_user_pass(Bytes bytes) {
  using Result = Parsed<Credentials>;
  if (bytes.empty()) return Result::incomplete();
  if (bytes[0] != kUserPassVersion) {
    return Result::invalid(1, str_cat("username/password version ", int{bytes[0]}, ", expected 1"));
  }
  if (bytes.size() < 2) return Result::incomplete();
  size_t user_size = bytes[1];
  if (bytes.size() < 3 + user_size) return Result::incomplete();
  size_t password_size = bytes[2 + user_size];
  size_t total = 3 + user_size + password_size;
  if (bytes.size() < total) return Result::incomplete();
  Credentials credentials;
  credentials.username.assign(bytes.begin() + 2, bytes.begin() + 2 + user_size);
  credentials.password.assign(bytes.begin() + 3 + user_size, bytes.begin() + total);
  return Result::complete(std::move(credentials), total);
}

Parsed<Request> parse_request(Bytes bytes) {
  using Result = Parsed<Request>;
  if (bytes.empty()) return Result::incomplete();
  if (bytes[0] != kVersion) {
    return Result::invalid(reply::kGeneralFailure, str_cat("request version ", int{bytes[0]}, ", expected 5"));
  }
  if (bytes.size() < 3) return Result::incomplete();
  uint8_t cmd = bytes[1];
  if (cmd != command::kConnect && cmd != command::kBind && cmd != command::kUdpAssociate && cmd != command::kUdpTun) {
    return Result::invalid(reply::kCommandNotSupported, str_cat("unknown command ", int{cmd}));
  }
  auto address = parse_address(bytes.subspan(3));
  if (address.state != ParseState::kComplete) return address.forward<Request>();
  return Result::complete(Request{cmd, std::move(address.value)}, 3 + address.size);
}

Parsed<Reply> parse_reply(Bytes bytes) {
  using Result = Parsed<Reply>;
  if (bytes.empty()) return Result::incomplete();
  if (bytes[0] != kVersion) return Result::invalid(0, str_cat("reply version ", int{bytes[0]}, ", expected 5"));
  if (bytes.size() < 3) return Result::incomplete();
  auto address = parse_address(bytes.subspan(3));
  if (address.state != ParseState::kComplete) return address.forward<Reply>();
  return Result::complete(Reply{bytes[1], std::move(address.value)}, 3 + address.size);
}

Parsed<uint8_t> parse_method_selection(Bytes bytes) {
  using Result = Parsed<uint8_t>;
  if (bytes.empty()) return Result::incomplete();
  if (bytes[0] != kVersion) return Result::invalid(0, str_cat("method selection version ", int{bytes[0]}, ", expected 5"));
  if (bytes.size() < 2) return Result::incomplete();
  return Result::complete(bytes[1], 2);
}

Parsed<bool> parse_user_pass_status(Bytes bytes) {
  using Result = Parsed<bool>;
  if (bytes.empty()) return Result::incomplete();
  if (bytes[0] != kUserPassVersion) {
    return Result::invalid(0, str_cat("username/password status version ", int{bytes[0]}, ", expected 1"));
  }
  if (bytes.size() < 2) return Result::incomplete();
  return Result::complete(bytes[1] == 0, 2);
}

Parsed<UdpHeader> parse_udp_header(Bytes datagram) {
  using Result = Parsed<UdpHeader>;
  if (datagram.size() < 3) return Result::invalid(0, "datagram shorter than its header");
  if (datagram[0] != 0 || datagram[1] != 0) return Result::invalid(0, "reserved bytes are not zero");
  auto address = parse_address(datagram.subspan(3));
  if (address.state == ParseState::kIncomplete) return Result::invalid(0, "datagram shorter than its header");
  if (address.state == ParseState::kInvalid) return address.forward<UdpHeader>();
  return Result::complete(UdpHeader{datagram[2], std::move(address.value)}, 3 + address.size);
}

Parsed<UdpTunFrame> parse_udp_tun_frame(Bytes bytes) {
  using Result = Parsed<UdpTunFrame>;
  if (bytes.size() < 3) return Result::incomplete();
  size_t payload_size = read_u16(bytes, 0);
  // Length 0 means "the rest of the packet" in plain SOCKS5, which a stream cannot delimit.
  if (payload_size == 0) return Result::invalid(0, "UDP tunnel frame with zero length");
  auto address = parse_address(bytes.subspan(3));
  if (address.state != ParseState::kComplete) return address.forward<UdpTunFrame>();
  size_t offset = 3 + address.size;
  if (bytes.size() < offset + payload_size) return Result::incomplete();
  return Result::complete(UdpTunFrame{std::move(address.value), offset, payload_size}, offset + payload_size);
}

absl::StatusOr<std::string> encode_address(const HostPort& address) {
  std::string out;
  boost::system::error_code ec;
  auto parsed = ip::make_address(address.host, ec);
  if (!ec && parsed.is_v4()) {
    out.push_back(static_cast<char>(atyp::kIpv4));
    auto raw = parsed.to_v4().to_bytes();
    out.append(raw.begin(), raw.end());
  } else if (!ec && parsed.is_v6()) {
    out.push_back(static_cast<char>(atyp::kIpv6));
    auto raw = parsed.to_v6().to_bytes();
    out.append(raw.begin(), raw.end());
  } else {
    if (address.host.empty() || address.host.size() > 255) {
      return absl::InvalidArgumentError(str_cat("host name \"", address.host, "\" must be 1 to 255 bytes for SOCKS5"));
    }
    out.push_back(static_cast<char>(atyp::kDomain));
    out.push_back(static_cast<char>(address.host.size()));
    out.append(address.host);
  }
  append_u16(out, address.port);
  return out;
}

std::string encode_greeting(std::span<const uint8_t> methods) {
  std::string out{static_cast<char>(kVersion), static_cast<char>(methods.size())};
  out.append(methods.begin(), methods.end());
  return out;
}

std::string encode_method_selection(uint8_t chosen) { return {static_cast<char>(kVersion), static_cast<char>(chosen)}; }

absl::StatusOr<std::string> encode_user_pass(std::string_view username, std::string_view password) {
  if (username.size() > 255 || password.size() > 255) {
    return absl::InvalidArgumentError("SOCKS5 username and password are limited to 255 bytes each");
  }
  std::string out{static_cast<char>(kUserPassVersion), static_cast<char>(username.size())};
  out.append(username);
  out.push_back(static_cast<char>(password.size()));
  out.append(password);
  return out;
}

std::string encode_user_pass_status(bool ok) { return {static_cast<char>(kUserPassVersion), static_cast<char>(ok ? 0 : 1)}; }

absl::StatusOr<std::string> encode_request(uint8_t cmd, const HostPort& address) {
  auto encoded = encode_address(address);
  if (!encoded.ok()) return encoded.status();
  return str_cat(std::string{static_cast<char>(kVersion), static_cast<char>(cmd), '\0'}, *encoded);
}

std::string encode_reply(uint8_t code, const HostPort& address) {
  auto encoded = encode_address(address);
  if (!encoded.ok()) encoded = encode_address(HostPort{"0.0.0.0", 0});
  return str_cat(std::string{static_cast<char>(kVersion), static_cast<char>(code), '\0'}, *encoded);
}

std::string encode_reply(uint8_t code) { return encode_reply(code, HostPort{"0.0.0.0", 0}); }

absl::StatusOr<std::string> encode_udp_header(const HostPort& address) {
  auto encoded = encode_address(address);
  if (!encoded.ok()) return encoded.status();
  return str_cat(std::string{'\0', '\0', '\0'}, *encoded);
}

absl::StatusOr<std::string> encode_udp_tun_frame(const HostPort& address, std::span<const uint8_t> payload) {
  if (payload.empty() || payload.size() > 0xFFFF) {
    return absl::InvalidArgumentError("UDP tunnel datagrams must be 1 to 65535 bytes");
  }
  auto encoded = encode_address(address);
  if (!encoded.ok()) return encoded.status();
  std::string out;
  out.reserve(3 + encoded->size() + payload.size());
  append_u16(out, static_cast<uint16_t>(payload.size()));
  out.push_back(static_cast<char>(0xFF));
  out.append(*encoded);
  out.append(payload.begin(), payload.end());
  return out;
}

HostPort host_port_or_any(std::string_view text) {
  auto parsed = common::parse_host_port(text, true);
  if (!parsed.ok()) return HostPort{"0.0.0.0", 0};
  return *parsed;
}

}  // namespace strait::agent::socks5
