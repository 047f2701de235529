// Fuzzes the SOCKS4/4a request parser of the socks4 handler.
#include <cstddef>
#include <cstdint>

#include "agent/protocol/socks4.h"

namespace socks4 = strait::agent::socks4;
using strait::agent::ParseState;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto request = socks4::parse_request({data, size});
  if (request.state != ParseState::kComplete) return 0;
  if (request.size == 0 || request.size > size) __builtin_trap();
  if (request.value.user_id.size() > socks4::kMaxUserId) __builtin_trap();
  auto encoded = socks4::encode_request(request.value.command, request.value.address, request.value.user_id);
  if (encoded.ok()) {
    auto again = socks4::parse_request({reinterpret_cast<const uint8_t*>(encoded->data()), encoded->size()});
    if (again.state != ParseState::kComplete || again.value.user_id != request.value.user_id) __builtin_trap();
  }
  return 0;
}
