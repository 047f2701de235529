#pragma once

// xtaci/smux wire format, versions 1 and 2, as GOST's multiplexing transports speak it (mtcp,
// mtls, mws, mwss, kcp, relay BIND). Pure encoders, decoders and flow-control arithmetic,
// shared by SmuxSession (agent/channel/smux_session) and fuzzed directly. Wire facts:
// shared/PROTOCOLS.md §4; smux frame.go, mux.go, session.go, stream.go.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>

#include "absl/status/status.h"
#include "agent/protocol/parse_result.h"

namespace strait::agent::smux {

// Frame: VER(1) | CMD(1) | LENGTH(2, LE) | STREAM_ID(4, LE) | DATA[LENGTH]   (smux frame.go)
constexpr size_t kHeaderSize = 8;

namespace command {
constexpr uint8_t kSyn = 0;  // open stream, no data
constexpr uint8_t kFin = 1;  // the sender writes no more on the stream
constexpr uint8_t kPsh = 2;  // data
constexpr uint8_t kNop = 3;  // keepalive, stream 0, no data
constexpr uint8_t kUpd = 4;  // version 2: window update, DATA = CONSUMED(4, LE) | WINDOW(4, LE)
}  // namespace command

constexpr size_t kUpdateSize = 8;
constexpr uint32_t kMaxLength = 65535;            // LENGTH is 16 bits
constexpr uint32_t kInitialPeerWindow = 262144;   // smux initialPeerWindow, until the first UPD
constexpr size_t kAcceptBacklog = 1024;           // smux defaultAcceptBacklog
constexpr uint32_t kMaxBufferSetting = 64 << 20;  // our bound on both buffer settings
constexpr std::chrono::hours kMaxKeepalive{24};   // our bound on both keepalive durations

// smux.Config plus our cap on open streams. Defaults: smux DefaultConfig, which GOST keeps.
struct Config {
  int version = 1;
  std::chrono::nanoseconds keepalive_interval = std::chrono::seconds(10);
  std::chrono::nanoseconds keepalive_timeout = std::chrono::seconds(30);
  bool keepalive_disabled = false;
  uint32_t max_frame_size = 32768;
  uint32_t max_receive_buffer = 4194304;
  uint32_t max_stream_buffer = 65536;
  // Streams open at once in one session (either side's); beyond it a peer's SYN is answered
  // with FIN and open_stream() fails.
  size_t max_streams = 1024;
};

// smux VerifyConfig, in its order and words, then our bounds (buffers ≤ 64 MiB, keepalive
// durations ≤ 24 h, max_streams in 1..65536).
absl::Status validate(const Config& config);

struct FrameHeader {
  uint8_t version = 0;
  uint8_t command = 0;
  uint16_t length = 0;
  uint32_t stream_id = 0;

  bool operator==(const FrameHeader&) const = default;
};

struct WindowUpdate {
  uint32_t consumed = 0;  // bytes the peer's application has read on the stream, mod 2^32
  uint32_t window = 0;    // the peer's stream buffer
};

using Bytes = std::span<const uint8_t>;
using HeaderBytes = std::array<uint8_t, kHeaderSize>;
using UpdateFrameBytes = std::array<uint8_t, kHeaderSize + kUpdateSize>;

// The header at the front of `bytes` (`size` is always 8; the data follows). Refuses what
// smux would refuse or mis-read: another version than `expected_version`, an unknown
// command, UPD in a version 1 session or with LENGTH != 8, and SYN/FIN/NOP carrying data
// (smux does not read their LENGTH, so such a peer would desynchronise a Go peer). Any
// LENGTH up to 65535 is accepted, whatever our max_frame_size (that only bounds what we send).
Parsed<FrameHeader> parse_frame_header(Bytes bytes, int expected_version);
// The 8 bytes of UPD data.
Parsed<WindowUpdate> parse_update(Bytes bytes);

HeaderBytes encode_frame_header(const FrameHeader& header);
// A whole UPD frame: its header and data.
UpdateFrameBytes encode_update(int version, uint32_t stream_id, const WindowUpdate& update);

// Version 2 flow control, on smux's counters mod 2^32.
// Whether a UPD claiming `consumed` of the `written` bytes we sent on a stream is impossible
// (the peer read more than we wrote): a protocol error.
bool consumed_beyond_written(uint32_t written, uint32_t consumed);
// Bytes a writer may send now: peer_window - (written - peer_consumed), at least 0.
uint32_t send_window(uint32_t written, uint32_t peer_consumed, uint32_t peer_window);
// Whether a reader that has just read `n` > 0 bytes, bringing its totals to `total_read`
// and `read_since_update`, owes the peer a UPD: at the first read and each time half of its
// max_stream_buffer has been read since the last UPD (smux tryReadv2).
bool update_due(uint32_t total_read, uint32_t n, uint32_t read_since_update, uint32_t max_stream_buffer);

}  // namespace strait::agent::smux
