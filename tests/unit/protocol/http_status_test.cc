#include "agent/protocol/http_status.h"

#include <gtest/gtest.h>

namespace strait::agent {
namespace {

TEST(HttpStatus, ParsesStatusLine) {
  EXPECT_EQ(parse_http_status("HTTP/1.1 200 Connection established\r\n\r\n"), 200);
  EXPECT_EQ(parse_http_status("HTTP/1.0 407\r\n\r\n"), 407);
  EXPECT_FALSE(parse_http_status("HTTP/2 200\r\n"));
  EXPECT_FALSE(parse_http_status("HTTP/1.1 2x0 OK\r\n"));
  EXPECT_FALSE(parse_http_status("SSH-2.0-OpenSSH\r\n"));
  EXPECT_FALSE(parse_http_status(""));
  EXPECT_FALSE(parse_http_status("HTTP/1.1 200OK\r\n"));
  EXPECT_EQ(parse_http_status("HTTP/1.1 999"), 999);
}

}  // namespace
}  // namespace strait::agent
