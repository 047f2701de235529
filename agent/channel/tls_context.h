#pragma once

#include <memory>
#include <string>
#include <vector>

#include <openssl/ssl.h>

#include "absl/status/statusor.h"
#include "strait/v1/config.pb.h"

namespace strait::agent {

// ALPN protocol lists in wire form (LEN(1) NAME ...), in preference order. Contexts keep a
// pointer to the list, so only these constants are passed.
inline const std::string kNoAlpn;
inline const std::string kAlpnH2("\x02h2", 3);

// An OpenSSL context shared by every connection of one listener or chain node.
using SslContext = std::shared_ptr<SSL_CTX>;

// Server side: the certificate and key of `tls`, else of the agent's top-level `defaults`,
// else a self-signed certificate made once per process (as GOST does). A `caFile` asks every
// client for a certificate signed by that CA (mutual TLS). TLS 1.2 and 1.3 unless `options`
// narrow them.
absl::StatusOr<SslContext> make_server_context(const config::v1::TLSConfig& tls,
                                               const config::v1::TLSConfig& defaults,
                                               const std::string& alpn = kNoAlpn);

// Client side: no verification unless `secure` or a `caFile` is set (GOST's default);
// `certFile`/`keyFile` give a client certificate.
absl::StatusOr<SslContext> make_client_context(const config::v1::TLSConfig& tls, const std::string& alpn = kNoAlpn);

// Whether connections from `tls` verify the server (then SNI is also checked as a host name).
bool verifies_server(const config::v1::TLSConfig& tls);

}  // namespace strait::agent
