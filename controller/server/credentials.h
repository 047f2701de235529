#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "controller/store/store.h"
#include "strait/v1/admin.pb.h"

namespace strait::controller {

// Secrets the controller checks: the admin token (straitctl) and join tokens (agents). Tokens
// arrive as gRPC metadata "authorization: Bearer <token>"; join tokens are kept only as
// SHA-256 hashes; no token is ever logged.
class Credentials {
 public:
  Credentials(Store& store, std::string admin_token);

  bool admin_allowed(std::string_view authorization) const;
  // The join token of an "authorization" value, when it exists and has not expired.
  std::optional<JoinToken> join_token(std::string_view authorization) const;
  // `grants`: labels the token may grant ("*" for any value of a key), checked here.
  absl::StatusOr<admin::v1::CreateTokenResponse> create_join_token(const std::string& description, int64_t ttl_seconds,
                                                                   const std::map<std::string, std::string>& grants);
  // Registers `secret`, chosen by the operator (a Kubernetes Secret, say), as a join token
  // unless a token with that secret exists already, expired or not: a restart must not renew
  // an expired one. Returns the token's id.
  absl::StatusOr<std::string> import_join_token(const std::string& secret, const std::string& description,
                                                int64_t ttl_seconds, const std::map<std::string, std::string>& grants);

 private:
  absl::StatusOr<JoinToken> store_join_token(const std::string& id, const std::string& secret,
                                             const std::string& description, int64_t ttl_seconds,
                                             const std::map<std::string, std::string>& grants);

  Store& store_;
  std::string admin_token_;
};

// The token of an "authorization: Bearer <token>" value; empty when it is not one.
std::string_view bearer_token(std::string_view authorization);

// `bytes` random bytes from the OS, as lowercase hex.
std::string random_hex(size_t bytes);
std::string sha256_hex(std::string_view data);

// The secret in the file at `path`, without surrounding whitespace; an error when it is
// missing or empty.
absl::StatusOr<std::string> read_secret(const std::string& path);
// Reads a secret from `path`, or creates it (random, mode 0600) when the file does not exist.
absl::StatusOr<std::string> load_or_create_secret(const std::string& path);

}  // namespace strait::controller
