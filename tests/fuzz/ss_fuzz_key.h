#pragma once

// Shared by the Shadowsocks fuzz targets: the method a selector byte picks, and its key.
#include <cstdint>
#include <string>

#include "agent/protocol/shadowsocks.h"

namespace strait::fuzz {

struct SsFuzzKey {
  agent::ss_wire::Method method;
  std::string master_key;
};

inline SsFuzzKey ss_key_for(uint8_t selector) {
  constexpr const char* kNames[] = {"aes-128-gcm", "aes-256-gcm", "chacha20-ietf-poly1305"};
  auto method = *agent::ss_wire::find_method(kNames[selector % 3]);
  return {method, agent::ss_wire::password_to_key("foobar", method.key_size)};
}

}  // namespace strait::fuzz
