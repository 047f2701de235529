// Fuzzes the HTTP proxy request head parser (what the http handler reads from clients) and
// the Basic credentials decoder.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "agent/handler/http_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto result = strait::agent::parse_proxy_request({data, size});
  if (auto* parsed = std::get_if<strait::agent::ParsedProxyRequest>(&result)) {
    if (parsed->head_size > size) __builtin_trap();
  }
  (void)strait::agent::parse_basic_credentials(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
