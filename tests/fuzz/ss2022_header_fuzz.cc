// Fuzzes the Shadowsocks 2022 header parsers (agent/protocol/shadowsocks2022*): the TCP
// request head a server reads (salt, identity header, fixed and variable header), the
// response header a client checks, and the UDP separate header and bodies. The first byte
// picks the method and the mode; the rest is either raw wire bytes or plaintext that is
// sealed under a known key first, so the parsers behind the AEAD are reached too.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "agent/protocol/shadowsocks2022.h"
#include "agent/protocol/shadowsocks2022_udp.h"

namespace ss_wire = strait::agent::ss_wire;
namespace ss2022 = strait::agent::ss2022;
using strait::agent::ParseState;

namespace {

std::span<const uint8_t> as_bytes(const std::string& text) {
  return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

// One user whose PSK is all 'u', under an identity key of all 'i'.
std::shared_ptr<const ss2022::Users> users_for(const ss_wire::Method& method) {
  auto users = std::make_shared<ss2022::Users>();
  std::string psk(method.key_size, 'u');
  users->emplace(ss2022::identity_hash(psk), ss2022::User{"fuzz", psk});
  return users;
}

void check_request(const ss_wire::Method& method, const std::string& key, const ss2022::Users* users,
                   std::span<const uint8_t> wire, std::span<const uint8_t> plain) {
  auto head = ss2022::parse_request_head(method, key, users, wire, ss2022::unix_now());
  if (head.state != ParseState::kComplete) return;
  if (head.size > wire.size() || !head.value.aead) __builtin_trap();
  // The initial payload is the tail of the variable header that was sealed.
  if (!plain.empty()) {
    const auto& payload = head.value.payload;
    if (payload.size() > plain.size()) __builtin_trap();
    if (!std::equal(payload.begin(), payload.end(), plain.end() - static_cast<std::ptrdiff_t>(payload.size()),
                    [](char a, uint8_t b) { return static_cast<uint8_t>(a) == b; })) {
      __builtin_trap();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t selector = data[0];
  std::span<const uint8_t> rest(data + 1, size - 1);
  const auto method = *ss_wire::find_method(selector & 1 ? "2022-blake3-aes-256-gcm" : "2022-blake3-aes-128-gcm");
  const bool with_users = selector & 2;
  const std::string key(method.key_size, with_users ? 'i' : 'k');
  auto users = users_for(method);
  const ss2022::Users* user_table = with_users ? users.get() : nullptr;
  const uint64_t now = ss2022::unix_now();

  switch ((selector >> 2) % 6) {
    case 0:  // raw bytes as a request
      check_request(method, key, user_table, rest, {});
      break;
    case 1: {  // a variable header of fuzzer plaintext, sealed as a client would
      if (rest.size() > 0xFFFF) break;
      std::string salt(method.key_size, 's');
      std::string wire = salt;
      std::string session_key = with_users ? std::string(method.key_size, 'u') : key;
      if (with_users) {
        std::string chain[] = {key, session_key};
        wire += ss2022::identity_headers(method, chain, as_bytes(salt));
      }
      ss_wire::AeadCipher aead(method.cipher, ss_wire::session_subkey(method, session_key, as_bytes(salt)), true);
      ss2022::seal_request_head(aead, now, rest, wire);
      check_request(method, key, user_table, as_bytes(wire), rest);
      break;
    }
    case 2: {  // a response header's plaintext
      std::string_view reason;
      std::string salt(method.key_size, 'q');
      if (rest.size() == ss2022::response_head_size(method)) {
        size_t length = ss2022::check_response_head(rest, salt, now, reason);
        if (length > 0xFFFF || (length == 0 && reason.empty())) __builtin_trap();
      }
      // And raw bytes as a response stream.
      ss_wire::StreamDecryptor decryptor(method, key);
      decryptor.expect_response_to(salt);
      std::string plain;
      auto decoded = decryptor.decode(rest, plain);
      if (decoded.consumed > rest.size() || (decoded.invalid && !plain.empty())) __builtin_trap();
      break;
    }
    case 3: {  // UDP bodies
      auto client = ss2022::parse_client_body(rest, now);
      auto server = ss2022::parse_server_body(rest, 7, now);
      if (client.state == ParseState::kComplete && client.value.size() > rest.size()) __builtin_trap();
      if (server.state == ParseState::kComplete && server.value.size() > rest.size()) __builtin_trap();
      break;
    }
    case 4: {  // raw UDP packets at a server, then the same bytes at a client
      auto server = ss2022::make_server_packet_codec(method, key, with_users ? users : nullptr);
      if (server->open(rest) && !with_users) {
        // Only a packet sealed under our key opens; random bytes never should.
        __builtin_trap();
      }
      auto client = ss2022::make_client_packet_codec(method, {key});
      (void)client->open(rest);
      break;
    }
    case 5: {  // fuzzer plaintext through a client codec to a server codec
      auto client = with_users ? ss2022::make_client_packet_codec(method, {key, std::string(method.key_size, 'u')})
                               : ss2022::make_client_packet_codec(method, {key});
      auto server = ss2022::make_server_packet_codec(method, key, with_users ? users : nullptr);
      auto opened = server->open(as_bytes(client->seal(rest)));
      if (!opened || *opened != std::string(rest.begin(), rest.end())) __builtin_trap();
      auto answer = client->open(as_bytes(server->seal(rest)));
      if (!answer || *answer != std::string(rest.begin(), rest.end())) __builtin_trap();
      break;
    }
  }
  return 0;
}
