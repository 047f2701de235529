#include "agent/protocol/socks4.h"

#include <algorithm>

#include <boost/asio/ip/address.hpp>

#include "common/strings.h"

namespace strait::agent::socks4 {
namespace {

namespace ip = boost::asio::ip;
using common::HostPort;
using common::str_cat;

// Finds the NUL ending a field that starts at `offset`; npos while it has not arrived.
size_t find_nul(Bytes bytes, size_t offset) {
  auto it = std::find(bytes.begin() + static_cast<std::ptrdiff_t>(offset), bytes.end(), uint8_t{0});
  return it == bytes.end() ? std::string::npos : static_cast<size_t>(it - bytes.begin());
}

std::string ipv4_bytes(const HostPort& address) {
  boost::system::error_code ec;
  auto parsed = ip::make_address_v4(address.host, ec);
  auto raw = ec ? ip::address_v4::bytes_type{} : parsed.to_bytes();
  return std::string(raw.begin(), raw.end());
}

}  // namespace

Parsed<Request> parse_request(Bytes bytes) {
  using Result = Parsed<Request>;
  if (bytes.empty()) return Result::incomplete();
  if (bytes[0] != kVersion) return Result::invalid(reply::kRejected, str_cat("not SOCKS4 (version byte ", int{bytes[0]}, ")"));
  if (bytes.size() < 2) return Result::incomplete();
  uint8_t cmd = bytes[1];
  if (cmd != command::kConnect && cmd != command::kBind) {
    return Result::invalid(reply::kRejected, str_cat("unknown command ", int{cmd}));
  }
  if (bytes.size() < 8) return Result::incomplete();
  Request request;
  request.command = cmd;
  request.address.port = static_cast<uint16_t>(bytes[2] << 8 | bytes[3]);
  ip::address_v4::bytes_type raw;
  std::copy(bytes.begin() + 4, bytes.begin() + 8, raw.begin());
  // 0.0.0.x with x != 0 announces a 4a host name after the user id.
  request.socks4a = raw[0] == 0 && raw[1] == 0 && raw[2] == 0 && raw[3] != 0;

  size_t user_end = find_nul(bytes, 8);
  if (user_end == std::string::npos) {
    if (bytes.size() - 8 > kMaxUserId) return Result::invalid(reply::kRejected, "user id longer than 255 bytes");
    return Result::incomplete();
  }
  if (user_end - 8 > kMaxUserId) return Result::invalid(reply::kRejected, "user id longer than 255 bytes");
  request.user_id.assign(bytes.begin() + 8, bytes.begin() + static_cast<std::ptrdiff_t>(user_end));
  if (!request.socks4a) {
    request.address.host = ip::address_v4(raw).to_string();
    return Result::complete(std::move(request), user_end + 1);
  }
  size_t host_start = user_end + 1;
  size_t host_end = find_nul(bytes, host_start);
  if (host_end == std::string::npos) {
    if (bytes.size() - host_start > kMaxHostName) return Result::invalid(reply::kRejected, "host name longer than 255 bytes");
    return Result::incomplete();
  }
  if (host_end == host_start) return Result::invalid(reply::kRejected, "zero-length host name");
  if (host_end - host_start > kMaxHostName) return Result::invalid(reply::kRejected, "host name longer than 255 bytes");
  request.address.host.assign(bytes.begin() + static_cast<std::ptrdiff_t>(host_start),
                              bytes.begin() + static_cast<std::ptrdiff_t>(host_end));
  if (!common::is_host_name(request.address.host)) {
    return Result::invalid(reply::kRejected, "host name has bytes outside the host-name alphabet");
  }
  return Result::complete(std::move(request), host_end + 1);
}

Parsed<uint8_t> parse_reply(Bytes bytes) {
  using Result = Parsed<uint8_t>;
  if (bytes.size() < kReplySize) {
    if (!bytes.empty() && bytes[0] != kReplyVersion) return Result::invalid(0, str_cat("reply version ", int{bytes[0]}, ", expected 0"));
    return Result::incomplete();
  }
  if (bytes[0] != kReplyVersion) return Result::invalid(0, str_cat("reply version ", int{bytes[0]}, ", expected 0"));
  return Result::complete(bytes[1], kReplySize);
}

absl::StatusOr<std::string> encode_request(uint8_t cmd, const HostPort& address, std::string_view user_id) {
  if (user_id.size() > kMaxUserId || user_id.find('\0') != std::string_view::npos) {
    return absl::InvalidArgumentError("SOCKS4 user id must be at most 255 bytes without NUL");
  }
  boost::system::error_code ec;
  ip::make_address_v4(address.host, ec);
  bool socks4a = static_cast<bool>(ec);
  if (socks4a) {
    if (address.host.empty() || address.host.size() > kMaxHostName || common::is_ipv6_literal(address.host)) {
      return absl::InvalidArgumentError(str_cat("SOCKS4 cannot address host \"", address.host, "\""));
    }
  }
  std::string out{static_cast<char>(kVersion), static_cast<char>(cmd), static_cast<char>(address.port >> 8),
                  static_cast<char>(address.port & 0xFF)};
  out.append(socks4a ? std::string{'\0', '\0', '\0', '\1'} : ipv4_bytes(address));
  out.append(user_id);
  out.push_back('\0');
  if (socks4a) {
    out.append(address.host);
    out.push_back('\0');
  }
  return out;
}

std::string encode_reply(uint8_t code, const HostPort& address) {
  std::string out{static_cast<char>(kReplyVersion), static_cast<char>(code), static_cast<char>(address.port >> 8),
                  static_cast<char>(address.port & 0xFF)};
  out.append(ipv4_bytes(address));
  return out;
}

std::string encode_reply(uint8_t code) { return encode_reply(code, HostPort{"0.0.0.0", 0}); }

}  // namespace strait::agent::socks4
