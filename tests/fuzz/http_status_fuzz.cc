// Fuzzes the status line an http connector reads from a chain hop (agent/protocol/http_status).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "agent/protocol/http_status.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view head(reinterpret_cast<const char*>(data), size);
  auto status = strait::agent::parse_http_status(head);
  if (status && (*status < 0 || *status > 999 || head.substr(0, 7) != "HTTP/1.")) __builtin_trap();
  return 0;
}
