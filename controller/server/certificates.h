#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace strait::controller {

struct ServerCertificate {
  std::string cert_pem;
  std::string key_pem;
};

struct AgentCertificate {
  std::string cert_pem;
  std::string serial_hex;
  int64_t not_after_unix = 0;
};

// The controller's CA (ca.pem, ca.key in the data dir, EC P-256, 10 years), created on first
// start. It signs the agents' certificates and, unless the operator brings one, the server
// certificate of the gRPC ports.
class CertificateAuthority {
 public:
  // `created` is set when this call made the CA.
  static absl::StatusOr<CertificateAuthority> load_or_create(const std::string& data_dir, bool& created);
  CertificateAuthority(CertificateAuthority&&) noexcept;
  CertificateAuthority& operator=(CertificateAuthority&&) noexcept;
  ~CertificateAuthority();

  const std::string& cert_path() const { return cert_path_; }
  const std::string& cert_pem() const { return cert_pem_; }

  // For localhost, 127.0.0.1, ::1, this host's name and every name or IP in `extra_names`.
  absl::StatusOr<ServerCertificate> issue_server(const std::vector<std::string>& extra_names) const;

  // Signs the key of `csr_pem` (whose signature must verify) for `agent_id`: the id in a
  // spiffe://strait/agent/<id> URI SAN and the CN, client use only, valid from a little
  // before now (clock skew, at most `ttl`) to now + `ttl`.
  absl::StatusOr<AgentCertificate> issue_agent(std::string_view csr_pem, const std::string& agent_id,
                                               std::chrono::seconds ttl) const;

 private:
  struct Keys;
  explicit CertificateAuthority(std::unique_ptr<Keys> keys, std::string cert_path, std::string cert_pem);

  std::unique_ptr<Keys> keys_;
  std::string cert_path_;
  std::string cert_pem_;
};

// The operator's server certificate and key files.
absl::StatusOr<ServerCertificate> read_server_certificate(const std::string& cert_file, const std::string& key_file);

}  // namespace strait::controller
