#include "agent/channel/tls_context.h"

#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "unit/channel/tls_test_support.h"

namespace strait::agent {
namespace {

using namespace tls_test;
using testing::run_for;

config::v1::TLSConfig files(const Certificates& certificates, const std::string& name) {
  config::v1::TLSConfig tls;
  tls.set_cert_file(certificates.path(name + ".pem"));
  tls.set_key_file(certificates.path(name + ".key"));
  return tls;
}

// What each side gets from a handshake between contexts made of these configs.
std::pair<error_code, error_code> handshake(const config::v1::TLSConfig& server, const config::v1::TLSConfig& client,
                                            const config::v1::TLSConfig& defaults = {}) {
  auto server_context = make_server_context(server, defaults);
  auto client_context = make_client_context(client);
  EXPECT_TRUE(server_context.ok()) << server_context.status();
  EXPECT_TRUE(client_context.ok()) << client_context.status();
  if (!server_context.ok() || !client_context.ok()) return {asio::error::invalid_argument, {}};
  asio::io_context io;
  auto pair = run_for(io, tls_pair(*server_context, *client_context));
  return {pair.client_error, pair.server_error};
}

TEST(TlsContext, ServesItsCertificateFilesAndAVerifyingClientAcceptsThem) {
  Certificates certificates;
  certificates.issue("server");
  config::v1::TLSConfig client;
  client.set_ca_file(certificates.path("ca.pem"));
  EXPECT_TRUE(verifies_server(client));
  auto [client_error, server_error] = handshake(files(certificates, "server"), client);
  EXPECT_FALSE(client_error) << client_error.message();
  EXPECT_FALSE(server_error) << server_error.message();
}

// The chain in the certificate file goes out with the certificate: a client that trusts
// only the root needs the intermediate.
TEST(TlsContext, SendsTheIntermediateOfItsCertificateFile) {
  Certificates certificates;
  certificates.issue_through_intermediate("server");
  config::v1::TLSConfig client;
  client.set_ca_file(certificates.path("ca.pem"));
  auto [client_error, server_error] = handshake(files(certificates, "server"), client);
  EXPECT_FALSE(client_error) << client_error.message();
  EXPECT_FALSE(server_error) << server_error.message();
}

TEST(TlsContext, TopLevelDefaultsServeWhenTheListenerHasNoCertificate) {
  Certificates certificates;
  certificates.issue("server");
  config::v1::TLSConfig client;
  client.set_ca_file(certificates.path("ca.pem"));
  auto [client_error, server_error] = handshake(config::v1::TLSConfig{}, client, files(certificates, "server"));
  EXPECT_FALSE(client_error) << client_error.message();
}

TEST(TlsContext, VerifyingClientRefusesAnotherNameOrAuthority) {
  Certificates certificates;
  certificates.issue("other", "other.example");
  Certificates strangers;
  strangers.issue("server");
  config::v1::TLSConfig client;
  client.set_ca_file(certificates.path("ca.pem"));
  EXPECT_TRUE(handshake(files(certificates, "other"), client).first) << "a certificate for another name passed";
  EXPECT_TRUE(handshake(files(strangers, "server"), client).first) << "another authority's certificate passed";
  // Without `secure` or `caFile` the client takes any certificate, as GOST's does.
  EXPECT_FALSE(verifies_server(config::v1::TLSConfig{}));
  EXPECT_FALSE(handshake(files(strangers, "server"), config::v1::TLSConfig{}).first);
}

TEST(TlsContext, CaFileOnTheServerRequiresClientCertificates) {
  Certificates certificates;
  certificates.issue("server");
  certificates.issue("client", "client");
  auto server = files(certificates, "server");
  server.set_ca_file(certificates.path("ca.pem"));
  auto [anonymous_client, anonymous_server] = handshake(server, config::v1::TLSConfig{});
  EXPECT_TRUE(anonymous_server) << "a client without a certificate passed mutual TLS";
  auto [client_error, server_error] = handshake(server, files(certificates, "client"));
  EXPECT_FALSE(server_error) << server_error.message();
  EXPECT_FALSE(client_error) << client_error.message();
}

TEST(TlsContext, BadFilesAndVersionsAreErrorsNamingTheKey) {
  Certificates certificates;
  certificates.issue("server");
  certificates.issue("other");
  auto mismatched = files(certificates, "server");
  mismatched.set_key_file(certificates.path("other.key"));
  auto status = make_server_context(mismatched, {}).status();
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("keyFile"), std::string::npos) << status;
  config::v1::TLSConfig missing_ca;
  missing_ca.set_ca_file(certificates.path("absent.pem"));
  status = make_client_context(missing_ca).status();
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("caFile"), std::string::npos) << status;
  config::v1::TLSConfig old;
  old.mutable_options()->set_max_version("VersionTLS11");
  status = make_client_context(old).status();
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("maxVersion"), std::string::npos) << status;
}

