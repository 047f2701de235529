// Fuzzes the YAML/JSON config loader and the -O printers on whatever it accepts.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/config_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // yaml-cpp recurses per nesting level; very deep inputs are a known stack limit of the
  // library, so the fuzzer stays at sizes a config file has.
  if (size > 4096) return 0;
  auto loaded = strait::common::parse_config_text(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
  if (loaded.ok()) {
    (void)strait::common::config_to_yaml(loaded->config);
    (void)strait::common::config_to_json(loaded->config);
  }
  return 0;
}
