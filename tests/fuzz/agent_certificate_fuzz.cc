// Fuzzes what the controller reads of agents' X.509 bytes: the certificate a TLS peer
// presented (common/agent_certificate) and the CSR an enrolling agent sends, which the CA
// parses and verifies before signing (controller/server/certificates). Neither may crash or
// sign something that does not verify.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string_view>

#include "common/agent_certificate.h"
#include "controller/server/certificates.h"

namespace {

const strait::controller::CertificateAuthority& authority() {
  static const auto* ca = [] {
    auto dir = std::filesystem::temp_directory_path() / "strait-fuzz-ca";
    std::filesystem::create_directories(dir);
    bool created = false;
    auto loaded = strait::controller::CertificateAuthority::load_or_create(dir.string(), created);
    if (!loaded.ok()) __builtin_trap();
    return new strait::controller::CertificateAuthority(*std::move(loaded));
  }();
  return *ca;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto facts = strait::common::read_certificate(text);
  if (facts.ok() && !facts->agent_id.empty() && !strait::common::valid_agent_id(facts->agent_id)) __builtin_trap();
  auto issued = authority().issue_agent(text, "fuzz-agent", std::chrono::hours(1));
  if (issued.ok()) {
    auto read_back = strait::common::read_certificate(issued->cert_pem);
    if (!read_back.ok() || read_back->agent_id != "fuzz-agent") __builtin_trap();
  }
  return 0;
}
