#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace strait::common {

// A host (name, IPv4 or IPv6 literal without brackets; empty = any/local) and a port.
struct HostPort {
  std::string host;
  uint16_t port = 0;

  // "host:port", with brackets around IPv6 literals.
  std::string to_string() const;
  friend bool operator==(const HostPort&, const HostPort&) = default;
};

// Parses "host:port", "[v6]:port" or ":port". The port is required and must be 1..65535
// unless allow_zero_port is set (listen addresses may ask the kernel for a port).
absl::StatusOr<HostPort> parse_host_port(std::string_view text, bool allow_zero_port = false);

// True when a host name a client sent can be looked up or dialed: letters, digits, '-', '.'
// and '_' (RFC 952/1123 names plus the underscore some service names use), or an IPv6
// literal. Anything else (spaces, quotes, control characters) is refused where it arrives.
bool is_host_name(std::string_view host);

// True when the host is an IPv6 literal (contains ':').
bool is_ipv6_literal(std::string_view host);

}  // namespace strait::common
