#include "agent/protocol/websocket.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cstring>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <boost/beast/websocket/error.hpp>

namespace strait::agent::websocket {
namespace {

namespace http = boost::beast::http;
using BeastError = boost::beast::websocket::error;

constexpr std::string_view kAcceptGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";  // §1.3
constexpr size_t kClientKeySize = 16;                                        // §4.1: a 16-byte nonce
constexpr uint8_t kFinBit = 0x80;
constexpr uint8_t kReservedBits = 0x70;
constexpr uint8_t kOpcodeBits = 0x0F;
constexpr uint8_t kMaskBit = 0x80;
constexpr uint8_t kLength16 = 126;
constexpr uint8_t kLength64 = 127;

bool is_control(uint8_t frame_opcode) { return (frame_opcode & 0x8) != 0; }

bool is_known(uint8_t frame_opcode) {
  switch (frame_opcode) {
    case opcode::kContinuation:
    case opcode::kText:
    case opcode::kBinary:
    case opcode::kClose:
    case opcode::kPing:
    case opcode::kPong:
      return true;
    default:
      return false;
  }
}

// The size of the header whose first two bytes are `first` and `second`.
size_t header_size(uint8_t second) {
  size_t size = 2;
  uint8_t length = second & 0x7F;
  if (length == kLength16) size += 2;
  if (length == kLength64) size += 8;
  if ((second & kMaskBit) != 0) size += 4;
  return size;
}

// True when a comma-separated header value lists `token` (case-insensitively).
bool lists_token(std::string_view value, std::string_view token) {
  for (auto item : http::token_list(value)) {
    if (boost::beast::iequals(item, token)) return true;
  }
  return false;
}

size_t decoded_key_size(std::string_view key) {
  // 24 base64 characters with "==" decode to 16 bytes; anything else is not such a nonce.
  if (key.size() != 24) return 0;
  unsigned char decoded[24];
  int size = EVP_DecodeBlock(decoded, reinterpret_cast<const unsigned char*>(key.data()), static_cast<int>(key.size()));
  if (size < 0) return 0;
  size_t padding = std::count(key.end() - 2, key.end(), '=');
  return static_cast<size_t>(size) - padding;
}

}  // namespace

size_t encode_header(uint8_t frame_opcode, uint64_t payload_size, const std::optional<MaskKey>& mask,
                     HeaderBytes& out) {
  out[0] = static_cast<uint8_t>(kFinBit | (frame_opcode & kOpcodeBits));
  const uint8_t mask_bit = mask ? kMaskBit : 0;
  size_t size = 2;
  if (payload_size < kLength16) {
    out[1] = static_cast<uint8_t>(mask_bit | payload_size);
  } else if (payload_size <= 0xFFFF) {
    out[1] = mask_bit | kLength16;
    out[2] = static_cast<uint8_t>(payload_size >> 8);
    out[3] = static_cast<uint8_t>(payload_size);
    size = 4;
  } else {
    out[1] = mask_bit | kLength64;
    for (int i = 0; i < 8; ++i) out[2 + i] = static_cast<uint8_t>(payload_size >> (56 - 8 * i));
    size = 10;
  }
  if (mask) {
    std::memcpy(out.data() + size, mask->data(), mask->size());
    size += mask->size();
  }
  return size;
}

void apply_mask(std::span<uint8_t> bytes, const MaskKey& key, uint64_t offset) {
  // The key rotated to this offset, repeated over 8 bytes: the loop then XORs words.
  uint8_t rotated[8];
  for (size_t i = 0; i < sizeof rotated; ++i) rotated[i] = key[(offset + i) & 3];
  uint64_t word_key;
  std::memcpy(&word_key, rotated, sizeof word_key);
  size_t i = 0;
  for (; i + 8 <= bytes.size(); i += 8) {
    uint64_t word;
    std::memcpy(&word, bytes.data() + i, sizeof word);
    word ^= word_key;
    std::memcpy(bytes.data() + i, &word, sizeof word);
  }
  for (; i < bytes.size(); ++i) bytes[i] ^= rotated[i & 7];
}

std::string control_frame(uint8_t frame_opcode, std::string_view payload, const std::optional<MaskKey>& mask) {
  payload = payload.substr(0, kMaxControlPayload);
  HeaderBytes header;
  size_t size = encode_header(frame_opcode, payload.size(), mask, header);
  std::string frame(reinterpret_cast<const char*>(header.data()), size);
  frame.append(payload);
  if (mask) {
    apply_mask(std::span(reinterpret_cast<uint8_t*>(frame.data()) + size, payload.size()), *mask, 0);
  }
  return frame;
}

std::string close_payload(uint16_t code) {
  return std::string{static_cast<char>(code >> 8), static_cast<char>(code & 0xFF)};
}

std::string FrameDecoder::check_header(uint8_t frame_opcode, bool fin, bool masked, uint8_t reserved) const {
  if (reserved != 0) return "reserved bits set, but no extension was agreed";
  if (!is_known(frame_opcode)) return "unknown opcode " + std::to_string(frame_opcode);
  if (role_ == Role::kServer && !masked) return "a client frame without a mask";
  if (role_ == Role::kClient && masked) return "a masked frame from the server";
  if (is_control(frame_opcode)) {
    if (!fin) return "a fragmented control frame";
    return {};
  }
  if (frame_opcode == opcode::kContinuation && !in_message_) return "a continuation frame outside a message";
  if (frame_opcode != opcode::kContinuation && in_message_) return "a new message before the last one ended";
  return {};
}

bool FrameDecoder::take_header(std::span<const uint8_t> bytes, size_t& pos, std::string& error) {
  // The first two bytes say how long the header is.
  while (header_size_ < 2 && pos < bytes.size()) header_[header_size_++] = bytes[pos++];
  if (header_size_ < 2) return false;
  const size_t needed = header_size(header_[1]);
  size_t take = std::min(needed - header_size_, bytes.size() - pos);
  std::memcpy(header_.data() + header_size_, bytes.data() + pos, take);
  header_size_ += take;
  pos += take;
  if (header_size_ < needed) return false;

  const bool fin = (header_[0] & kFinBit) != 0;
  opcode_ = header_[0] & kOpcodeBits;
  masked_ = (header_[1] & kMaskBit) != 0;
  error = check_header(opcode_, fin, masked_, header_[0] & kReservedBits);
  if (!error.empty()) return false;
  size_t at = 2;
  uint8_t length = header_[1] & 0x7F;
  if (length == kLength16) {
    remaining_ = (uint64_t{header_[2]} << 8) | header_[3];
    at = 4;
  } else if (length == kLength64) {
    remaining_ = 0;
    for (int i = 0; i < 8; ++i) remaining_ = (remaining_ << 8) | header_[2 + i];
    at = 10;
    if ((remaining_ >> 63) != 0) {
      error = "a payload length with its top bit set";
      return false;
    }
  } else {
    remaining_ = length;
  }
  if (is_control(opcode_) && remaining_ > kMaxControlPayload) {
    error = "a control frame longer than 125 bytes";
    return false;
  }
  if (masked_) std::memcpy(mask_.data(), header_.data() + at, mask_.size());
  if (!is_control(opcode_)) in_message_ = !fin;
  offset_ = 0;
  header_size_ = 0;
  in_frame_ = true;
  control_.clear();
  return true;
}

void FrameDecoder::finish_control(Result& result) {
  if (masked_) {
    apply_mask(std::span(reinterpret_cast<uint8_t*>(control_.data()), control_.size()), mask_, 0);
  }
  switch (opcode_) {
    case opcode::kPing:
      result.ping = control_;
      break;
    case opcode::kClose:
      // A one-byte body cannot hold the two-byte code (§5.5.1).
      if (control_.size() == 1) {
        result.error = "a close frame with a one-byte body";
      } else {
        result.closed = true;
      }
      done_ = true;
      break;
    default:  // a pong: an unsolicited one is allowed (§5.5.3)
      break;
  }
  control_.clear();
}

FrameDecoder::Result FrameDecoder::decode(std::span<uint8_t> bytes) {
  Result result;
  size_t pos = 0;
  while (!done_ && pos < bytes.size()) {
    if (!in_frame_) {
      if (!take_header(bytes, pos, result.error)) {
        if (!result.error.empty()) done_ = true;
        continue;
      }
      if (remaining_ > 0) continue;
    }
    const size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, bytes.size() - pos));
    auto piece = bytes.subspan(pos, take);
    if (is_control(opcode_)) {
      control_.append(reinterpret_cast<const char*>(piece.data()), piece.size());
    } else {
      if (masked_) apply_mask(piece, mask_, offset_);
      if (result.payload != pos) std::memmove(bytes.data() + result.payload, piece.data(), take);
      result.payload += take;
    }
    pos += take;
    offset_ += take;
    remaining_ -= take;
    if (remaining_ == 0) {
      in_frame_ = false;
      if (is_control(opcode_)) finish_control(result);
    }
  }
  return result;
}

