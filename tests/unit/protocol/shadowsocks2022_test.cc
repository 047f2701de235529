#include "agent/protocol/shadowsocks2022.h"

#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "agent/protocol/shadowsocks2022_udp.h"
#include "agent/protocol/socks5.h"

namespace strait::agent::ss2022 {
namespace {

using ss_wire::AeadCipher;
using ss_wire::Method;
using ss_wire::Opening2022;
using ss_wire::StreamDecryptor;
using ss_wire::StreamEncryptor;

Bytes bytes_of(const std::string& text) { return {reinterpret_cast<const uint8_t*>(text.data()), text.size()}; }
std::string unhex(std::string_view text) { return absl::HexStringToBytes(absl::string_view(text.data(), text.size())); }
std::string filled(size_t size, char first) {
  std::string bytes;
  for (size_t i = 0; i < size; ++i) bytes.push_back(static_cast<char>(first + i));
  return bytes;
}

const Method kAes128 = *ss_wire::find_method("2022-blake3-aes-128-gcm");
const Method kAes256 = *ss_wire::find_method("2022-blake3-aes-256-gcm");
const std::string kTarget = *socks5::encode_address({"example.com", 443});

// A client's first bytes: salt, identity headers and header chunks with `payload`.
std::string request_bytes(const Method& method, const std::vector<std::string>& keys, const std::string& salt,
                          const std::string& payload, StreamEncryptor* keep = nullptr) {
  StreamEncryptor encryptor(method, keys.back(), bytes_of(salt));
  encryptor.set_opening(Opening2022{true, identity_headers(method, keys, bytes_of(salt)), kTarget, {}});
  std::string wire;
  encryptor.seal(bytes_of(payload), wire);
  if (keep) *keep = std::move(encryptor);
  return wire;
}

// Salt, then header chunks made by hand: for timestamps and variable headers the encryptor
// would never write.
std::string handmade_request(const Method& method, const std::string& key, uint64_t timestamp,
                             const std::string& variable) {
  std::string salt = filled(method.key_size, 'S');
  AeadCipher aead(method.cipher, ss_wire::session_subkey(method, key, bytes_of(salt)), true);
  std::string wire = salt;
  seal_request_head(aead, timestamp, bytes_of(variable), wire);
  return wire;
}

TEST(Ss2022Method, NamesKeySizesAndEdition) {
  EXPECT_TRUE(kAes128.edition_2022);
  EXPECT_EQ(kAes128.key_size, 16u);
  EXPECT_EQ(kAes256.key_size, 32u);
  auto chacha = ss_wire::find_method("2022-BLAKE3-CHACHA20-POLY1305");
  ASSERT_TRUE(chacha);
  EXPECT_EQ(chacha->cipher, ss_wire::Cipher::kChacha20Poly1305);
  EXPECT_FALSE(ss_wire::find_method("aes-128-gcm")->edition_2022);
}

TEST(Ss2022Keys, SessionSubkeyIsBlake3DeriveKeyOfPskAndSalt) {
  // BLAKE3 derive_key("shadowsocks 2022 session subkey", 16 x 0x01 || 16 x 0x02), computed
  // with our BLAKE3 (checked against the official vectors) and cut to 16 bytes: what counts
  // here is the context string and the order PSK then salt.
  std::string psk(16, '\x01');
  std::string salt(16, '\x02');
  std::string subkey = ss_wire::session_subkey(kAes128, psk, bytes_of(salt));
  EXPECT_EQ(subkey.size(), 16u);
  std::string swapped = ss_wire::session_subkey(kAes128, salt, bytes_of(psk));
  EXPECT_NE(subkey, swapped);
  EXPECT_NE(subkey, ss_wire::derive_subkey(psk, bytes_of(salt))) << "not the SIP004 HKDF";
}

TEST(Ss2022Request, RoundTripsTargetPayloadAndLaterChunks) {
  for (const Method* method : {&kAes128, &kAes256}) {
    std::string key = filled(method->key_size, 'k');
    std::string salt = filled(method->key_size, 's');
    StreamEncryptor encryptor(*method, key, bytes_of(salt));
    std::string wire = request_bytes(*method, {key}, salt, "GET / HTTP/1.1\r\n\r\n", &encryptor);
    std::string big(0xFFFF + 10, 'b');  // the 2022 cap: one full chunk and a short one
    encryptor.seal(bytes_of(big), wire);
    auto head = parse_request_head(*method, key, nullptr, bytes_of(wire), unix_now());
    ASSERT_EQ(head.state, ParseState::kComplete) << head.reason;
    EXPECT_EQ(head.value.target.to_string(), "example.com:443");
    EXPECT_EQ(head.value.payload, "GET / HTTP/1.1\r\n\r\n");
    EXPECT_EQ(head.value.salt, salt);
    StreamDecryptor decryptor(*method, head.value.salt, *std::move(head.value.aead));
    std::string rest;
    auto decoded = decryptor.decode(bytes_of(wire).subspan(head.size), rest);
    EXPECT_FALSE(decoded.invalid) << decoded.reason;
    EXPECT_EQ(rest, big);
  }
}

TEST(Ss2022Request, IsIncompleteUntilBothHeaderChunksArrive) {
  std::string key = filled(16, 'k');
  std::string wire = request_bytes(kAes128, {key}, filled(16, 's'), "x");
  for (size_t cut = 0; cut < wire.size(); ++cut) {
    auto head = parse_request_head(kAes128, key, nullptr, bytes_of(wire).first(cut), unix_now());
    ASSERT_EQ(head.state, ParseState::kIncomplete) << cut;
  }
}

TEST(Ss2022Request, WithoutPayloadTheClientPads) {
  std::string key = filled(16, 'k');
  for (int i = 0; i < 20; ++i) {
    std::string wire = request_bytes(kAes128, {key}, filled(16, static_cast<char>('a' + i)), "");
    auto head = parse_request_head(kAes128, key, nullptr, bytes_of(wire), unix_now());
    ASSERT_EQ(head.state, ParseState::kComplete) << head.reason;
    EXPECT_TRUE(head.value.payload.empty());
    // salt + fixed chunk + variable chunk (target, length, 1..900 padding)
    size_t padding = wire.size() - 16 - 27 - (kTarget.size() + 2 + 16);
    EXPECT_GE(padding, 1u);
    EXPECT_LE(padding, kMaxPadding);
  }
}

TEST(Ss2022Request, RefusesNoPayloadNoPaddingLongPaddingAndStaleTimestamps) {
  std::string key = filled(16, 'k');
  uint64_t now = unix_now();
  auto state = [&](const std::string& wire, uint64_t at) {
    return parse_request_head(kAes128, key, nullptr, bytes_of(wire), at).state;
  };
  std::string good = variable_header(kTarget, {}, bytes_of(std::string("x")));
  EXPECT_EQ(state(handmade_request(kAes128, key, now, good), now), ParseState::kComplete);
  std::string bare = variable_header(kTarget, {}, {});
  EXPECT_EQ(state(handmade_request(kAes128, key, now, bare), now), ParseState::kInvalid);
  std::string long_padding = variable_header(kTarget, bytes_of(std::string(901, 'p')), {});
  EXPECT_EQ(state(handmade_request(kAes128, key, now, long_padding), now), ParseState::kInvalid);
  std::string padded = variable_header(kTarget, bytes_of(std::string(900, 'p')), {});
  EXPECT_EQ(state(handmade_request(kAes128, key, now, padded), now), ParseState::kComplete);
  // Padding that claims more than its chunk holds.
  std::string overlong = kTarget + std::string("\x00\x10", 2) + "abc";
  EXPECT_EQ(state(handmade_request(kAes128, key, now, overlong), now), ParseState::kInvalid);
  // Timestamps: 30 s either way is fine, 31 s is a replay.
  EXPECT_EQ(state(handmade_request(kAes128, key, now - 30, good), now), ParseState::kComplete);
  EXPECT_EQ(state(handmade_request(kAes128, key, now + 30, good), now), ParseState::kComplete);
  EXPECT_EQ(state(handmade_request(kAes128, key, now - 31, good), now), ParseState::kInvalid);
  EXPECT_EQ(state(handmade_request(kAes128, key, now + 31, good), now), ParseState::kInvalid);
}

TEST(Ss2022Request, RefusesWrongKeyTamperingAndAResponseHeader) {
  std::string key = filled(16, 'k');
  std::string wire = request_bytes(kAes128, {key}, filled(16, 's'), "x");
  EXPECT_EQ(parse_request_head(kAes128, filled(16, 'K'), nullptr, bytes_of(wire), unix_now()).state,
            ParseState::kInvalid);
  for (size_t at : {size_t{0}, size_t{20}, wire.size() - 1}) {
    std::string tampered = wire;
    tampered[at] = static_cast<char>(tampered[at] ^ 1);
    EXPECT_EQ(parse_request_head(kAes128, key, nullptr, bytes_of(tampered), unix_now()).state, ParseState::kInvalid)
        << at;
  }
  // A server's response stream sent back at it: type 1 where 0 belongs (a reflection).
  std::string salt = filled(16, 'r');
  AeadCipher aead(kAes128.cipher, ss_wire::session_subkey(kAes128, key, bytes_of(salt)), true);
  std::string reflected = salt;
  seal_response_head(aead, unix_now(), bytes_of(filled(16, 's')), bytes_of(std::string(40, 'x')), reflected);
  EXPECT_EQ(parse_request_head(kAes128, key, nullptr, bytes_of(reflected), unix_now()).state, ParseState::kInvalid);
}

TEST(Ss2022Identity, ServerFindsEachUserByTheirHeader) {
  for (const Method* method : {&kAes128, &kAes256}) {
    std::string server_key = filled(method->key_size, 'i');
    Users users;
    for (const char* name : {"alice", "bob"}) {
      std::string psk = filled(method->key_size, name[0]);
      users.emplace(identity_hash(psk), User{name, psk});
    }
    for (const char* name : {"alice", "bob"}) {
      std::string psk = filled(method->key_size, name[0]);
      std::string wire = request_bytes(*method, {server_key, psk}, filled(method->key_size, 's'), "hi");
      EXPECT_EQ(wire.size(), method->key_size + 16 + 27 + kTarget.size() + 2 + 2 + 16);
      auto head = parse_request_head(*method, server_key, &users, bytes_of(wire), unix_now());
      ASSERT_EQ(head.state, ParseState::kComplete) << head.reason;
      ASSERT_NE(head.value.user, nullptr);
      EXPECT_EQ(head.value.user->name, name);
      EXPECT_EQ(head.value.key, psk);
      EXPECT_EQ(head.value.payload, "hi");
    }
    std::string stranger = request_bytes(*method, {server_key, filled(method->key_size, 'z')},
                                         filled(method->key_size, 's'), "hi");
    EXPECT_EQ(parse_request_head(*method, server_key, &users, bytes_of(stranger), unix_now()).state,
              ParseState::kInvalid);
    // The right user under another server's identity key names nobody.
    std::string elsewhere = request_bytes(*method, {filled(method->key_size, 'X'), filled(method->key_size, 'a')},
                                          filled(method->key_size, 's'), "hi");
    EXPECT_EQ(parse_request_head(*method, server_key, &users, bytes_of(elsewhere), unix_now()).state,
              ParseState::kInvalid);
  }
}

TEST(Ss2022Response, ClientChecksTypeSaltAndClock) {
  std::string key = filled(32, 'k');
  std::string request_salt = filled(32, 'q');
  StreamEncryptor server(kAes256, key);
  server.set_opening(Opening2022{false, {}, {}, request_salt});
  std::string wire;
  server.seal({}, wire);
  EXPECT_TRUE(wire.empty()) << "a response header waits for payload";
  server.seal(bytes_of(std::string("pong")), wire);
  server.seal(bytes_of(std::string("more")), wire);
  StreamDecryptor client(kAes256, key);
  client.expect_response_to(request_salt);
  std::string plain;
  auto decoded = client.decode(bytes_of(wire), plain);
  EXPECT_FALSE(decoded.invalid) << decoded.reason;
  EXPECT_EQ(plain, "pongmore");
  EXPECT_EQ(decoded.consumed, wire.size());

  StreamDecryptor other(kAes256, key);
  other.expect_response_to(filled(32, 'Q'));
  plain.clear();
  EXPECT_TRUE(other.decode(bytes_of(wire), plain).invalid) << "answers another request";
  EXPECT_TRUE(plain.empty());

  std::string stale_salt = filled(32, 'r');
  AeadCipher aead(kAes256.cipher, ss_wire::session_subkey(kAes256, key, bytes_of(stale_salt)), true);
  std::string stale = stale_salt;
  seal_response_head(aead, unix_now() - 40, bytes_of(request_salt), bytes_of(std::string("x")), stale);
  StreamDecryptor third(kAes256, key);
  third.expect_response_to(request_salt);
  EXPECT_TRUE(third.decode(bytes_of(stale), plain).invalid);
}

TEST(Ss2022ReplayWindow, AcceptsEachIdOnceWithinTheWindow) {
  ReplayWindow window;
  EXPECT_TRUE(window.accept(5));
  EXPECT_FALSE(window.accept(5));
  EXPECT_TRUE(window.accept(3)) << "late but inside the window";
  EXPECT_FALSE(window.accept(3));
  EXPECT_TRUE(window.accept(5 + kReplayWindow - 1));
  EXPECT_FALSE(window.accept(5)) << "now a window behind";
  EXPECT_TRUE(window.accept(5 + 10 * kReplayWindow)) << "a jump clears the window";
  EXPECT_TRUE(window.accept(5 + 10 * kReplayWindow - 1));
  EXPECT_FALSE(window.accept(5 + kReplayWindow - 1));
}

std::string address_and(const std::string& payload) { return *socks5::encode_address({"10.0.0.1", 53}) + payload; }

TEST(Ss2022Packet, ClientAndServerCodecsCarryBothWaysOnce) {
  for (const Method* method : {&kAes128, &kAes256}) {
    std::string key = filled(method->key_size, 'k');
    auto client = make_client_packet_codec(*method, {key});
    auto server = make_server_packet_codec(*method, key, nullptr);
    EXPECT_TRUE(server->seal(bytes_of(address_and("early"))).empty()) << "no session to answer yet";
    std::string up = client->seal(bytes_of(address_and("query")));
    auto opened = server->open(bytes_of(up));
    ASSERT_TRUE(opened);
    EXPECT_EQ(*opened, address_and("query"));
    EXPECT_FALSE(server->open(bytes_of(up))) << "replayed packet";
    std::string second = client->seal(bytes_of(address_and("again")));
    EXPECT_TRUE(server->open(bytes_of(second)));
    std::string down = server->seal(bytes_of(address_and("answer")));
    auto answer = client->open(bytes_of(down));
    ASSERT_TRUE(answer);
    EXPECT_EQ(*answer, address_and("answer"));
    EXPECT_FALSE(client->open(bytes_of(down))) << "replayed answer";
    EXPECT_FALSE(client->open(bytes_of(up))) << "a client packet is no answer";
    // Another client's codec does not take our server's answers (another client session).
    auto stranger = make_client_packet_codec(*method, {key});
    EXPECT_FALSE(stranger->open(bytes_of(server->seal(bytes_of(address_and("x"))))));
    // Wrong key.
    auto wrong = make_server_packet_codec(*method, filled(method->key_size, 'K'), nullptr);
    EXPECT_FALSE(wrong->open(bytes_of(client->seal(bytes_of(address_and("y"))))));
  }
}

TEST(Ss2022Packet, IdentityHeadersSelectTheUser) {
  std::string server_key = filled(16, 'i');
  auto users = std::make_shared<Users>();
  for (const char* name : {"alice", "bob"}) {
    std::string psk = filled(16, name[0]);
    users->emplace(identity_hash(psk), User{name, psk});
  }
  auto server = make_server_packet_codec(kAes128, server_key, users);
  for (char first : {'a', 'b'}) {
    auto client = make_client_packet_codec(kAes128, {server_key, filled(16, first)});
    std::string up = client->seal(bytes_of(address_and("hello")));
    EXPECT_EQ(up.size(), 16u + 16 + 1 + 8 + 2 + address_and("hello").size() + 16);
    auto opened = server->open(bytes_of(up));
    ASSERT_TRUE(opened) << first;
    auto answer = client->open(bytes_of(server->seal(bytes_of(address_and("welcome")))));
    ASSERT_TRUE(answer) << "answered under the user's key";
    EXPECT_EQ(*answer, address_and("welcome"));
  }
  auto stranger = make_client_packet_codec(kAes128, {server_key, filled(16, 'z')});
  EXPECT_FALSE(server->open(bytes_of(stranger->seal(bytes_of(address_and("hello"))))));
}

TEST(Ss2022Packet, StaleOrMistypedBodiesAreRefused) {
  uint64_t now = unix_now();
  std::string tail = address_and("p");
  EXPECT_EQ(parse_client_body(bytes_of(client_body(now, {}, bytes_of(tail))), now).state, ParseState::kComplete);
  EXPECT_EQ(parse_client_body(bytes_of(client_body(now - 31, {}, bytes_of(tail))), now).state, ParseState::kInvalid);
  EXPECT_EQ(parse_client_body(bytes_of(server_body(now, 7, {}, bytes_of(tail))), now).state, ParseState::kInvalid);
  EXPECT_EQ(parse_server_body(bytes_of(server_body(now, 7, {}, bytes_of(tail))), 7, now).state, ParseState::kComplete);
  EXPECT_EQ(parse_server_body(bytes_of(server_body(now, 7, {}, bytes_of(tail))), 8, now).state, ParseState::kInvalid);
  std::string padding(100, 'p');
  auto padded = parse_client_body(bytes_of(client_body(now, bytes_of(padding), bytes_of(tail))), now);
  ASSERT_EQ(padded.state, ParseState::kComplete);
  EXPECT_EQ(padded.value, tail);
  EXPECT_EQ(parse_client_body(bytes_of(client_body(now, bytes_of(std::string(901, 'p')), {})), now).state,
            ParseState::kInvalid);
  // A whole packet with a stale timestamp, sealed by hand, is dropped by the server codec.
  std::string key = filled(16, 'k');
  SeparateHeader header = make_separate_header(42, 0);
  std::string packet(16, '\0');
  aes_block(key, header.plain, reinterpret_cast<uint8_t*>(packet.data()), true);
  AeadCipher aead(kAes128.cipher, ss_wire::session_subkey(kAes128, key, Bytes(header.plain).first(8)), true);
  aead.set_nonce(std::span(header.plain).subspan<4, 12>());
  aead.seal(bytes_of(client_body(now - 60, {}, bytes_of(tail))), packet);
  EXPECT_FALSE(make_server_packet_codec(kAes128, key, nullptr)->open(bytes_of(packet)));
}

TEST(Ss2022Packet, SeparateHeaderIsOneAesBlockOfIdsBigEndian) {
  SeparateHeader header = make_separate_header(0x0102030405060708, 9);
  EXPECT_EQ(std::string(header.plain.begin(), header.plain.end()),
            unhex("01020304050607080000000000000009"));
  std::string key = filled(16, 'k');
  uint8_t sealed[16];
  aes_block(key, header.plain, sealed, true);
  auto opened = open_separate_header(key, Bytes(sealed));
  EXPECT_EQ(opened.session_id, 0x0102030405060708u);
  EXPECT_EQ(opened.packet_id, 9u);
}

}  // namespace
}  // namespace strait::agent::ss2022
