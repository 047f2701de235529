#include "controller/server/certificates.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <boost/asio/ip/address.hpp>

#include "common/agent_certificate.h"
#include "common/strings.h"

namespace strait::controller {
namespace {

using common::str_cat;

constexpr size_t kMaxCsrSize = 16 * 1024;
// How far back a certificate's validity starts, so an agent whose clock is a little behind
// can use it at once.
constexpr std::chrono::seconds kClockSkew{300};

struct Free {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
  void operator()(X509* cert) const { X509_free(cert); }
  void operator()(X509_REQ* request) const { X509_REQ_free(request); }
  void operator()(BIO* bio) const { BIO_free(bio); }
};
using Key = std::unique_ptr<EVP_PKEY, Free>;
using Cert = std::unique_ptr<X509, Free>;
using Request = std::unique_ptr<X509_REQ, Free>;
using Bio = std::unique_ptr<BIO, Free>;

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

enum class Use { kAuthority, kServer, kAgent };

struct Validity {
  long not_before_offset_seconds;
  long not_after_offset_seconds;
};

// A certificate for `key` named `common_name`, signed by `issuer_key` (self-signed when the
// issuer is null).
absl::StatusOr<Cert> issue(EVP_PKEY* key, const std::string& common_name, X509* issuer, EVP_PKEY* issuer_key,
                           Validity validity, Use use, const std::string& subject_alt_names) {
  Cert cert(X509_new());
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) return openssl_error("draw a serial number");
  serial[0] &= 0x7F;  // a positive serial number
  serial[0] |= 0x40;  // and a full 16 bytes, so its hex form has one spelling
  BIGNUM* number = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(number, X509_get_serialNumber(cert.get()));
  BN_free(number);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), validity.not_before_offset_seconds);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), validity.not_after_offset_seconds);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("Strait"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(common_name.c_str()), -1,
                             -1, 0);
  X509* signer = issuer != nullptr ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
  bool is_ca = use == Use::kAuthority;
  bool ok = add_extension(cert.get(), signer, NID_basic_constraints, is_ca ? "critical,CA:TRUE" : "CA:FALSE") &&
            add_extension(cert.get(), signer, NID_key_usage,
                          is_ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature,keyEncipherment") &&
            add_extension(cert.get(), signer, NID_subject_key_identifier, "hash");
  if (ok && use == Use::kServer) ok = add_extension(cert.get(), signer, NID_ext_key_usage, "serverAuth");
  if (ok && use == Use::kAgent) ok = add_extension(cert.get(), signer, NID_ext_key_usage, "clientAuth");
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

constexpr long kDay = 24 * 3600;

}  // namespace

struct CertificateAuthority::Keys {
  Key key;
  Cert cert;
};

CertificateAuthority::CertificateAuthority(std::unique_ptr<Keys> keys, std::string cert_path, std::string cert_pem)
    : keys_(std::move(keys)), cert_path_(std::move(cert_path)), cert_pem_(std::move(cert_pem)) {}
CertificateAuthority::CertificateAuthority(CertificateAuthority&&) noexcept = default;
CertificateAuthority& CertificateAuthority::operator=(CertificateAuthority&&) noexcept = default;
CertificateAuthority::~CertificateAuthority() = default;