std::string accept_key(std::string_view client_key) {
  std::string input(client_key);
  input.append(kAcceptGuid);
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  char encoded[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
  int size = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(encoded), digest, SHA_DIGEST_LENGTH);
  return std::string(encoded, static_cast<size_t>(size));
}

boost::system::error_code check_upgrade_request(const http::request<http::empty_body>& request) {
  if (request.version() != 11) return BeastError::bad_http_version;
  if (request.method() != http::verb::get) return BeastError::bad_method;
  if (request.find(http::field::host) == request.end()) return BeastError::no_host;
  auto connection = request.find(http::field::connection);
  if (connection == request.end()) return BeastError::no_connection;
  if (!lists_token(connection->value(), "upgrade")) return BeastError::no_connection_upgrade;
  auto upgrade = request.find(http::field::upgrade);
  if (upgrade == request.end()) return BeastError::no_upgrade;
  if (!lists_token(upgrade->value(), "websocket")) return BeastError::no_upgrade_websocket;
  auto key = request.find(http::field::sec_websocket_key);
  if (key == request.end()) return BeastError::no_sec_key;
  if (decoded_key_size(key->value()) != kClientKeySize) return BeastError::bad_sec_key;
  auto version = request.find(http::field::sec_websocket_version);
  if (version == request.end()) return BeastError::no_sec_version;
  if (version->value() != "13") return BeastError::bad_sec_version;
  return {};
}

boost::system::error_code check_upgrade_response(const http::response<http::empty_body>& response,
                                                 std::string_view client_key) {
  if (response.version() != 11) return BeastError::bad_http_version;
  if (response.result() != http::status::switching_protocols) return BeastError::upgrade_declined;
  auto connection = response.find(http::field::connection);
  if (connection == response.end()) return BeastError::no_connection;
  if (!lists_token(connection->value(), "upgrade")) return BeastError::no_connection_upgrade;
  auto upgrade = response.find(http::field::upgrade);
  if (upgrade == response.end()) return BeastError::no_upgrade;
  if (!lists_token(upgrade->value(), "websocket")) return BeastError::no_upgrade_websocket;
  auto accept = response.find(http::field::sec_websocket_accept);
  if (accept == response.end()) return BeastError::no_sec_accept;
  if (accept->value() != accept_key(client_key)) return BeastError::bad_sec_accept;
  return {};
}

}  // namespace strait::agent::websocket
