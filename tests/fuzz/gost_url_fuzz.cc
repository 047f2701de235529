// Fuzzes GOST's -L/-F grammar: URL parsing and the config built from it.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/cmdline_config.h"
#include "common/gost_url.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  (void)strait::common::parse_gost_url(text);
  static const strait::common::KnownTypes known{
      {"http", "tcp", "udp", "forward", "auto", "relay"}, {"tcp", "udp", "tls"}, {"http", "forward"}, {"tcp", "udp"}};
  auto services = strait::common::build_config_from_cmdline({text}, {}, known);
  auto nodes = strait::common::build_config_from_cmdline({}, {text}, known);
  (void)services;
  (void)nodes;
  return 0;
}
