#include "agent/channel/tls_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include <mutex>

#include "common/duration.h"
#include "common/log_escape.h"
#include "common/strings.h"

namespace strait::agent {
namespace {

using config::v1::TLSConfig;

std::string openssl_error() {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

constexpr char kTls13Suites[] = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

absl::Status tls_error(std::string_view what, std::string_view file) {
  return absl::InvalidArgumentError(common::str_cat(what, " \"", file, "\": ", openssl_error()));
}

// GOST writes versions as Go's constant names; plain numbers are accepted too.
absl::StatusOr<int> parse_version(const std::string& text, std::string_view key) {
  if (text == "VersionTLS12" || text == "1.2" || text == "TLS1.2") return TLS1_2_VERSION;
  if (text == "VersionTLS13" || text == "1.3" || text == "TLS1.3") return TLS1_3_VERSION;
  return absl::InvalidArgumentError(
      common::str_cat("tls.options.", key, " \"", text, "\": expected VersionTLS12 or VersionTLS13"));
}

// GOST's cipherSuites are Go's names, which are the IANA names except for two ChaCha20 suites
// Go names without their hash. As in Go, they govern TLS 1.2 only: TLS 1.3 suites are fixed.
absl::StatusOr<std::string> tls12_cipher_list(const google::protobuf::RepeatedPtrField<std::string>& names) {
  std::string list;
  for (const std::string& name : names) {
    // TLS 1.3 suites (no key exchange in the name): Go takes and ignores them.
    if (name == "TLS_AES_128_GCM_SHA256" || name == "TLS_AES_256_GCM_SHA384" || name == "TLS_CHACHA20_POLY1305_SHA256") {
      continue;
    }
    std::string standard = name;
    if (name == "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305" || name == "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305") {
      standard += "_SHA256";
    }
    const char* openssl_name = OPENSSL_cipher_name(standard.c_str());
    if (openssl_name == nullptr || std::string_view(openssl_name) == "(NONE)") {
      return absl::InvalidArgumentError(
          common::str_cat("tls.options.cipherSuites: unknown cipher suite \"", common::text_escaped(name), "\""));
    }
    if (!list.empty()) list += ':';
    list += openssl_name;
  }
  return list;
}

absl::Status apply_options(SSL_CTX* ctx, const config::v1::TLSOptions& options) {
  int min = TLS1_2_VERSION;
  int max = TLS1_3_VERSION;
  if (!options.min_version().empty()) {
    auto parsed = parse_version(options.min_version(), "minVersion");
    if (!parsed.ok()) return parsed.status();
    min = *parsed;
  }
  if (!options.max_version().empty()) {
    auto parsed = parse_version(options.max_version(), "maxVersion");
    if (!parsed.ok()) return parsed.status();
    max = *parsed;
  }
  if (min > max) return absl::InvalidArgumentError("tls.options: minVersion is above maxVersion");
  if (!options.cipher_suites().empty()) {
    auto list = tls12_cipher_list(options.cipher_suites());
    if (!list.ok()) return list.status();
    if (!list->empty() && SSL_CTX_set_cipher_list(ctx, list->c_str()) != 1) {
      return absl::InvalidArgumentError(common::str_cat("tls.options.cipherSuites: ", openssl_error()));
    }
  }
  // AES-128-GCM first, as Go's TLS (hence GOST) orders TLS 1.3 suites on hardware with AES
  // instructions: as strong for this use and a third cheaper per byte than AES-256.
  SSL_CTX_set_ciphersuites(ctx, kTls13Suites);
  SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_min_proto_version(ctx, min);
  SSL_CTX_set_max_proto_version(ctx, max);
  // Renegotiation would make a write wait for a read; a peer's EOF without close_notify is
  // an end of stream, as it is for Go's TLS (GOST).
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION);
  return absl::OkStatus();
}

int select_alpn(SSL*, const unsigned char** out, unsigned char* out_size, const unsigned char* offered,
                unsigned int offered_size, void* arg) {
  const auto* ours = static_cast<const std::string*>(arg);
  unsigned char* selected = nullptr;
  int result = SSL_select_next_proto(&selected, out_size, reinterpret_cast<const unsigned char*>(ours->data()),
                                     static_cast<unsigned int>(ours->size()), offered, offered_size);
  if (result != OPENSSL_NPN_NEGOTIATED) return SSL_TLSEXT_ERR_NOACK;
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

struct SelfSigned {
  EVP_PKEY* key = nullptr;
  X509* certificate = nullptr;
  std::string error;
};

// GOST's default certificate: made at start when no certificate is configured anywhere.
SelfSigned make_self_signed(const TLSConfig& defaults) {
  SelfSigned made;
  made.key = EVP_EC_gen("P-256");
  made.certificate = X509_new();
  if (made.key == nullptr || made.certificate == nullptr) {
    made.error = openssl_error();
    return made;
  }
  std::chrono::nanoseconds validity = std::chrono::hours(24 * 365);
  if (!defaults.validity().empty()) {
    if (auto parsed = common::parse_duration(defaults.validity()); parsed.ok() && parsed->count() > 0) {
      validity = *parsed;
    }
  }
  std::string common_name = defaults.common_name().empty() ? "strait" : defaults.common_name();
  std::string organization = defaults.organization().empty() ? "strait" : defaults.organization();
  X509_set_version(made.certificate, 2);
  BIGNUM* serial = BN_new();
  BN_rand(serial, 120, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY);
  BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(made.certificate));
  BN_free(serial);
  X509_gmtime_adj(X509_getm_notBefore(made.certificate), -3600);
  X509_gmtime_adj(X509_getm_notAfter(made.certificate),
                  static_cast<long>(std::chrono::duration_cast<std::chrono::seconds>(validity).count()));
  X509_NAME* name = X509_get_subject_name(made.certificate);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(organization.c_str()),
                             -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(common_name.c_str()),
                             -1, -1, 0);
  X509_set_issuer_name(made.certificate, name);
  X509_set_pubkey(made.certificate, made.key);
  std::string san = "DNS:" + common_name;
  if (X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, san.c_str())) {
    X509_add_ext(made.certificate, extension, -1);
    X509_EXTENSION_free(extension);
  }
  if (X509_sign(made.certificate, made.key, EVP_sha256()) == 0) made.error = openssl_error();
  return made;
}

