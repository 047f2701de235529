#include "controller/server/certificates.h"

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include <boost/asio/ip/address.hpp>

#include "common/strings.h"

namespace strait::controller {
namespace {

using common::str_cat;

struct Deleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
  void operator()(X509* cert) const { X509_free(cert); }
  void operator()(BIO* bio) const { BIO_free(bio); }
};
using Key = std::unique_ptr<EVP_PKEY, Deleter>;
using Cert = std::unique_ptr<X509, Deleter>;
using Bio = std::unique_ptr<BIO, Deleter>;

absl::Status openssl_error(std::string_view what) { return absl::InternalError(str_cat("TLS: cannot ", what)); }

absl::StatusOr<std::string> read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(str_cat("cannot read ", path));
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

absl::Status write_file(const std::string& path, const std::string& contents, bool secret) {
  mode_t previous = ::umask(secret ? 077 : 022);
  std::ofstream out(path, std::ios::trunc);
  out << contents;
  out.close();
  ::umask(previous);
  if (!out) return absl::UnavailableError(str_cat("cannot write ", path));
  return absl::OkStatus();
}

std::string to_pem(X509* cert) {
  Bio bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  char* data = nullptr;
  long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

std::string to_pem(EVP_PKEY* key) {
  Bio bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

Key new_key() { return Key(EVP_EC_gen("P-256")); }

bool add_extension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX context;
  X509V3_set_ctx_nodb(&context);
  X509V3_set_ctx(&context, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &context, nid, value.c_str());
  if (extension == nullptr) return false;
  bool ok = X509_add_ext(cert, extension, -1) == 1;
  X509_EXTENSION_free(extension);
  return ok;
}

// A certificate for `key` named `common_name`, signed by `issuer_key` (self-signed when the
// issuer is null).
absl::StatusOr<Cert> issue(EVP_PKEY* key, const std::string& common_name, X509* issuer, EVP_PKEY* issuer_key,
                           long days, bool is_ca, const std::string& subject_alt_names) {
  Cert cert(X509_new());
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof serial);
  serial[0] &= 0x7F;  // a positive serial number
  BIGNUM* number = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(number, X509_get_serialNumber(cert.get()));
  BN_free(number);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), days * 24 * 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("Strait"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(common_name.c_str()), -1,
                             -1, 0);
  X509* signer = issuer != nullptr ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
  bool ok = add_extension(cert.get(), signer, NID_basic_constraints, is_ca ? "critical,CA:TRUE" : "CA:FALSE") &&
            add_extension(cert.get(), signer, NID_key_usage,
                          is_ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature,keyEncipherment") &&
            add_extension(cert.get(), signer, NID_subject_key_identifier, "hash");
  if (ok && !is_ca) ok = add_extension(cert.get(), signer, NID_ext_key_usage, "serverAuth");
  if (ok && !subject_alt_names.empty()) ok = add_extension(cert.get(), signer, NID_subject_alt_name, subject_alt_names);
  if (!ok) return openssl_error("build certificate extensions");
  if (X509_sign(cert.get(), issuer_key != nullptr ? issuer_key : key, EVP_sha256()) == 0) return openssl_error("sign");
  return cert;
}

std::string alt_names(const std::vector<std::string>& names) {
  std::vector<std::string> entries;
  for (const auto& name : names) {
    boost::system::error_code ec;
    boost::asio::ip::make_address(name, ec);
    entries.push_back(str_cat(ec ? "DNS:" : "IP:", name));
  }
  return common::join(entries, ",");
}

}  // namespace

absl::StatusOr<ServerCertificate> server_certificate(const std::string& data_dir, const std::string& cert_file,
                                                     const std::string& key_file,
                                                     const std::vector<std::string>& extra_names) {
  ServerCertificate result;
  if (!cert_file.empty() || !key_file.empty()) {
    if (cert_file.empty() || key_file.empty()) return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
    auto cert = read_file(cert_file);
    if (!cert.ok()) return cert.status();
    auto key = read_file(key_file);
    if (!key.ok()) return key.status();
    result.cert_pem = *cert;
    result.key_pem = *key;
    return result;
  }
  std::string ca_cert_path = data_dir + "/ca.pem";
  std::string ca_key_path = data_dir + "/ca.key";
  Key ca_key;
  Cert ca_cert;
  if (std::filesystem::exists(ca_cert_path) && std::filesystem::exists(ca_key_path)) {
    auto cert_pem = read_file(ca_cert_path);
    auto key_pem = read_file(ca_key_path);
    if (!cert_pem.ok()) return cert_pem.status();
    if (!key_pem.ok()) return key_pem.status();
    Bio cert_bio(BIO_new_mem_buf(cert_pem->data(), static_cast<int>(cert_pem->size())));
    Bio key_bio(BIO_new_mem_buf(key_pem->data(), static_cast<int>(key_pem->size())));
    ca_cert.reset(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
    ca_key.reset(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
    if (!ca_cert || !ca_key) return absl::InvalidArgumentError(str_cat("cannot read the CA in ", data_dir));
  } else {
    ca_key = new_key();
    if (!ca_key) return openssl_error("create the CA key");
    auto issued = issue(ca_key.get(), "Strait controller CA", nullptr, nullptr, 3650, true, "");
    if (!issued.ok()) return issued.status();
    ca_cert = *std::move(issued);
    if (auto status = write_file(ca_key_path, to_pem(ca_key.get()), true); !status.ok()) return status;
    if (auto status = write_file(ca_cert_path, to_pem(ca_cert.get()), false); !status.ok()) return status;
    result.created_ca = true;
  }
  char hostname[256] = {};
  ::gethostname(hostname, sizeof hostname - 1);
  std::vector<std::string> names = {"localhost", "127.0.0.1", "::1"};
  if (hostname[0] != '\0') names.emplace_back(hostname);
  names.insert(names.end(), extra_names.begin(), extra_names.end());
  Key server_key = new_key();
  if (!server_key) return openssl_error("create the server key");
  auto server = issue(server_key.get(), "strait-controller", ca_cert.get(), ca_key.get(), 825, false, alt_names(names));
  if (!server.ok()) return server.status();
  result.cert_pem = to_pem(server->get());
  result.key_pem = to_pem(server_key.get());
  result.ca_path = ca_cert_path;
  return result;
}

}  // namespace strait::controller
