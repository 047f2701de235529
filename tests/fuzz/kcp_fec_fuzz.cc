// Fuzzes the kcp-go FEC decoder (agent/protocol/kcp_fec) as a KCP session runs it on every
// opened datagram: a stream of fuzzer-made packets must never make it return bytes outside
// the packet or its own storage, nor hold more than max_groups groups. Then the same bytes
// are cut into data packets, encoded, some shards (at most the parity count) dropped, and the
// decoder must hand back every data payload.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "agent/protocol/kcp_fec.h"

namespace kcp = strait::agent::kcp;

namespace {

constexpr size_t kMaxGroups = 3;

void decode_garbage(std::span<const uint8_t> in, int data, int parity) {
  kcp::FecDecoder decoder(data, parity, kMaxGroups);
  while (in.size() >= 2) {
    size_t length = std::min<size_t>((in[0] | in[1] << 8) % 1600, in.size() - 2);
    auto packet = in.subspan(2, length);
    in = in.subspan(2 + length);
    for (auto out : decoder.decode(packet)) {
      volatile uint8_t sink = 0;
      for (uint8_t b : out) sink = sink ^ b;  // ASan checks every byte is readable
    }
    if (decoder.groups_in_progress() > kMaxGroups) __builtin_trap();
  }
}

void round_trip(std::span<const uint8_t> in, int data, int parity, uint32_t drop_mask) {
  kcp::FecEncoder encoder(data, parity);
  kcp::FecDecoder decoder(data, parity);
  std::vector<std::vector<uint8_t>> payloads, received, group;
  auto take = [&](std::span<const uint8_t> packet) {
    for (auto out : decoder.decode(packet)) received.emplace_back(out.begin(), out.end());
  };
  // One group of `data` packets whose sizes and bytes come from the input.
  for (int i = 0; i < data; ++i) {
    size_t length = in.empty() ? 0 : std::min<size_t>(in[0] * 5u, in.size() - 1);
    std::vector<uint8_t> packet(kcp::kFecHeaderSize + kcp::kFecSizeFieldSize + length);
    if (length > 0) std::memcpy(packet.data() + 8, in.data() + 1, length);
    in = in.subspan(std::min(in.size(), length + 1));
    auto parity_out = encoder.encode(packet, 0, UINT32_MAX);
    payloads.emplace_back(packet.begin() + 8, packet.end());
    group.push_back(packet);
    for (auto p : parity_out) group.emplace_back(p.begin(), p.end());
  }
  if (group.size() != static_cast<size_t>(data + parity)) __builtin_trap();
  int dropped = 0;
  for (int i = 0; i < data + parity; ++i) {
    if ((drop_mask >> i & 1) && dropped < parity) {
      ++dropped;
      continue;
    }
    take(group[i]);
  }
  std::sort(payloads.begin(), payloads.end());
  std::sort(received.begin(), received.end());
  if (payloads != received) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 5) return 0;
  int data_shards = 1 + data[0] % 12;
  int parity_shards = 1 + data[0] / 12 % 8;
  uint32_t drop_mask = data[1] | data[2] << 8 | static_cast<uint32_t>(data[3]) << 16;
  auto rest = std::span<const uint8_t>(data + 4, size - 4);
  decode_garbage(rest, data_shards, parity_shards);
  round_trip(rest, data_shards, parity_shards, drop_mask);
  return 0;
}
