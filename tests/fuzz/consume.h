#pragma once

// Shared by the fuzz targets of binary protocol parsers (agent/protocol).
#include <cstdint>
#include <span>

#include "agent/protocol/parse_result.h"

namespace strait::fuzz {

// Parses one message from the front of `input` and drops it; false once the input is used
// up or refused. Traps when the parser breaks its contract (a complete message of no bytes,
// or of more bytes than it was given).
template <typename Parse>
bool consume(std::span<const uint8_t>& input, Parse parse) {
  auto message = parse(input);
  if (message.state != agent::ParseState::kComplete) return false;
  if (message.size == 0 || message.size > input.size()) __builtin_trap();
  input = input.subspan(message.size);
  return true;
}

}  // namespace strait::fuzz
