// Fuzzes the GOST relay codec (agent/protocol/relay): the request a relay handler reads from a
// client, the response a relay connector reads from a hop, and the LEN-prefixed datagrams of
// relay CONNECT over UDP. What parses is encoded again and must parse back to the same thing.
#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "agent/protocol/relay.h"
#include "tests/fuzz/consume.h"

namespace relay_wire = strait::agent::relay_wire;
using strait::agent::ParseState;
using strait::fuzz::consume;

namespace {

std::span<const uint8_t> as_bytes(const std::string& text) {
  return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

// Hosts equal, or a domain spelled as an IP literal ("0::1") that came back as the address
// ("::1"), after which encoding is stable.
bool same_host(const std::string& before, const std::string& after) {
  boost::system::error_code ec;
  boost::asio::ip::make_address(before, ec);
  return before == after || !ec;
}

// A parsed header encodes, and its encoding parses back whole to an equal value.
template <typename Parse, typename Encode>
void check_round_trip(std::span<const uint8_t> input, Parse parse, Encode encode) {
  auto parsed = parse(input);
  if (parsed.state != ParseState::kComplete) return;
  if (parsed.size < relay_wire::kHeaderSize || parsed.size > input.size()) __builtin_trap();
  // The header ends exactly at `size`: one byte less is a prefix still waiting for bytes.
  if (parse(input.first(parsed.size - 1)).state != ParseState::kIncomplete) __builtin_trap();
  auto encoded = encode(parsed.value);
  if (!encoded.ok()) __builtin_trap();
  auto again = parse(as_bytes(*encoded));
  if (again.state != ParseState::kComplete || again.size != encoded->size()) __builtin_trap();
  auto before = parsed.value;
  if (before.address && again.value.address) {
    if (!same_host(before.address->host, again.value.address->host)) __builtin_trap();
    before.address->host = again.value.address->host;
  }
  if (!(before == again.value)) __builtin_trap();
  auto encoded_again = encode(again.value);
  if (!encoded_again.ok() || *encoded_again != *encoded) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> input(data, size);
  check_round_trip(input, relay_wire::parse_request, relay_wire::encode_request);
  check_round_trip(input, relay_wire::parse_response, relay_wire::encode_response);
  // A stream of datagrams, each framed again to the same bytes.
  for (std::span<const uint8_t> stream = input; !stream.empty();) {
    auto datagram = relay_wire::parse_datagram(stream);
    auto frame = stream;
    if (!consume(stream, relay_wire::parse_datagram)) break;
    auto framed = relay_wire::frame_datagram(datagram.value);
    if (!framed.ok() || !std::ranges::equal(as_bytes(*framed), frame.first(datagram.size))) __builtin_trap();
  }
  return 0;
}
