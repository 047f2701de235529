#include "common/address.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>

#include "common/strings.h"

namespace strait::common {

std::string HostPort::to_string() const {
  if (is_ipv6_literal(host)) return str_cat("[", host, "]:", port);
  return str_cat(host, ":", port);
}

bool is_host_name(std::string_view host) {
  if (host.empty() || host.size() > 255) return false;
  bool alphabet = std::all_of(host.begin(), host.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_';
  });
  if (alphabet) return true;
  in6_addr ignored;
  return ::inet_pton(AF_INET6, std::string(host).c_str(), &ignored) == 1;
}

bool is_ipv6_literal(std::string_view host) { return host.find(':') != std::string_view::npos; }

absl::StatusOr<HostPort> parse_host_port(std::string_view text, bool allow_zero_port) {
  auto invalid = [&](std::string_view why) {
    return absl::InvalidArgumentError(
        str_cat("invalid address \"", text, "\": ", why, " (expected host:port, [ipv6]:port or :port)"));
  };
  HostPort out;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) return invalid("missing ']'");
    out.host = std::string(text.substr(1, close - 1));
    if (out.host.empty()) return invalid("empty IPv6 literal");
    if (close + 1 >= text.size() || text[close + 1] != ':') return invalid("missing port");
    port_text = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return invalid("missing port");
    out.host = std::string(text.substr(0, colon));
    if (out.host.find(':') != std::string::npos) return invalid("IPv6 literals need brackets");
    port_text = text.substr(colon + 1);
  }
  if (port_text.empty()) return invalid("missing port");
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || value > 65535 ||
      (value == 0 && !allow_zero_port)) {
    return invalid("port must be a number from 1 to 65535");
  }
  for (char c : out.host) {
    if (c == '/' || c == '@' || c == ' ' || c == '?' || c == '#') return invalid("bad character in host");
  }
  out.port = static_cast<uint16_t>(value);
  return out;
}

}  // namespace strait::common
