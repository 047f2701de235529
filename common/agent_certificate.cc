#include "common/agent_certificate.h"

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <ctime>
#include <memory>

#include "common/strings.h"

namespace strait::common {
namespace {

// Larger than any certificate this system makes; bounds what a peer can make us parse.
constexpr size_t kMaxPemSize = 16 * 1024;

struct Free {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
  void operator()(X509* cert) const { X509_free(cert); }
  void operator()(X509_REQ* request) const { X509_REQ_free(request); }
  void operator()(BIO* bio) const { BIO_free(bio); }
  void operator()(BIGNUM* number) const { BN_free(number); }
  void operator()(GENERAL_NAMES* names) const { GENERAL_NAMES_free(names); }
  void operator()(char* text) const { OPENSSL_free(text); }
};
template <typename T>
using Owned = std::unique_ptr<T, Free>;

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);
  return size > 0 ? std::string(data, static_cast<size_t>(size)) : std::string();
}

Owned<BIO> read_bio(std::string_view text) {
  return Owned<BIO>(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

absl::StatusOr<int64_t> unix_time(const ASN1_TIME* time) {
  struct tm parts {};
  if (time == nullptr || ASN1_TIME_to_tm(time, &parts) != 1) return absl::InvalidArgumentError("unreadable validity");
  return static_cast<int64_t>(timegm(&parts));
}

}  // namespace

bool valid_agent_id(std::string_view id) {
  if (id.empty() || id.size() > 63 || !std::isalnum(static_cast<unsigned char>(id[0]))) return false;
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_') return false;
  }
  return true;
}

absl::StatusOr<AgentKey> make_agent_key(const std::string& agent_id) {
  if (!valid_agent_id(agent_id)) return absl::InvalidArgumentError(str_cat("agent id \"", agent_id, "\" is not valid"));
  Owned<EVP_PKEY> key(EVP_EC_gen("P-256"));
  Owned<X509_REQ> request(X509_REQ_new());
  if (!key || !request) return absl::InternalError("TLS: cannot create a key");
  X509_NAME* name = X509_REQ_get_subject_name(request.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(agent_id.c_str()), -1,
                             -1, 0);
  if (X509_REQ_set_pubkey(request.get(), key.get()) != 1 || X509_REQ_sign(request.get(), key.get(), EVP_sha256()) == 0) {
    return absl::InternalError("TLS: cannot sign the certificate request");
  }
  Owned<BIO> key_out(BIO_new(BIO_s_mem()));
  Owned<BIO> request_out(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PrivateKey(key_out.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1 ||
      PEM_write_bio_X509_REQ(request_out.get(), request.get()) != 1) {
    return absl::InternalError("TLS: cannot write the key");
  }
  return AgentKey{bio_text(key_out.get()), bio_text(request_out.get())};
}

absl::StatusOr<CertificateFacts> read_certificate(std::string_view pem) {
  if (pem.size() > kMaxPemSize) return absl::InvalidArgumentError("certificate larger than 16 KiB");
  auto in = read_bio(pem);
  Owned<X509> cert(PEM_read_bio_X509(in.get(), nullptr, nullptr, nullptr));
  if (!cert) return absl::InvalidArgumentError("not a PEM certificate");
  CertificateFacts facts;
  Owned<GENERAL_NAMES> names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr)));
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* entry = sk_GENERAL_NAME_value(names.get(), i);
    if (entry->type != GEN_URI) continue;
    std::string_view uri(reinterpret_cast<const char*>(ASN1_STRING_get0_data(entry->d.uniformResourceIdentifier)),
                         static_cast<size_t>(ASN1_STRING_length(entry->d.uniformResourceIdentifier)));
    if (!uri.starts_with(kAgentUriPrefix)) continue;
    if (!facts.agent_id.empty()) return absl::InvalidArgumentError("certificate names more than one agent");
    std::string_view id = uri.substr(kAgentUriPrefix.size());
    if (!valid_agent_id(id)) return absl::InvalidArgumentError("certificate names an agent id that is not valid");
    facts.agent_id = std::string(id);
  }
  Owned<BIGNUM> serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert.get()), nullptr));
  Owned<char> serial_hex(serial ? BN_bn2hex(serial.get()) : nullptr);
  if (!serial_hex) return absl::InvalidArgumentError("unreadable serial number");
  facts.serial_hex = to_lower(serial_hex.get());
  auto not_before = unix_time(X509_get0_notBefore(cert.get()));
  auto not_after = unix_time(X509_get0_notAfter(cert.get()));
  if (!not_before.ok()) return not_before.status();
  if (!not_after.ok()) return not_after.status();
  facts.not_before_unix = *not_before;
  facts.not_after_unix = *not_after;
  return facts;
}

bool key_matches_certificate(std::string_view key_pem, std::string_view cert_pem) {
  auto key_in = read_bio(key_pem);
  auto cert_in = read_bio(cert_pem);
  Owned<EVP_PKEY> key(PEM_read_bio_PrivateKey(key_in.get(), nullptr, nullptr, nullptr));
  Owned<X509> cert(PEM_read_bio_X509(cert_in.get(), nullptr, nullptr, nullptr));
  return key && cert && X509_check_private_key(cert.get(), key.get()) == 1;
}

}  // namespace strait::common
