#include "agent/protocol/shadowsocks2022_udp.h"

#include <openssl/rand.h>

#include <algorithm>
#include <map>
#include <stdexcept>

namespace strait::agent::ss2022 {
namespace {

using ss_wire::AeadCipher;
using ss_wire::kTagSize;

// Client sessions one client address may hold at once on a server; more evict the idlest.
constexpr size_t kMaxServerSessions = 4;
// Server sessions a client accepts replies from: the current and the one before (§3.2.4).
constexpr size_t kMaxClientPeerSessions = 2;

Bytes bytes_of(std::string_view text) { return {reinterpret_cast<const uint8_t*>(text.data()), text.size()}; }
void append(std::string& out, Bytes bytes) { out.append(reinterpret_cast<const char*>(bytes.data()), bytes.size()); }
void put_u64(std::string& out, uint64_t value) {
  for (int shift = 56; shift >= 0; shift -= 8) out += static_cast<char>(value >> shift);
}
uint64_t get_u64(Bytes in) {
  uint64_t value = 0;
  for (size_t i = 0; i < 8; ++i) value = value << 8 | in[i];
  return value;
}

uint64_t random_u64() {
  uint64_t value = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&value), sizeof value) != 1) {
    throw std::runtime_error("shadowsocks 2022: no randomness for a session ID");
  }
  return value;
}

// The body cipher of a session: the subkey from the PSK and the session ID's 8 wire bytes.
AeadCipher body_cipher(const ss_wire::Method& method, std::string_view key, const SeparateHeader& header,
                       bool encrypt) {
  return AeadCipher(method.cipher, ss_wire::session_subkey(method, key, Bytes(header.plain).first(8)), encrypt);
}

std::string seal_with(AeadCipher& aead, std::string_view header_key, const SeparateHeader& header,
                      std::string_view identity, Bytes body) {
  std::string packet(kSeparateHeaderSize, '\0');
  aes_block(header_key, header.plain, reinterpret_cast<uint8_t*>(packet.data()), true);
  packet += identity;
  aead.set_nonce(std::span(header.plain).subspan<4, ss_wire::kNonceSize>());
  aead.seal(body, packet);
  return packet;
}

std::optional<std::string> open_with(AeadCipher& aead, const SeparateHeader& header, Bytes sealed) {
  if (sealed.size() < kTagSize) return std::nullopt;
  std::string body(sealed.size() - kTagSize, '\0');
  aead.set_nonce(std::span(header.plain).subspan<4, ss_wire::kNonceSize>());
  if (!aead.open(sealed, reinterpret_cast<uint8_t*>(body.data()))) return std::nullopt;
  return body;
}

// Padding length, padding and the rest: the common tail of both bodies.
Parsed<std::string> parse_tail(Bytes rest) {
  if (rest.size() < 2) return Parsed<std::string>::invalid(0, "body ends before its padding length");
  size_t padding = static_cast<size_t>(rest[0]) << 8 | rest[1];
  rest = rest.subspan(2);
  if (padding > kMaxPadding || padding > rest.size()) return Parsed<std::string>::invalid(0, "padding too long");
  rest = rest.subspan(padding);
  std::string address_and_payload;
  append(address_and_payload, rest);
  return Parsed<std::string>::complete(std::move(address_and_payload), 0);
}

class ClientCodec final : public ss_wire::PacketCodec {
 public:
  ClientCodec(const ss_wire::Method& method, std::vector<std::string> keys)
      : method_(method),
        keys_(std::move(keys)),
        session_id_(random_u64()),
        send_(body_cipher(method, keys_.back(), make_separate_header(session_id_, 0), true)) {}

  std::string seal(Bytes plain) override {
    SeparateHeader header = make_separate_header(session_id_, next_packet_id_++);
    std::string body = client_body(unix_now(), {}, plain);
    return seal_with(send_, keys_.front(), header, packet_identity_headers(keys_, header), bytes_of(body));
  }

