#pragma once

// Shared by the TLS tests: TlsStreams joined over a loopback TCP pair, and certificates made
// with the openssl command in a temporary directory.

#include <cstdlib>
#include <filesystem>
#include <string>
#include <utility>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <gtest/gtest.h>

#include "agent/channel/tcp.h"
#include "agent/channel/tls_context.h"
#include "agent/channel/tls_stream.h"
#include "support/asio_test.h"

namespace strait::agent::tls_test {

using namespace asio::experimental::awaitable_operators;

struct TlsPair {
  std::unique_ptr<TlsStream> client;
  std::unique_ptr<TlsStream> server;
  error_code client_error{};
  error_code server_error{};
};

// Both handshakes over a fresh loopback TCP pair; `server_name` is sent as SNI and, when the
// client context verifies, checked against the certificate.
inline asio::awaitable<TlsPair> tls_pair(const SslContext& server_context, const SslContext& client_context,
                                         const std::string& server_name = "localhost") {
  auto [client_socket, server_socket] = co_await testing::tcp_pair();
  SSL* server_ssl = SSL_new(server_context.get());
  SSL_set_accept_state(server_ssl);
  SSL* client_ssl = SSL_new(client_context.get());
  SSL_set_connect_state(client_ssl);
  SSL_set_tlsext_host_name(client_ssl, server_name.c_str());
  SSL_set1_host(client_ssl, server_name.c_str());
  TlsPair pair{std::make_unique<TlsStream>(std::make_unique<TcpStream>(std::move(client_socket)), client_ssl),
               std::make_unique<TlsStream>(std::make_unique<TcpStream>(std::move(server_socket)), server_ssl)};
  auto [client_error, server_error] = co_await (pair.client->handshake() && pair.server->handshake());
  pair.client_error = client_error;
  pair.server_error = server_error;
  co_return pair;
}

// A CA and certificates it signs for "localhost", in a directory removed with the object.
class Certificates {
 public:
  Certificates() {
    dir_ = std::filesystem::temp_directory_path() /
           ("strait-tls-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter()++));
    std::filesystem::create_directories(dir_);
    run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=test-ca"
        " -keyout " + path("ca.key") + " -out " + path("ca.pem"));
  }
  ~Certificates() {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  Certificates(const Certificates&) = delete;
  Certificates& operator=(const Certificates&) = delete;

  // Makes `name`.pem and `name`.key, signed by the CA, for DNS name `host`.
  void issue(const std::string& name, const std::string& host = "localhost") {
    run("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=" + host + " -keyout " +
        path(name + ".key") + " -out " + path(name + ".csr"));
    std::string extensions = path(name + ".ext");
    run("printf 'subjectAltName=DNS:" + host + "\\n' > " + extensions);
    run("openssl x509 -req -in " + path(name + ".csr") + " -CA " + path("ca.pem") + " -CAkey " + path("ca.key") +
        " -CAcreateserial -days 2 -extfile " + extensions + " -out " + path(name + ".pem"));
  }
  // Makes `name`.pem (the certificate, then an intermediate CA's) and `name`.key, for
  // "localhost", signed by an intermediate CA that the CA signs.
  void issue_through_intermediate(const std::string& name) {
    run("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=test-intermediate -keyout " +
        path("intermediate.key") + " -out " + path("intermediate.csr"));
    run("printf 'basicConstraints=critical,CA:TRUE\\nkeyUsage=keyCertSign\\n' > " + path("intermediate.ext"));
    run("openssl x509 -req -in " + path("intermediate.csr") + " -CA " + path("ca.pem") + " -CAkey " + path("ca.key") +
        " -CAcreateserial -days 2 -extfile " + path("intermediate.ext") + " -out " + path("intermediate.pem"));
    run("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost -keyout " +
        path(name + ".key") + " -out " + path(name + ".csr"));
    run("printf 'subjectAltName=DNS:localhost\\n' > " + path(name + ".ext"));
    run("openssl x509 -req -in " + path(name + ".csr") + " -CA " + path("intermediate.pem") + " -CAkey " +
        path("intermediate.key") + " -CAcreateserial -days 2 -extfile " + path(name + ".ext") + " -out " +
        path(name + ".leaf.pem"));
    run("cat " + path(name + ".leaf.pem") + " " + path("intermediate.pem") + " > " + path(name + ".pem"));
  }
  std::string path(const std::string& file) const { return (dir_ / file).string(); }

 private:
  static int& counter() {
    static int value = 0;
    return value;
  }
  static void run(const std::string& command) {
    ASSERT_EQ(std::system((command + " 2>/dev/null").c_str()), 0) << command;
  }
  std::filesystem::path dir_;
};

}  // namespace strait::agent::tls_test
