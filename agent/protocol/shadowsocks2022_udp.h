#pragma once

// Shadowsocks 2022 UDP (SIP022 §3.2, identity headers SIP023), AES-GCM methods:
//
//   packet = AES-ECB(header key, session ID u64 | packet ID u64 BE) | identity headers |
//            seal(nonce = separate header[4..16], body)
//   body (client to server) = type 0 | timestamp u64 BE | padding length u16 BE | padding |
//                             ATYP ADDR PORT | payload
//   body (server to client) = type 1 | timestamp | client session ID | padding length |
//                             padding | ATYP ADDR PORT | payload
//   body key = BLAKE3 derive_key("shadowsocks 2022 session subkey", PSK || session ID)
//   identity header = AES-ECB(iPSK, BLAKE3(next PSK)[0..16) XOR separate header)
//
// The header key is the first PSK of a client (iPSK0 with identity headers); the server
// answers under the user's PSK. The parsers are pure; the codecs keep the sessions.

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "agent/protocol/parse_result.h"
#include "agent/protocol/shadowsocks.h"
#include "agent/protocol/shadowsocks2022.h"

namespace strait::agent::ss2022 {

constexpr size_t kSeparateHeaderSize = 16;
// Packet IDs remembered per session: a packet this far behind the newest is dropped.
constexpr uint64_t kReplayWindow = 1024;

// The sliding-window packet-ID filter SIP022 §3.2.4 asks of each session: a fixed bitmap
// (128 bytes) indexed by ID modulo the window.
class ReplayWindow {
 public:
  // True (and remembered) for an ID not seen and not older than the window.
  bool accept(uint64_t packet_id);

 private:
  bool test(uint64_t id) const { return bits_[(id % kReplayWindow) / 64] >> (id % 64) & 1; }
  void set(uint64_t id, bool on);

  bool any_ = false;
  uint64_t newest_ = 0;
  std::array<uint64_t, kReplayWindow / 64> bits_{};
};

struct SeparateHeader {
  uint64_t session_id = 0;
  uint64_t packet_id = 0;
  std::array<uint8_t, kSeparateHeaderSize> plain{};  // as on the wire, decrypted
};
SeparateHeader make_separate_header(uint64_t session_id, uint64_t packet_id);
// Decrypts the first 16 bytes of `packet` with `key` (needs at least 16 bytes).
SeparateHeader open_separate_header(std::string_view key, Bytes packet);
// The identity headers of one packet: one per key but the last of `keys`.
std::string packet_identity_headers(std::span<const std::string> keys, const SeparateHeader& header);

// Bodies, without the AEAD.
std::string client_body(uint64_t timestamp, Bytes padding, Bytes address_and_payload);
std::string server_body(uint64_t timestamp, uint64_t client_session_id, Bytes padding, Bytes address_and_payload);
// The ATYP ADDR PORT | payload of an opened body: `type` and a fresh timestamp are checked,
// and for a server's body also that it answers `client_session_id`. Complete takes all.
Parsed<std::string> parse_client_body(Bytes body, uint64_t now);
Parsed<std::string> parse_server_body(Bytes body, uint64_t client_session_id, uint64_t now);

// A client's packets for one flow: a random session ID, packet IDs from 0; keys are the
// PSKs iPSK0..uPSK (one key: no identity headers). Replies from up to two server sessions.
std::unique_ptr<ss_wire::PacketCodec> make_client_packet_codec(const ss_wire::Method& method,
                                                               std::vector<std::string> keys);
// A server's packets from one client address: up to a few client sessions at once (the
// newest that sent a valid packet gets the replies), each with its replay window. `users`
// (optional, must outlive the codec) turns identity headers on.
std::unique_ptr<ss_wire::PacketCodec> make_server_packet_codec(const ss_wire::Method& method, std::string key,
                                                               std::shared_ptr<const Users> users);

}  // namespace strait::agent::ss2022