absl::StatusOr<CertificateAuthority> CertificateAuthority::load_or_create(const std::string& data_dir, bool& created) {
  std::string cert_path = data_dir + "/ca.pem";
  std::string key_path = data_dir + "/ca.key";
  auto keys = std::make_unique<Keys>();
  created = false;
  if (std::filesystem::exists(cert_path) && std::filesystem::exists(key_path)) {
    auto cert_pem = read_file(cert_path);
    auto key_pem = read_file(key_path);
    if (!cert_pem.ok()) return cert_pem.status();
    if (!key_pem.ok()) return key_pem.status();
    Bio cert_bio(BIO_new_mem_buf(cert_pem->data(), static_cast<int>(cert_pem->size())));
    Bio key_bio(BIO_new_mem_buf(key_pem->data(), static_cast<int>(key_pem->size())));
    keys->cert.reset(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
    keys->key.reset(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
    if (!keys->cert || !keys->key) return absl::InvalidArgumentError(str_cat("cannot read the CA in ", data_dir));
    return CertificateAuthority(std::move(keys), cert_path, *cert_pem);
  }
  keys->key = new_key();
  if (!keys->key) return openssl_error("create the CA key");
  auto issued = issue(keys->key.get(), "Strait controller CA", nullptr, nullptr, {-3600, 3650 * kDay}, Use::kAuthority, "");
  if (!issued.ok()) return issued.status();
  keys->cert = *std::move(issued);
  std::string cert_pem = to_pem(keys->cert.get());
  if (auto status = write_file(key_path, to_pem(keys->key.get()), true); !status.ok()) return status;
  if (auto status = write_file(cert_path, cert_pem, false); !status.ok()) return status;
  created = true;
  return CertificateAuthority(std::move(keys), cert_path, cert_pem);
}

absl::StatusOr<ServerCertificate> CertificateAuthority::issue_server(const std::vector<std::string>& extra_names) const {
  char hostname[256] = {};
  ::gethostname(hostname, sizeof hostname - 1);
  std::vector<std::string> names = {"localhost", "127.0.0.1", "::1"};
  if (hostname[0] != '\0') names.emplace_back(hostname);
  names.insert(names.end(), extra_names.begin(), extra_names.end());
  Key server_key = new_key();
  if (!server_key) return openssl_error("create the server key");
  auto server = issue(server_key.get(), "strait-controller", keys_->cert.get(), keys_->key.get(), {-3600, 825 * kDay},
                      Use::kServer, alt_names(names));
  if (!server.ok()) return server.status();
  return ServerCertificate{to_pem(server->get()), to_pem(server_key.get())};
}

absl::StatusOr<AgentCertificate> CertificateAuthority::issue_agent(std::string_view csr_pem, const std::string& agent_id,
                                                                   std::chrono::seconds ttl) const {
  if (!common::valid_agent_id(agent_id)) return absl::InvalidArgumentError("agent id is not valid");
  if (ttl.count() <= 0) return absl::InvalidArgumentError("certificate lifetime must be positive");
  if (csr_pem.size() > kMaxCsrSize) return absl::InvalidArgumentError("csr_pem: larger than 16 KiB");
  Bio in(BIO_new_mem_buf(csr_pem.data(), static_cast<int>(csr_pem.size())));
  Request request(PEM_read_bio_X509_REQ(in.get(), nullptr, nullptr, nullptr));
  if (!request) return absl::InvalidArgumentError("csr_pem: not a PEM certificate request");
  Key key(X509_REQ_get_pubkey(request.get()));
  if (!key || X509_REQ_verify(request.get(), key.get()) != 1) {
    return absl::InvalidArgumentError("csr_pem: its signature does not verify");
  }
  if (EVP_PKEY_get_bits(key.get()) < 256) return absl::InvalidArgumentError("csr_pem: key too weak");
  long skew = static_cast<long>(std::min(kClockSkew, ttl).count());
  auto issued = issue(key.get(), agent_id, keys_->cert.get(), keys_->key.get(), {-skew, static_cast<long>(ttl.count())},
                      Use::kAgent, str_cat("URI:", common::kAgentUriPrefix, agent_id));
  if (!issued.ok()) return issued.status();
  AgentCertificate out;
  out.cert_pem = to_pem(issued->get());
  auto facts = common::read_certificate(out.cert_pem);
  if (!facts.ok()) return facts.status();
  out.serial_hex = facts->serial_hex;
  out.not_after_unix = facts->not_after_unix;
  return out;
}

absl::StatusOr<ServerCertificate> read_server_certificate(const std::string& cert_file, const std::string& key_file) {
  if (cert_file.empty() || key_file.empty()) return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  auto cert = read_file(cert_file);
  if (!cert.ok()) return cert.status();
  auto key = read_file(key_file);
  if (!key.ok()) return key.status();
  return ServerCertificate{*cert, *key};
}

}  // namespace strait::controller
