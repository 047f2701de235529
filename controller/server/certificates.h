#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace strait::controller {

struct ServerCertificate {
  std::string cert_pem;
  std::string key_pem;
  std::string ca_path;  // the CA agents and straitctl should trust; empty for operator files
  bool created_ca = false;
};

// The TLS identity of the controller's gRPC ports. With `cert_file`/`key_file` those are used.
// Otherwise a CA is created in `data_dir` on first start (ca.pem, ca.key, EC P-256, 10 years)
// and a server certificate is issued from it at every start for localhost, 127.0.0.1, ::1,
// this host's name and every name or IP in `extra_names`.
absl::StatusOr<ServerCertificate> server_certificate(const std::string& data_dir, const std::string& cert_file,
                                                     const std::string& key_file,
                                                     const std::vector<std::string>& extra_names);

}  // namespace strait::controller
