#include "agent/handler/http_request.h"

#include "absl/strings/escaping.h"
#include "common/address.h"
#include "common/strings.h"

namespace strait::agent {

void configure_request_parser(ProxyRequestParser& parser) {
  parser.header_limit(kMaxRequestHead);
  parser.body_limit(boost::none);
  parser.eager(false);
}

std::variant<ProxyTarget, HttpRefusal> proxy_target(const http::request_header<>& head) {
  ProxyTarget target;
  std::string_view uri(head.target().data(), head.target().size());
  if (head.method() == http::verb::connect) {
    auto address = common::parse_host_port(uri);
    if (!address.ok() || address->host.empty()) {
      return HttpRefusal{400, common::str_cat("CONNECT needs host:port, got \"", uri.substr(0, 200), "\"")};
    }
    target.tunnel = true;
    target.authority = address->to_string();
    return target;
  }
  constexpr std::string_view kHttpScheme = "http://";
  if (uri.size() < kHttpScheme.size() || !common::iequals(uri.substr(0, kHttpScheme.size()), kHttpScheme)) {
    if (common::istarts_with(uri, "https://")) {
      return HttpRefusal{400, "https:// URIs must be requested with CONNECT"};
    }
    return HttpRefusal{400, "a proxy request needs an absolute http:// URI or CONNECT"};
  }
  std::string_view rest = uri.substr(kHttpScheme.size());
  size_t authority_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, authority_end);
  if (auto at = authority.rfind('@'); at != std::string_view::npos) authority = authority.substr(at + 1);
  if (authority.empty()) return HttpRefusal{400, "absolute URI without a host"};
  std::string host_port(authority);
  bool has_port = authority.front() == '['
                      ? authority.find("]:") != std::string_view::npos
                      : authority.find(':') != std::string_view::npos;
  if (!has_port) host_port += ":80";
  auto address = common::parse_host_port(host_port);
  if (!address.ok() || address->host.empty()) {
    return HttpRefusal{400, common::str_cat("bad host in URI \"", uri.substr(0, 200), "\"")};
  }
  target.authority = address->to_string();
  target.host_header = std::string(authority);
  target.origin_form = authority_end == std::string_view::npos ? "/" : std::string(rest.substr(authority_end));
  if (target.origin_form.front() != '/') target.origin_form.insert(0, "/");
  if (auto fragment = target.origin_form.find('#'); fragment != std::string::npos) target.origin_form.resize(fragment);
  return target;
}

std::optional<BasicCredentials> parse_basic_credentials(std::string_view header_value) {
  header_value = common::strip_whitespace(header_value);
  if (header_value.size() < 6 || !common::iequals(header_value.substr(0, 6), "basic ")) return std::nullopt;
  std::string decoded;
  if (!absl::Base64Unescape(std::string(common::strip_whitespace(header_value.substr(6))), &decoded)) return std::nullopt;
  auto colon = decoded.find(':');
  if (colon == std::string::npos) return std::nullopt;
  return BasicCredentials{decoded.substr(0, colon), decoded.substr(colon + 1)};
}

std::variant<std::monostate, ParsedProxyRequest, HttpRefusal> parse_proxy_request(std::span<const uint8_t> bytes) {
  ProxyRequestParser parser;
  configure_request_parser(parser);
  boost::beast::error_code ec;
  size_t used = parser.put(boost::asio::buffer(bytes.data(), bytes.size()), ec);
  if (ec == http::error::need_more) {
    if (bytes.size() > kMaxRequestHead) return HttpRefusal{431, "request head larger than 64 KiB"};
    return std::monostate{};
  }
  if (ec == http::error::header_limit) return HttpRefusal{431, "request head larger than 64 KiB"};
  if (ec) return HttpRefusal{400, common::str_cat("malformed request: ", ec.message())};
  if (!parser.is_header_done()) return std::monostate{};
  auto target = proxy_target(parser.get().base());
  if (auto* refusal = std::get_if<HttpRefusal>(&target)) return *refusal;
  return ParsedProxyRequest{std::get<ProxyTarget>(std::move(target)), used,
                            std::string(parser.get().method_string())};
}

}  // namespace strait::agent
