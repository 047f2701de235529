#include "agent/handler/http_request.h"

#include <gtest/gtest.h>

namespace strait::agent {
namespace {

std::variant<std::monostate, ParsedProxyRequest, HttpRefusal> parse(std::string_view text) {
  return parse_proxy_request({reinterpret_cast<const uint8_t*>(text.data()), text.size()});
}

TEST(HttpProxyRequest, ParsesConnect) {
  auto result = parse("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\nleftover");
  auto* request = std::get_if<ParsedProxyRequest>(&result);
  ASSERT_NE(request, nullptr);
  EXPECT_TRUE(request->target.tunnel);
  EXPECT_EQ(request->target.authority, "example.com:443");
  EXPECT_EQ(request->head_size, std::string_view("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n").size());
}

TEST(HttpProxyRequest, ParsesAbsoluteUriWithDefaultPort) {
  auto result = parse("GET http://user@example.com/a/b?c=d#frag HTTP/1.1\r\nHost: example.com\r\n\r\n");
  auto* request = std::get_if<ParsedProxyRequest>(&result);
  ASSERT_NE(request, nullptr);
  EXPECT_FALSE(request->target.tunnel);
  EXPECT_EQ(request->target.authority, "example.com:80");
  EXPECT_EQ(request->target.origin_form, "/a/b?c=d");
  EXPECT_EQ(request->target.host_header, "example.com") << "without the user info, with the port as written";
  EXPECT_EQ(request->method, "GET");
}

TEST(HttpProxyRequest, ParsesIpv6AndExplicitPort) {
  auto result = parse("GET http://[::1]:8080 HTTP/1.1\r\n\r\n");
  auto* request = std::get_if<ParsedProxyRequest>(&result);
  ASSERT_NE(request, nullptr);
  EXPECT_EQ(request->target.authority, "[::1]:8080");
  EXPECT_EQ(request->target.origin_form, "/");
  EXPECT_EQ(request->target.host_header, "[::1]:8080");
}

TEST(HttpProxyRequest, NeedsMoreForPartialHead) {
  EXPECT_TRUE(std::holds_alternative<std::monostate>(parse("GET http://a/ HTTP/1.1\r\nHost: a\r\n")));
  EXPECT_TRUE(std::holds_alternative<std::monostate>(parse("")));
}

TEST(HttpProxyRequest, RefusesGarbageWith400) {
  for (std::string_view bad : {std::string_view("\x00\x01garbage\r\n\r\n", 13), std::string_view("GET\r\n\r\n"),
                               std::string_view("GET / HTTP/1.1\r\n\r\n"), std::string_view("CONNECT example.com HTTP/1.1\r\n\r\n"),
                               std::string_view("CONNECT :443 HTTP/1.1\r\n\r\n"),
                               std::string_view("GET https://a/ HTTP/1.1\r\n\r\n"),
                               std::string_view("GET http:/// HTTP/1.1\r\n\r\n"),
                               std::string_view("GET http://a:99999/ HTTP/1.1\r\n\r\n")}) {
    auto result = parse(bad);
    auto* refusal = std::get_if<HttpRefusal>(&result);
    ASSERT_NE(refusal, nullptr) << bad;
    EXPECT_EQ(refusal->status, 400) << bad;
    EXPECT_FALSE(refusal->reason.empty());
  }
}

TEST(HttpProxyRequest, RefusesOversizedHeadWith431) {
  std::string head = "GET http://a/ HTTP/1.1\r\nX-Big: " + std::string(70 * 1024, 'x') + "\r\n\r\n";
  auto result = parse(head);
  auto* refusal = std::get_if<HttpRefusal>(&result);
  ASSERT_NE(refusal, nullptr);
  EXPECT_EQ(refusal->status, 431);
  std::string unterminated = "GET http://a/ HTTP/1.1\r\nX-Big: " + std::string(70 * 1024, 'x');
  auto partial = parse(unterminated);
  ASSERT_NE(std::get_if<HttpRefusal>(&partial), nullptr);
}

TEST(BasicCredentials, DecodesUserAndPassword) {
  auto credentials = parse_basic_credentials("Basic dXNlcjpwYTpzcw==");  // user:pa:ss
  ASSERT_TRUE(credentials);
  EXPECT_EQ(credentials->username, "user");
  EXPECT_EQ(credentials->password, "pa:ss");
  EXPECT_TRUE(parse_basic_credentials("basic dXNlcjo="));  // scheme is case-insensitive
}

TEST(BasicCredentials, RejectsOtherSchemesAndBadBase64) {
  EXPECT_FALSE(parse_basic_credentials("Bearer abc"));
  EXPECT_FALSE(parse_basic_credentials("Basic !!!"));
  EXPECT_FALSE(parse_basic_credentials("Basic dXNlcg=="));  // no colon
  EXPECT_FALSE(parse_basic_credentials(""));
}

}  // namespace
}  // namespace strait::agent
