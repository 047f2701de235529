#pragma once

#include <chrono>
#include <string>

#include "agent/channel/channel.h"
#include "agent/protocol/shadowsocks.h"

namespace strait::agent {

// What a Shadowsocks TCP stream starts from: both directions' cipher state and what the
// handshake already took off the wire.
struct SsStreamParts {
  ss_wire::StreamEncryptor encryptor;
  ss_wire::StreamDecryptor decryptor;
  std::string received{};  // ciphertext read past the last whole chunk
  std::string plain{};     // plaintext decoded but not returned yet
  // Plaintext sent ahead of the first write (a connector's target address), in the same
  // chunk; if nothing is written within `header_wait` it is sent alone. A SIP022 client's
  // encryptor carries its request header instead (header empty) and sends it the same way.
  std::string header{};
  std::chrono::nanoseconds header_wait{0};
};

// A Shadowsocks AEAD stream (SIP004, or SIP022 with the parts shadowsocks2022.h sets up) over
// `inner`: writes are sealed into chunks of at most 0x3FFF (0xFFFF) bytes (the salt and any
// header chunks go ahead of the first), reads return the opened chunks. A chunk
// that fails authentication ends the reads with ProxyError::kBadResponse. Buffers: at most
// one chunk and one read of ciphertext, and the plaintext of that.
StreamPtr make_ss_stream(StreamPtr inner, SsStreamParts parts);

}  // namespace strait::agent
