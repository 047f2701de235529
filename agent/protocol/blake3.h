#pragma once

// BLAKE3 (BLAKE3-team/BLAKE3-specs, blake3.pdf): the plain hash and the key derivation mode,
// portable and one-shot, for Shadowsocks 2022 (SIP022 §2.2 session subkeys, SIP023 identity
// headers). Inputs there are a few dozen bytes, so no SIMD and no incremental interface.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace strait::agent::blake3 {

constexpr size_t kOutSize = 32;  // the default output length

// hash(input), `out.size()` bytes of extended output (the first 32 are the default hash).
void hash(std::span<const uint8_t> input, std::span<uint8_t> out);
std::array<uint8_t, kOutSize> hash(std::span<const uint8_t> input);

// derive_key(context, key_material), `out.size()` bytes.
void derive_key(std::string_view context, std::span<const uint8_t> key_material, std::span<uint8_t> out);

}  // namespace strait::agent::blake3