// A TLS 1.3 server sends one ticket, as Go's does: a client that resumes has a session to
// resume with, and the server encodes and encrypts one session per handshake, not two.
TEST(TlsContext, ServerSendsOneSessionTicket) {
  static int tickets_received = 0;
  tickets_received = 0;
  auto server_context = make_server_context({}, {});
  ASSERT_TRUE(server_context.ok()) << server_context.status();
  auto client_context = make_client_context({});
  ASSERT_TRUE(client_context.ok()) << client_context.status();
  SSL_CTX_set_session_cache_mode(client_context->get(), SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(client_context->get(), [](SSL*, SSL_SESSION*) {
    ++tickets_received;
    return 0;  // not kept: OpenSSL frees it
  });
  asio::io_context io;
  run_for(io, [&]() -> asio::awaitable<void> {
    auto pair = co_await tls_pair(*server_context, *client_context);
    EXPECT_FALSE(pair.client_error) << pair.client_error.message();
    EXPECT_STREQ(SSL_get_version(pair.client->ssl()), "TLSv1.3");
    // The tickets go out right after the handshake, so they are read before these bytes.
    co_await asio::async_write(*pair.server, asio::buffer("after", 5), asio::as_tuple(asio::use_awaitable));
    char received[5];
    auto [error, n] = co_await asio::async_read(*pair.client, asio::buffer(received), asio::as_tuple(asio::use_awaitable));
    EXPECT_FALSE(error) << error.message();
  }());
  EXPECT_EQ(tickets_received, 1);
}

// GOST configs name suites as Go does; over TLS 1.2 the one named is the one negotiated.
TEST(TlsContext, CipherSuitesTakeGoNamesForTls12) {
  config::v1::TLSConfig server;
  server.mutable_options()->set_max_version("VersionTLS12");
  server.mutable_options()->add_cipher_suites("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305");
  server.mutable_options()->add_cipher_suites("TLS_AES_128_GCM_SHA256");
  auto server_context = make_server_context(server, {});
  ASSERT_TRUE(server_context.ok()) << server_context.status();
  auto client_context = make_client_context({});
  ASSERT_TRUE(client_context.ok()) << client_context.status();
  asio::io_context io;
  auto pair = run_for(io, tls_pair(*server_context, *client_context));
  ASSERT_FALSE(pair.client_error) << pair.client_error.message();
  EXPECT_STREQ(SSL_get_version(pair.client->ssl()), "TLSv1.2");
  EXPECT_STREQ(SSL_CIPHER_get_name(SSL_get_current_cipher(pair.client->ssl())), "ECDHE-ECDSA-CHACHA20-POLY1305");

  config::v1::TLSConfig unknown;
  unknown.mutable_options()->add_cipher_suites("TLS_RSA_WITH_ROT13");
  auto status = make_client_context(unknown).status();
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("TLS_RSA_WITH_ROT13"), std::string::npos) << status;
}

}  // namespace
}  // namespace strait::agent
