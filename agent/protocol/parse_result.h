#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace strait::agent {

// The outcome of decoding one binary protocol message from the bytes received so far.
enum class ParseState {
  kIncomplete,  // a valid prefix: read more bytes and decode again
  kComplete,    // `value` holds the message, which took the first `size` bytes
  kInvalid,     // never valid, whatever follows: refuse with `reply` and log `reason`
};

template <typename T>
struct Parsed {
  ParseState state = ParseState::kIncomplete;
  T value{};
  size_t size = 0;
  uint8_t reply = 0;  // the protocol's refusal code, when it has one
  std::string reason;

  static Parsed incomplete() { return {}; }
  static Parsed complete(T value, size_t size) { return {ParseState::kComplete, std::move(value), size, 0, {}}; }
  static Parsed invalid(uint8_t reply, std::string reason) {
    return {ParseState::kInvalid, T{}, 0, reply, std::move(reason)};
  }
  // The same failure (or need for more bytes) as a message of another type.
  template <typename U>
  Parsed<U> forward() const {
    return {state, U{}, 0, reply, reason};
  }
};

}  // namespace strait::agent