  std::optional<std::string> open(Bytes packet) override {
    if (packet.size() < kSeparateHeaderSize + kTagSize) return std::nullopt;
    SeparateHeader header = open_separate_header(keys_.back(), packet);
    auto known = peers_.find(header.session_id);
    std::optional<AeadCipher> fresh;
    AeadCipher* aead = nullptr;
    if (known != peers_.end()) {
      aead = &known->second.aead;
    } else {
      fresh.emplace(body_cipher(method_, keys_.back(), header, false));
      aead = &*fresh;
    }
    auto body = open_with(*aead, header, packet.subspan(kSeparateHeaderSize));
    if (!body) return std::nullopt;
    auto parsed = parse_server_body(bytes_of(*body), session_id_, unix_now());
    if (parsed.state != ParseState::kComplete) return std::nullopt;
    if (known == peers_.end()) {
      if (peers_.size() >= kMaxClientPeerSessions) {
        auto oldest = std::min_element(peers_.begin(), peers_.end(),
                                       [](const auto& a, const auto& b) { return a.second.used < b.second.used; });
        peers_.erase(oldest);
      }
      known = peers_.emplace(header.session_id, Peer{std::move(*fresh), {}, 0}).first;
    }
    if (!known->second.window.accept(header.packet_id)) return std::nullopt;
    known->second.used = ++clock_;
    return std::move(parsed.value);
  }

 private:
  struct Peer {
    AeadCipher aead;
    ReplayWindow window;
    uint64_t used;
  };

  ss_wire::Method method_;
  std::vector<std::string> keys_;
  uint64_t session_id_;
  uint64_t next_packet_id_ = 0;
  AeadCipher send_;
  std::map<uint64_t, Peer> peers_;
  uint64_t clock_ = 0;
};

class ServerCodec final : public ss_wire::PacketCodec {
 public:
  ServerCodec(const ss_wire::Method& method, std::string key, std::shared_ptr<const Users> users)
      : method_(method), key_(std::move(key)), users_(std::move(users)) {}

  std::optional<std::string> open(Bytes packet) override {
    size_t identity_size = users_ ? kIdentityHeaderSize : 0;
    if (packet.size() < kSeparateHeaderSize + identity_size + kTagSize) return std::nullopt;
    SeparateHeader header = open_separate_header(key_, packet);
    std::string_view user_key = key_;
    if (users_) {
      uint8_t hash[kIdentityHeaderSize];
      aes_block(key_, packet.subspan(kSeparateHeaderSize, kIdentityHeaderSize), hash, false);
      for (size_t i = 0; i < kIdentityHeaderSize; ++i) hash[i] ^= header.plain[i];
      auto user = users_->find(std::string(reinterpret_cast<const char*>(hash), sizeof hash));
      if (user == users_->end()) return std::nullopt;
      user_key = user->second.key;
    }
    auto known = sessions_.find(header.session_id);
    std::optional<Session> fresh;
    Session* session = nullptr;
    if (known != sessions_.end() && known->second.key == user_key) {
      session = &known->second;
    } else {
      SeparateHeader reply = make_separate_header(random_u64(), 0);
      fresh.emplace(Session{std::string(user_key), body_cipher(method_, user_key, header, false),
                            body_cipher(method_, user_key, reply, true), {}, reply.session_id, 0, 0});
      session = &*fresh;
    }
    auto body = open_with(session->receive, header, packet.subspan(kSeparateHeaderSize + identity_size));
    if (!body) return std::nullopt;
    auto parsed = parse_client_body(bytes_of(*body), unix_now());
    if (parsed.state != ParseState::kComplete) return std::nullopt;
    if (fresh) {
      if (known != sessions_.end()) sessions_.erase(known);
      if (sessions_.size() >= kMaxServerSessions) {
        auto oldest = std::min_element(sessions_.begin(), sessions_.end(),
                                       [](const auto& a, const auto& b) { return a.second.used < b.second.used; });
        sessions_.erase(oldest);
      }
      known = sessions_.emplace(header.session_id, std::move(*fresh)).first;
    }
    if (!known->second.window.accept(header.packet_id)) return std::nullopt;
    known->second.used = ++clock_;
    current_ = header.session_id;
    return std::move(parsed.value);
  }

  std::string seal(Bytes plain) override {
    auto session = sessions_.find(current_);
    if (session == sessions_.end()) return {};  // nothing valid received yet: nobody to answer
    Session& s = session->second;
    SeparateHeader header = make_separate_header(s.reply_id, s.next_packet_id++);
    std::string body = server_body(unix_now(), session->first, {}, plain);
    return seal_with(s.send, s.key, header, {}, bytes_of(body));
  }

 private:
  struct Session {
    std::string key;  // the user's PSK (or the server's)
    AeadCipher receive;
    AeadCipher send;
    ReplayWindow window;
    uint64_t reply_id;  // our session ID towards this client session
    uint64_t next_packet_id;
    uint64_t used;
  };

  ss_wire::Method method_;
  std::string key_;
  std::shared_ptr<const Users> users_;
  std::map<uint64_t, Session> sessions_;
  uint64_t current_ = 0;
  uint64_t clock_ = 0;
};

}  // namespace

