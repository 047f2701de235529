#pragma once

// What the agent and the controller both need to know of an agent's X.509 identity: how an
// agent makes its key and certificate request, and which agent a certificate names. The
// agent id lives in one URI SAN, spiffe://strait/agent/<id>, as SPIFFE ids do, so the TLS
// layer's chain check and this parse together say who is on the other end.

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace strait::common {

inline constexpr std::string_view kAgentUriPrefix = "spiffe://strait/agent/";

// An agent id: 1-63 of [A-Za-z0-9._-], starting with a letter or digit.
bool valid_agent_id(std::string_view id);

struct AgentKey {
  std::string key_pem;  // PKCS#8, EC P-256
  std::string csr_pem;  // PKCS#10 signed with that key
};

// A fresh key and a CSR for it naming `agent_id` (the controller decides what it signs).
absl::StatusOr<AgentKey> make_agent_key(const std::string& agent_id);

struct CertificateFacts {
  std::string agent_id;  // from the spiffe://strait/agent/ URI SAN; empty when there is none
  std::string serial_hex;
  int64_t not_before_unix = 0;
  int64_t not_after_unix = 0;
};

// Reads one PEM certificate. Refuses bytes that are not a certificate and a certificate with
// more than one agent URI or an agent id that is not valid.
absl::StatusOr<CertificateFacts> read_certificate(std::string_view pem);

// True when `key_pem` is the private key of the certificate `cert_pem`.
bool key_matches_certificate(std::string_view key_pem, std::string_view cert_pem);

}  // namespace strait::common
