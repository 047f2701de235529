#include "agent/protocol/smux.h"

#include <string>

#include "common/strings.h"

namespace strait::agent::smux {
namespace {

using common::str_cat;

uint16_t read_u16(Bytes bytes, size_t offset) { return static_cast<uint16_t>(bytes[offset] | bytes[offset + 1] << 8); }

uint32_t read_u32(Bytes bytes, size_t offset) {
  return static_cast<uint32_t>(bytes[offset]) | static_cast<uint32_t>(bytes[offset + 1]) << 8 |
         static_cast<uint32_t>(bytes[offset + 2]) << 16 | static_cast<uint32_t>(bytes[offset + 3]) << 24;
}

void write_u32(uint8_t* out, uint32_t value) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<uint8_t>(value >> (8 * i));
}

const char* command_name(uint8_t command) {
  switch (command) {
    case command::kSyn:
      return "SYN";
    case command::kFin:
      return "FIN";
    case command::kNop:
      return "NOP";
    default:
      return "frame";
  }
}

std::string milliseconds(std::chrono::nanoseconds duration) {
  return str_cat(std::chrono::duration_cast<std::chrono::milliseconds>(duration).count(), "ms");
}

}  // namespace

absl::Status validate(const Config& config) {
  if (config.version != 1 && config.version != 2) {
    return absl::InvalidArgumentError(str_cat("unsupported protocol version ", config.version, " (1 or 2)"));
  }
  if (!config.keepalive_disabled) {
    if (config.keepalive_interval <= std::chrono::nanoseconds::zero()) {
      return absl::InvalidArgumentError("keep-alive interval must be positive");
    }
    if (config.keepalive_timeout < config.keepalive_interval) {
      return absl::InvalidArgumentError("keep-alive timeout must be larger than keep-alive interval");
    }
    if (config.keepalive_timeout > kMaxKeepalive) {
      return absl::InvalidArgumentError(
          str_cat("keep-alive timeout ", milliseconds(config.keepalive_timeout), " is above the limit of 24h"));
    }
  }
  if (config.max_frame_size == 0) return absl::InvalidArgumentError("max frame size must be positive");
  if (config.max_frame_size > kMaxLength) {
    return absl::InvalidArgumentError("max frame size must not be larger than 65535");
  }
  if (config.max_receive_buffer == 0) return absl::InvalidArgumentError("max receive buffer must be positive");
  if (config.max_stream_buffer == 0) return absl::InvalidArgumentError("max stream buffer must be positive");
  if (config.max_stream_buffer > config.max_receive_buffer) {
    return absl::InvalidArgumentError("max stream buffer must not be larger than max receive buffer");
  }
  if (config.max_receive_buffer > kMaxBufferSetting) {
    return absl::InvalidArgumentError(
        str_cat("max receive buffer ", config.max_receive_buffer, " is above the limit of 67108864 (64 MiB)"));
  }
  if (config.max_streams == 0 || config.max_streams > 65536) {
    return absl::InvalidArgumentError(str_cat("max streams ", config.max_streams, " is outside 1..65536"));
  }
  return absl::OkStatus();
}

Parsed<FrameHeader> parse_frame_header(Bytes bytes, int expected_version) {
  using Result = Parsed<FrameHeader>;
  if (bytes.size() < kHeaderSize) {
    // Refuse a wrong version as soon as its byte is there, as smux does after its read.
    if (!bytes.empty() && bytes[0] != expected_version) {
      return Result::invalid(0, str_cat("frame version ", int{bytes[0]}, ", expected ", expected_version));
    }
    return Result::incomplete();
  }
  FrameHeader header{bytes[0], bytes[1], read_u16(bytes, 2), read_u32(bytes, 4)};
  if (header.version != expected_version) {
    return Result::invalid(0, str_cat("frame version ", int{header.version}, ", expected ", expected_version));
  }
  switch (header.command) {
    case command::kSyn:
    case command::kFin:
    case command::kNop:
      if (header.length != 0) {
        return Result::invalid(0,
                               str_cat(command_name(header.command), " with ", int{header.length}, " bytes of data"));
      }
      break;
    case command::kPsh:
      break;
    case command::kUpd:
      if (header.version != 2) return Result::invalid(0, "UPD frame in a version 1 session");
      if (header.length != kUpdateSize) {
        return Result::invalid(0, str_cat("UPD frame of length ", int{header.length}, ", expected 8"));
      }
      break;
    default:
      return Result::invalid(0, str_cat("unknown command ", int{header.command}));
  }
  return Result::complete(header, kHeaderSize);
}

Parsed<WindowUpdate> parse_update(Bytes bytes) {
  if (bytes.size() < kUpdateSize) return Parsed<WindowUpdate>::incomplete();
  return Parsed<WindowUpdate>::complete({read_u32(bytes, 0), read_u32(bytes, 4)}, kUpdateSize);
}

HeaderBytes encode_frame_header(const FrameHeader& header) {
  HeaderBytes out{header.version, header.command, static_cast<uint8_t>(header.length & 0xFF),
                  static_cast<uint8_t>(header.length >> 8)};
  write_u32(out.data() + 4, header.stream_id);
  return out;
}

UpdateFrameBytes encode_update(int version, uint32_t stream_id, const WindowUpdate& update) {
  UpdateFrameBytes out{};
  auto header = encode_frame_header(
      {static_cast<uint8_t>(version), command::kUpd, static_cast<uint16_t>(kUpdateSize), stream_id});
  std::copy(header.begin(), header.end(), out.begin());
  write_u32(out.data() + kHeaderSize, update.consumed);
  write_u32(out.data() + kHeaderSize + 4, update.window);
  return out;
}

bool consumed_beyond_written(uint32_t written, uint32_t consumed) {
  // In flight = written - consumed, mod 2^32; "negative" (top bit set) means the peer
  // consumed bytes we never sent (smux ErrConsumed).
  return static_cast<int32_t>(written - consumed) < 0;
}

uint32_t send_window(uint32_t written, uint32_t peer_consumed, uint32_t peer_window) {
  uint32_t in_flight = written - peer_consumed;
  return in_flight >= peer_window ? 0 : peer_window - in_flight;
}

bool update_due(uint32_t total_read, uint32_t n, uint32_t read_since_update, uint32_t max_stream_buffer) {
  return n > 0 && (read_since_update >= max_stream_buffer / 2 || total_read == n);
}

}  // namespace strait::agent::smux
