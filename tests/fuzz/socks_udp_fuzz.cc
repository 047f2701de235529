// Fuzzes the SOCKS5 UDP datagram header parser (UDP ASSOCIATE) and GOST's UDP-over-TCP frame
// parser, both fed bytes straight from clients and hops.
#include <cstddef>
#include <cstdint>
#include <span>

#include "agent/protocol/socks5.h"

namespace socks5 = strait::agent::socks5;
using strait::agent::ParseState;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> input(data, size);
  auto header = socks5::parse_udp_header(input);
  if (header.state == ParseState::kIncomplete) __builtin_trap();  // a datagram is whole or refused
  if (header.state == ParseState::kComplete && header.size > size) __builtin_trap();
  while (!input.empty()) {
    auto frame = socks5::parse_udp_tun_frame(input);
    if (frame.state != ParseState::kComplete) break;
    if (frame.size > input.size() || frame.value.payload_offset + frame.value.payload_size != frame.size) {
      __builtin_trap();
    }
    input = input.subspan(frame.size);
  }
  return 0;
}
