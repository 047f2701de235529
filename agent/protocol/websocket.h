#pragma once

// WebSocket framing and the upgrade handshake's checks (RFC 6455), as the ws, wss, mws and
// mwss channels speak it: binary messages whose payloads make one byte stream, pings
// answered, a close frame to end. Pure code over bytes, shared by the ws channel
// (agent/channel/ws) and fuzzed directly.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/system/error_code.hpp>

namespace strait::agent::websocket {

// RFC 6455 §5.2: FIN/RSV/opcode, MASK/length, extended length (2 or 8), masking key (4).
constexpr size_t kMaxHeaderSize = 14;
constexpr size_t kMaxControlPayload = 125;  // §5.5

namespace opcode {
constexpr uint8_t kContinuation = 0x0;
constexpr uint8_t kText = 0x1;
constexpr uint8_t kBinary = 0x2;
constexpr uint8_t kClose = 0x8;
constexpr uint8_t kPing = 0x9;
constexpr uint8_t kPong = 0xA;
}  // namespace opcode

namespace close_code {  // §7.4.1
constexpr uint16_t kNormal = 1000;
constexpr uint16_t kProtocolError = 1002;
}  // namespace close_code

using MaskKey = std::array<uint8_t, 4>;
using HeaderBytes = std::array<uint8_t, kMaxHeaderSize>;

// Who reads the frames: a server reads masked frames only, a client unmasked ones (§5.1).
enum class Role { kServer, kClient };

// Writes the header of a final frame of `payload_size` bytes into `out`, masked with `mask`
// when given (a client's frames); returns the header's size.
size_t encode_header(uint8_t frame_opcode, uint64_t payload_size, const std::optional<MaskKey>& mask,
                     HeaderBytes& out);

// XORs `bytes` with the key, `offset` being how many bytes of the frame's payload come
// before them. Masking and unmasking are the same operation.
void apply_mask(std::span<uint8_t> bytes, const MaskKey& key, uint64_t offset);

// A whole control frame (close, ping, pong) with its payload (at most 125 bytes), masked
// when `mask` is given.
std::string control_frame(uint8_t frame_opcode, std::string_view payload, const std::optional<MaskKey>& mask);
// A close frame's payload: the status code, big-endian (§5.5.1).
std::string close_payload(uint16_t code);

// Reads a peer's frames in place: message payloads are unmasked and moved to the front of
// the bytes given, control frames are taken aside. Keeps only a partial header (at most 14
// bytes) and a partial control payload (at most 125) between calls, so the caller's read
// buffer is the only data buffer.
class FrameDecoder {
 public:
  explicit FrameDecoder(Role role) : role_(role) {}

  struct Result {
    size_t payload = 0;               // message bytes now at the front of the input
    std::optional<std::string> ping;  // the last ping's payload: answer it with a pong
    bool closed = false;              // the peer's close frame came; nothing after it counts
    std::string error;                // a protocol violation: fail the connection (1002)
  };

  // Decodes the next bytes of the connection. Once `closed` or `error` was reported, further
  // input is ignored.
  Result decode(std::span<uint8_t> bytes);

 private:
  // Takes header bytes from `bytes` at `pos`; false while the header is incomplete.
  bool take_header(std::span<const uint8_t> bytes, size_t& pos, std::string& error);
  std::string check_header(uint8_t frame_opcode, bool fin, bool masked, uint8_t reserved) const;
  void finish_control(Result& result);

  Role role_;
  HeaderBytes header_{};
  size_t header_size_ = 0;  // bytes of header_ received
  bool in_frame_ = false;   // a header was decoded; `remaining_` payload bytes follow
  uint8_t opcode_ = 0;
  bool masked_ = false;
  MaskKey mask_{};
  uint64_t remaining_ = 0;
  uint64_t offset_ = 0;        // payload bytes of this frame already decoded (mask position)
  bool in_message_ = false;    // a data message started without FIN: continuations follow
  std::string control_;        // the control frame's payload so far
  bool done_ = false;          // closed or failed
};

// Sec-WebSocket-Accept for a client's Sec-WebSocket-Key (§4.2.2): base64(SHA-1(key + GUID)).
std::string accept_key(std::string_view client_key);

// Why `request` is not a WebSocket opening handshake (§4.2.1), as Beast's error codes (their
// messages name the field); empty when it is one.
boost::system::error_code check_upgrade_request(
    const boost::beast::http::request<boost::beast::http::empty_body>& request);
// Why `response` does not accept the handshake that sent `client_key` (§4.1).
boost::system::error_code check_upgrade_response(
    const boost::beast::http::response<boost::beast::http::empty_body>& response, std::string_view client_key);

}  // namespace strait::agent::websocket
