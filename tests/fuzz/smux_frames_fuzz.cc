// Fuzzes the smux frame codec as a session's reader meets it: a stream of frames through
// parse_frame_header and parse_update, with a model of one session's stream table and
// version 2 send windows on the same pure rules SmuxSession applies (agent/protocol/smux).
// First byte: bit 0 picks the version, bits 1-3 the stream limit; the frames follow.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <unordered_map>

#include "agent/protocol/smux.h"

namespace smux = strait::agent::smux;
using strait::agent::ParseState;

namespace {

struct StreamModel {
  uint32_t written = 0;  // the model answers every PSH with as many bytes of its own
  uint32_t peer_consumed = 0;
  uint32_t peer_window = smux::kInitialPeerWindow;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const int version = (data[0] & 1) + 1;
  const size_t max_streams = ((data[0] >> 1) & 7) + 1;
  std::span<const uint8_t> input(data + 1, size - 1);
  std::unordered_map<uint32_t, StreamModel> streams;
  while (!input.empty()) {
    auto parsed = smux::parse_frame_header(input, version);
    if (parsed.state == ParseState::kIncomplete) {
      if (input.size() >= smux::kHeaderSize) __builtin_trap();  // a whole header always decides
      break;
    }
    if (parsed.state == ParseState::kInvalid) {
      if (parsed.reason.empty()) __builtin_trap();
      break;  // a protocol error ends the session
    }
    const auto& header = parsed.value;
    if (parsed.size != smux::kHeaderSize || header.version != version) __builtin_trap();
    auto encoded = smux::encode_frame_header(header);
    if (!std::equal(encoded.begin(), encoded.end(), input.begin())) __builtin_trap();
    if (input.size() - smux::kHeaderSize < header.length) break;  // the reader waits for the rest
    auto body = input.subspan(smux::kHeaderSize, header.length);
    auto stream = streams.find(header.stream_id);
    switch (header.command) {
      case smux::command::kSyn:
        if (header.length != 0) __builtin_trap();
        if (stream != streams.end()) return 0;  // SYN for an open stream: protocol error
        if (streams.size() < max_streams) streams.emplace(header.stream_id, StreamModel{});
        break;
      case smux::command::kFin:
        // The stream stays open (and its id taken) until our application closes it.
        if (header.length != 0) __builtin_trap();
        break;
      case smux::command::kNop:
        if (header.length != 0) __builtin_trap();
        break;
      case smux::command::kPsh:
        if (stream != streams.end()) {
          uint32_t allowed = version == 2 ? smux::send_window(stream->second.written, stream->second.peer_consumed,
                                                              stream->second.peer_window)
                                          : header.length;
          stream->second.written += std::min<uint32_t>(allowed, header.length);
        }
        break;
      case smux::command::kUpd: {
        if (version != 2 || header.length != smux::kUpdateSize) __builtin_trap();
        auto update = smux::parse_update(body);
        if (update.state != ParseState::kComplete || update.size != smux::kUpdateSize) __builtin_trap();
        auto frame = smux::encode_update(version, header.stream_id, update.value);
        if (!std::equal(frame.begin(), frame.end(), input.begin())) __builtin_trap();
        if (stream == streams.end()) break;
        auto& model = stream->second;
        if (smux::consumed_beyond_written(model.written, update.value.consumed)) return 0;  // protocol error
        model.peer_consumed = update.value.consumed;
        model.peer_window = update.value.window;
        uint32_t window = smux::send_window(model.written, model.peer_consumed, model.peer_window);
        if (window > model.peer_window || window > model.peer_window - (model.written - model.peer_consumed)) {
          __builtin_trap();
        }
        break;
      }
      default:
        __builtin_trap();  // the parser let an unknown command through
    }
    input = input.subspan(smux::kHeaderSize + header.length);
  }
  return 0;
}
