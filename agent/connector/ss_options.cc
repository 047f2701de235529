#include "agent/connector/ss_options.h"

#include "agent/protocol/pht.h"
#include "agent/protocol/shadowsocks2022_udp.h"
#include "common/strings.h"

namespace strait::agent {
namespace {

// One base64 PSK of exactly the method's key size; `field` names it in the message.
absl::StatusOr<std::string> decode_psk(std::string_view role, std::string_view field, const ss_wire::Method& method,
                                       std::string_view text) {
  std::string key;
  if (!pht::decode_base64(text, key)) {
    return absl::InvalidArgumentError(
        common::str_cat(role, ": ", field, " is not base64; ", method.name, " takes a base64 PSK (openssl rand -base64 ",
                        method.key_size, ")"));
  }
  if (key.size() != method.key_size) {
    return absl::InvalidArgumentError(common::str_cat(role, ": ", field, " decodes to ", key.size(), " bytes; ",
                                                      method.name, " needs a PSK of exactly ", method.key_size));
  }
  return key;
}

absl::StatusOr<SsKey> parse_2022_key(std::string_view role, const ss_wire::Method& method,
                                     const config::v1::AuthConfig& auth, const common::Metadata& metadata) {
  if (auto raw = common::metadata_string(metadata, "key"); raw && !raw->empty()) {
    return absl::InvalidArgumentError(
        common::str_cat(role, ": metadata key does not apply to ", method.name, "; give the base64 PSK as the password"));
  }
  if (auth.password().empty()) {
    return absl::InvalidArgumentError(common::str_cat(role, ": needs a password (the base64 PSK)"));
  }
  SsKey key{method, {}, {}, {}};
  auto parts = common::split(auth.password(), ':', false);
  for (size_t i = 0; i < parts.size(); ++i) {
    std::string field = parts.size() == 1 ? "password" : common::str_cat("password key ", i + 1);
    auto psk = decode_psk(role, field, method, parts[i]);
    if (!psk.ok()) return psk.status();
    if (i + 1 < parts.size()) key.identity_keys.push_back(*std::move(psk));
    else key.master_key = *std::move(psk);
  }
  for (const auto& [name, value] : metadata.fields()) {
    if (!common::iequals(name, "users")) continue;
    if (!value.has_struct_value()) return absl::InvalidArgumentError(common::str_cat(role, ": users: expected a map of names to base64 PSKs"));
    auto users = std::make_shared<ss2022::Users>();
    for (const auto& [user, psk_text] : value.struct_value().fields()) {
      auto psk = decode_psk(role, common::str_cat("users.", user), method,
                            psk_text.has_string_value() ? psk_text.string_value() : std::string());
      if (!psk.ok()) return psk.status();
      std::string hash = ss2022::identity_hash(*psk);
      if (!users->emplace(hash, ss2022::User{user, *std::move(psk)}).second) {
        return absl::InvalidArgumentError(common::str_cat(role, ": users.", user, " has the same PSK as another user"));
      }
    }
    if (!users->empty()) key.users = std::move(users);
  }
  // SIP023 defines identity headers with AES only.
  if ((key.users || !key.identity_keys.empty()) && method.cipher == ss_wire::Cipher::kChacha20Poly1305) {
    return absl::InvalidArgumentError(common::str_cat(role, ": ", method.name,
                                                      " has no identity headers (users, iPSK:uPSK); use an AES method"));
  }
  return key;
}

}  // namespace

std::vector<std::string> SsKey::key_chain() const {
  std::vector<std::string> chain = identity_keys;
  chain.push_back(master_key);
  return chain;
}

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
  if (method->edition_2022) return parse_2022_key(role, *method, auth, metadata);
  if (auto key = common::metadata_string(metadata, "key"); key && !key->empty()) {
    if (key->size() != method->key_size) {
      return absl::InvalidArgumentError(common::str_cat(role, ": metadata key is ", key->size(), " bytes; ",
                                                        method->name, " needs exactly ", method->key_size));
    }
    return SsKey{*method, *key, {}, {}};
  }
  if (auth.password().empty()) {
    return absl::InvalidArgumentError(common::str_cat(role, ": needs a password (method:password) or metadata key"));
  }
  return SsKey{*method, ss_wire::password_to_key(auth.password(), method->key_size), {}, {}};
}

absl::Status check_ssu_key(std::string_view role, const SsKey& key) {
  if (key.method.edition_2022 && key.method.cipher == ss_wire::Cipher::kChacha20Poly1305) {
    return absl::InvalidArgumentError(
        common::str_cat(role, ": ", key.method.name, " is TCP only here; use 2022-blake3-aes-128-gcm or -256-gcm for UDP"));
  }
  return absl::OkStatus();
}

std::unique_ptr<ss_wire::PacketCodec> make_ss_packet_codec(const SsKey& key, bool server) {
  if (!key.method.edition_2022) return ss_wire::make_aead_packet_codec(key.method, key.master_key);
  if (server) return ss2022::make_server_packet_codec(key.method, key.master_key, key.users);
  return ss2022::make_client_packet_codec(key.method, key.key_chain());
}

}  // namespace strait::agent
