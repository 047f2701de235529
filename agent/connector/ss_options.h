#pragma once

// What the ss/ssu handlers and connectors read the same way from their config: the method
// and key (GOST: method as the username, password as the password, or metadata `key`), and
// for the 2022 methods the PSKs and the handler's `users`.

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/protocol/shadowsocks.h"
#include "agent/protocol/shadowsocks2022.h"
#include "common/metadata.h"
#include "strait/v1/config.pb.h"

namespace strait::agent {

struct SsKey {
  ss_wire::Method method;
  // SIP004: EVP_BytesToKey of the password, or the raw `key`. SIP022: the PSK of the
  // session, the last of the password's base64 keys (a client's uPSK with identity headers).
  std::string master_key;
  // SIP022 client: iPSK0, iPSK1, ... that go ahead of master_key as identity headers (SIP023).
  std::vector<std::string> identity_keys;
  // SIP022 server: metadata `users` (name to base64 uPSK); master_key is then the iPSK.
  std::shared_ptr<const ss2022::Users> users;

  // All PSKs in order, identity keys first (SIP022).
  std::vector<std::string> key_chain() const;
};

// `role` names the part in messages ("ss handler"). The method is `auth.username`; the key is
// metadata `key` (raw bytes, exactly the method's key size) when set, else derived from
// `auth.password`. For the 2022 methods the password is base64 PSKs of exactly the key size,
// `iPSK:...:uPSK` for identity headers (as sing-box and GOST write them), and `users` is read.
absl::StatusOr<SsKey> parse_ss_key(std::string_view role, const config::v1::AuthConfig& auth,
                                   const common::Metadata& metadata);

// What UDP cannot do with a key that TCP can: 2022-blake3-chacha20-poly1305 (its UDP form,
// XChaCha20-Poly1305 packets, is not implemented).
absl::Status check_ssu_key(std::string_view role, const SsKey& key);

// The codec for one UDP flow under `key`, as a server (one client address) or a client.
std::unique_ptr<ss_wire::PacketCodec> make_ss_packet_codec(const SsKey& key, bool server);

}  // namespace strait::agent
