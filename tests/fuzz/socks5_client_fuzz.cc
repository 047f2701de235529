// Fuzzes what the socks4/socks5 connectors parse from a chain hop (agent/protocol): the
// method selection, the RFC 1929 status and the replies, fed one after another as a hop
// would send them. A hop is a peer like any other: its bytes are not trusted.
#include <cstddef>
#include <cstdint>
#include <span>

#include "agent/protocol/socks4.h"
#include "agent/protocol/socks5.h"
#include "tests/fuzz/consume.h"

namespace socks4 = strait::agent::socks4;
namespace socks5 = strait::agent::socks5;
using strait::agent::ParseState;
using strait::fuzz::consume;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> input(data, size);
  std::span<const uint8_t> start = input;
  if (consume(input, socks5::parse_method_selection)) {
    std::span<const uint8_t> after_method = input;
    if (consume(input, socks5::parse_user_pass_status)) (void)consume(input, socks5::parse_reply);
    input = after_method;
    (void)consume(input, socks5::parse_reply);
  }
  input = start;
  auto reply = socks5::parse_reply(input);
  if (reply.state == ParseState::kComplete) {
    // A parsed reply encodes and parses back to the same code and address.
    auto encoded = socks5::encode_reply(reply.value.code, reply.value.address);
    auto again = socks5::parse_reply({reinterpret_cast<const uint8_t*>(encoded.data()), encoded.size()});
    if (again.state != ParseState::kComplete || again.value.code != reply.value.code) __builtin_trap();
  }
  input = start;
  (void)consume(input, socks4::parse_reply);
  return 0;
}
