// The controller's process-wide OpenSSL settings.
#include "controller/server/tls_settings.h"

#include <gtest/gtest.h>
#include <openssl/ssl.h>

namespace strait::controller {
namespace {

TEST(TlsSettings, TlsServersMadeAfterwardsSendNoSessionTickets) {
  SSL_CTX* before = SSL_CTX_new(TLS_server_method());
  ASSERT_NE(before, nullptr);
  EXPECT_GT(SSL_CTX_get_num_tickets(before), 0u) << "OpenSSL's default: two tickets after each handshake";
  SSL_CTX_free(before);
  // The test machine's openssl.cnf sets no TLS defaults, so the setting applies.
  ASSERT_TRUE(turn_off_session_tickets());
  SSL_CTX* after = SSL_CTX_new(TLS_server_method());
  ASSERT_NE(after, nullptr);
  EXPECT_EQ(SSL_CTX_get_num_tickets(after), 0u);
  SSL_CTX_free(after);
  EXPECT_TRUE(turn_off_session_tickets()) << "a second call finds it done";
}

}  // namespace
}  // namespace strait::controller
