// Fuzzes the Shadowsocks AEAD UDP packet decoder (agent/protocol/shadowsocks) and the target
// address behind it, as an ssu handler or connector reads a datagram: a packet opens only when
// sealed under the key, and a sealed input opens back to itself.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>

#include "agent/protocol/shadowsocks.h"
#include "tests/fuzz/ss_fuzz_key.h"
#include "agent/protocol/socks5.h"

namespace ss_wire = strait::agent::ss_wire;
namespace socks5 = strait::agent::socks5;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  auto [method, key] = strait::fuzz::ss_key_for(data[0]);
  std::span<const uint8_t> input(data + 1, size - 1);

  if (auto plain = ss_wire::open_packet(method, key, input)) {
    if (plain->size() + method.key_size + ss_wire::kTagSize != input.size()) __builtin_trap();
    auto bytes = std::span(reinterpret_cast<const uint8_t*>(plain->data()), plain->size());
    auto address = socks5::parse_address(bytes);
    if (address.state == strait::agent::ParseState::kComplete && address.size > bytes.size()) __builtin_trap();
  }

  std::string packet = ss_wire::seal_packet(method, key, input);
  auto opened = ss_wire::open_packet(method, key, std::span(reinterpret_cast<const uint8_t*>(packet.data()), packet.size()));
  if (!opened || opened->size() != input.size() || (!input.empty() && std::memcmp(opened->data(), input.data(), input.size()) != 0)) {
    __builtin_trap();
  }
  return 0;
}
