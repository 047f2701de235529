#include "agent/connector/ss_options.h"

#include "common/strings.h"

namespace strait::agent {

absl::StatusOr<SsKey> parse_ss_key(std::string_view role, const config::v1::AuthConfig& auth,
                                   const common::Metadata& metadata) {
  if (auth.username().empty()) {
    return absl::InvalidArgumentError(common::str_cat(
        role, ": needs a method and password, e.g. ss://aes-128-gcm:secret@:8388 (methods: ",
        ss_wire::method_names(), ")"));
  }
  auto method = ss_wire::find_method(auth.username());
  if (!method) {
    return absl::InvalidArgumentError(common::str_cat(role, ": unknown method \"", auth.username(),
                                                      "\"; known: ", ss_wire::method_names()));
  }
  if (auto key = common::metadata_string(metadata, "key"); key && !key->empty()) {
    if (key->size() != method->key_size) {
      return absl::InvalidArgumentError(common::str_cat(role, ": metadata key is ", key->size(), " bytes; ",
                                                        method->name, " needs exactly ", method->key_size));
    }
    return SsKey{*method, *key};
  }
  if (auth.password().empty()) {
    return absl::InvalidArgumentError(common::str_cat(role, ": needs a password (method:password) or metadata key"));
  }
  return SsKey{*method, ss_wire::password_to_key(auth.password(), method->key_size)};
}

}  // namespace strait::agent
