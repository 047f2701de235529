// Fuzzes the Go duration grammar every timeout setting goes through (common/duration):
// never a throw or an overflow, and what parses prints and parses back to the same value.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/duration.h"

namespace common = strait::common;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = common::parse_duration(text);
  auto timeout = common::parse_timeout(text);
  if (timeout.ok() && (!parsed.ok() || *parsed != *timeout || timeout->count() < 0 || *timeout > common::kMaxDuration)) {
    __builtin_trap();
  }
  if (parsed.ok()) {
    auto again = common::parse_duration(common::format_duration(*parsed));
    if (!again.ok() || *again != *parsed) __builtin_trap();
  }
  return 0;
}
