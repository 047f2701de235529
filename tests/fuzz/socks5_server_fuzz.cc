// Fuzzes what a socks5 handler parses from clients: the greeting, RFC 1929 credentials and the
// request, fed one after another as a pipelining client would send them.
#include <cstddef>
#include <cstdint>
#include <span>

#include "agent/protocol/socks5.h"
#include "tests/fuzz/consume.h"

namespace socks5 = strait::agent::socks5;
using strait::agent::ParseState;
using strait::fuzz::consume;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> input(data, size);
  if (!consume(input, socks5::parse_greeting)) return 0;
  std::span<const uint8_t> after_greeting = input;
  if (consume(input, socks5::parse_user_pass)) (void)consume(input, socks5::parse_request);
  input = after_greeting;
  if (consume(input, socks5::parse_request)) {
    // Encoding a parsed request and parsing it again is stable (a domain spelled as an IP
    // literal may be normalised once, e.g. "0::1" to "::1", but no further).
    auto request = socks5::parse_request(after_greeting);
    auto encoded = socks5::encode_request(request.value.command, request.value.address);
    if (!encoded.ok()) __builtin_trap();
    auto again = socks5::parse_request({reinterpret_cast<const uint8_t*>(encoded->data()), encoded->size()});
    if (again.state != ParseState::kComplete) __builtin_trap();
    auto encoded_again = socks5::encode_request(again.value.command, again.value.address);
    if (!encoded_again.ok() || *encoded_again != *encoded) __builtin_trap();
  }
  return 0;
}