const SelfSigned& default_certificate(const TLSConfig& defaults) {
  static std::once_flag once;
  static SelfSigned made;
  std::call_once(once, [&] { made = make_self_signed(defaults); });
  return made;
}

SslContext new_context(const SSL_METHOD* method) {
  return SslContext(SSL_CTX_new(method), SSL_CTX_free);
}

}  // namespace

bool verifies_server(const TLSConfig& tls) { return tls.secure() || !tls.ca_file().empty(); }

absl::StatusOr<SslContext> make_server_context(const TLSConfig& tls, const TLSConfig& defaults,
                                               const std::string& alpn) {
  SslContext ctx = new_context(TLS_server_method());
  if (!ctx) return absl::InternalError("cannot make a TLS context: " + openssl_error());
  if (auto status = apply_options(ctx.get(), tls.has_options() ? tls.options() : defaults.options()); !status.ok()) {
    return status;
  }
  const TLSConfig& source = !tls.cert_file().empty() ? tls : defaults;
  if (!source.cert_file().empty()) {
    if (source.key_file().empty()) return absl::InvalidArgumentError("tls.certFile is set but tls.keyFile is not");
    if (SSL_CTX_use_certificate_chain_file(ctx.get(), source.cert_file().c_str()) != 1) {
      return tls_error("tls.certFile", source.cert_file());
    }
    if (SSL_CTX_use_PrivateKey_file(ctx.get(), source.key_file().c_str(), SSL_FILETYPE_PEM) != 1) {
      return tls_error("tls.keyFile", source.key_file());
    }
    if (SSL_CTX_check_private_key(ctx.get()) != 1) return tls_error("tls.keyFile does not match", source.cert_file());
  } else {
    const SelfSigned& made = default_certificate(defaults);
    if (!made.error.empty()) return absl::InternalError("cannot make the default certificate: " + made.error);
    SSL_CTX_use_certificate(ctx.get(), made.certificate);
    SSL_CTX_use_PrivateKey(ctx.get(), made.key);
  }
  const std::string& ca = !tls.ca_file().empty() ? tls.ca_file() : (source.cert_file().empty() ? "" : source.ca_file());
  if (!ca.empty()) {
    if (SSL_CTX_load_verify_locations(ctx.get(), ca.c_str(), nullptr) != 1) return tls_error("tls.caFile", ca);
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  // A certificate file without its chain gets the chain OpenSSL would build from the store,
  // built once here: left to OpenSSL's automatic chain, every handshake ran a chain
  // verification (X509_verify_cert) of its own. A file's own chain is sent as it is.
  STACK_OF(X509)* file_chain = nullptr;
  SSL_CTX_get0_chain_certs(ctx.get(), &file_chain);
  if (sk_X509_num(file_chain) <= 0) {
    SSL_CTX_build_cert_chain(ctx.get(), SSL_BUILD_CHAIN_FLAG_IGNORE_ERROR);
    ERR_clear_error();
  }
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_NO_AUTO_CHAIN);
  if (!alpn.empty()) SSL_CTX_set_alpn_select_cb(ctx.get(), select_alpn, const_cast<std::string*>(&alpn));
  // Resumption by stateless tickets: a server-side cache would keep every client's session
  // in memory for minutes.
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  // One TLS 1.3 ticket per handshake, as Go's TLS (GOST's server) sends. OpenSSL's default
  // second one is a second session encoded, encrypted and sent, 5 % of the server's CPU per
  // handshake, for clients that keep one ticket per server anyway (Go's, curl's).
  SSL_CTX_set_num_tickets(ctx.get(), 1);
  return ctx;
}

absl::StatusOr<SslContext> make_client_context(const TLSConfig& tls, const std::string& alpn) {
  SslContext ctx = new_context(TLS_client_method());
  if (!ctx) return absl::InternalError("cannot make a TLS context: " + openssl_error());
  if (auto status = apply_options(ctx.get(), tls.options()); !status.ok()) return status;
  if (verifies_server(tls)) {
    int loaded = tls.ca_file().empty() ? SSL_CTX_set_default_verify_paths(ctx.get())
                                       : SSL_CTX_load_verify_locations(ctx.get(), tls.ca_file().c_str(), nullptr);
    if (loaded != 1) return tls_error("tls.caFile", tls.ca_file());
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  }
  if (!tls.cert_file().empty()) {
    if (tls.key_file().empty()) return absl::InvalidArgumentError("tls.certFile is set but tls.keyFile is not");
    if (SSL_CTX_use_certificate_chain_file(ctx.get(), tls.cert_file().c_str()) != 1) {
      return tls_error("tls.certFile", tls.cert_file());
    }
    if (SSL_CTX_use_PrivateKey_file(ctx.get(), tls.key_file().c_str(), SSL_FILETYPE_PEM) != 1) {
      return tls_error("tls.keyFile", tls.key_file());
    }
  }
  if (!alpn.empty()) {
    SSL_CTX_set_alpn_protos(ctx.get(), reinterpret_cast<const unsigned char*>(alpn.data()),
                            static_cast<unsigned int>(alpn.size()));
  }
  return ctx;
}

}  // namespace strait::agent