void ReplayWindow::set(uint64_t id, bool on) {
  uint64_t& word = bits_[(id % kReplayWindow) / 64];
  uint64_t bit = uint64_t{1} << (id % 64);
  word = on ? word | bit : word & ~bit;
}

bool ReplayWindow::accept(uint64_t packet_id) {
  if (!any_ || packet_id > newest_) {
    if (!any_ || packet_id - newest_ >= kReplayWindow) {
      bits_.fill(0);
    } else {
      for (uint64_t id = newest_ + 1; id < packet_id; ++id) set(id, false);
    }
    any_ = true;
    newest_ = packet_id;
    set(packet_id, true);
    return true;
  }
  if (newest_ - packet_id >= kReplayWindow || test(packet_id)) return false;
  set(packet_id, true);
  return true;
}

SeparateHeader make_separate_header(uint64_t session_id, uint64_t packet_id) {
  SeparateHeader header{session_id, packet_id, {}};
  for (size_t i = 0; i < 8; ++i) {
    header.plain[i] = static_cast<uint8_t>(session_id >> (56 - 8 * i));
    header.plain[8 + i] = static_cast<uint8_t>(packet_id >> (56 - 8 * i));
  }
  return header;
}

SeparateHeader open_separate_header(std::string_view key, Bytes packet) {
  SeparateHeader header;
  aes_block(key, packet.first(kSeparateHeaderSize), header.plain.data(), false);
  header.session_id = get_u64(header.plain);
  header.packet_id = get_u64(Bytes(header.plain).subspan(8));
  return header;
}

std::string packet_identity_headers(std::span<const std::string> keys, const SeparateHeader& header) {
  std::string headers;
  for (size_t i = 0; i + 1 < keys.size(); ++i) {
    std::string plain = identity_hash(keys[i + 1]);
    for (size_t j = 0; j < kIdentityHeaderSize; ++j) plain[j] = static_cast<char>(plain[j] ^ header.plain[j]);
    uint8_t sealed[kIdentityHeaderSize];
    aes_block(keys[i], bytes_of(plain), sealed, true);
    append(headers, sealed);
  }
  return headers;
}

std::string client_body(uint64_t timestamp, Bytes padding, Bytes address_and_payload) {
  std::string body(1, static_cast<char>(kTypeRequest));
  put_u64(body, timestamp);
  body += static_cast<char>(padding.size() >> 8);
  body += static_cast<char>(padding.size() & 0xFF);
  append(body, padding);
  append(body, address_and_payload);
  return body;
}

std::string server_body(uint64_t timestamp, uint64_t client_session_id, Bytes padding, Bytes address_and_payload) {
  std::string body(1, static_cast<char>(kTypeResponse));
  put_u64(body, timestamp);
  put_u64(body, client_session_id);
  body += static_cast<char>(padding.size() >> 8);
  body += static_cast<char>(padding.size() & 0xFF);
  append(body, padding);
  append(body, address_and_payload);
  return body;
}

Parsed<std::string> parse_client_body(Bytes body, uint64_t now) {
  if (body.size() < 1 + 8) return Parsed<std::string>::invalid(0, "short body");
  if (body[0] != kTypeRequest) return Parsed<std::string>::invalid(0, "not a client packet");
  if (!timestamp_fresh(get_u64(body.subspan(1)), now)) return Parsed<std::string>::invalid(0, "stale timestamp");
  return parse_tail(body.subspan(9));
}

Parsed<std::string> parse_server_body(Bytes body, uint64_t client_session_id, uint64_t now) {
  if (body.size() < 1 + 8 + 8) return Parsed<std::string>::invalid(0, "short body");
  if (body[0] != kTypeResponse) return Parsed<std::string>::invalid(0, "not a server packet");
  if (!timestamp_fresh(get_u64(body.subspan(1)), now)) return Parsed<std::string>::invalid(0, "stale timestamp");
  if (get_u64(body.subspan(9)) != client_session_id) return Parsed<std::string>::invalid(0, "another client session");
  return parse_tail(body.subspan(17));
}

std::unique_ptr<ss_wire::PacketCodec> make_client_packet_codec(const ss_wire::Method& method,
                                                               std::vector<std::string> keys) {
  return std::make_unique<ClientCodec>(method, std::move(keys));
}

std::unique_ptr<ss_wire::PacketCodec> make_server_packet_codec(const ss_wire::Method& method, std::string key,
                                                               std::shared_ptr<const Users> users) {
  return std::make_unique<ServerCodec>(method, std::move(key), std::move(users));
}

}  // namespace strait::agent::ss2022
