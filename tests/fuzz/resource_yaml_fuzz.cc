// Fuzzes the parser of straitctl's resource files (multi-document YAML of kind, metadata,
// spec) and the printer whose output must parse back to the same resources.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "controller/resource/resource_yaml.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = strait::controller::parse_resources(text, "fuzz.yaml");
  if (!parsed.ok()) return 0;
  for (const auto& resource : parsed->resources) {
    auto again = strait::controller::parse_resources(strait::controller::resource_to_yaml(resource), "printed");
    if (!again.ok() || again->resources.size() != 1) __builtin_trap();
  }
  return 0;
}
