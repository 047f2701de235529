#pragma once

// What the ss/ssu handlers and connectors read the same way from their config: the method
// and key (GOST: method as the username, password as the password, or metadata `key`).

#include <string>

#include "absl/status/statusor.h"
#include "agent/protocol/shadowsocks.h"
#include "common/metadata.h"
#include "strait/v1/config.pb.h"

namespace strait::agent {

struct SsKey {
  ss_wire::Method method;
  std::string master_key;  // EVP_BytesToKey of the password, or the raw `key`
};

// `role` names the part in messages ("ss handler"). The method is `auth.username`; the key is
// metadata `key` (raw bytes, exactly the method's key size) when set, else derived from
// `auth.password`.
absl::StatusOr<SsKey> parse_ss_key(std::string_view role, const config::v1::AuthConfig& auth,
                                   const common::Metadata& metadata);

}  // namespace strait::agent
