#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>

#include <boost/beast/http.hpp>

namespace strait::agent {

namespace http = boost::beast::http;

// A request head larger than this is refused with 431, so one client cannot make the proxy
// buffer without bound.
constexpr size_t kMaxRequestHead = 64 * 1024;

using ProxyRequestParser = http::request_parser<http::buffer_body>;

// Applies the proxy's limits to a request parser (head size; bodies are streamed).
void configure_request_parser(ProxyRequestParser& parser);

// Where a proxy request goes: CONNECT host:port (tunnel) or an absolute http:// URI.
struct ProxyTarget {
  bool tunnel = false;
  std::string authority;    // host:port to dial
  std::string origin_form;  // path and query to send upstream (absolute-form requests only)
  std::string host_header;  // the URI's host[:port] as written, for the Host field upstream
};

// Why a request is refused, as the HTTP status to answer with.
struct HttpRefusal {
  int status;
  std::string reason;
};

// Checks a parsed head for something a forward proxy can serve (RFC 9110 §9.3.6 CONNECT,
// RFC 9112 §3.2.2 absolute-form).
std::variant<ProxyTarget, HttpRefusal> proxy_target(const http::request_header<>& head);

struct BasicCredentials {
  std::string username;
  std::string password;
};

// Decodes "Basic base64(user:pass)" (RFC 7617); nullopt for anything else.
std::optional<BasicCredentials> parse_basic_credentials(std::string_view header_value);

// Parses one request head from bytes, as the handler does from a socket; used by tests and
// the fuzzer. Returns the target, a refusal, or nullopt when more bytes are needed.
struct ParsedProxyRequest {
  ProxyTarget target;
  size_t head_size = 0;
  std::string method;
};
std::variant<std::monostate, ParsedProxyRequest, HttpRefusal> parse_proxy_request(std::span<const uint8_t> bytes);

}  // namespace strait::agent
