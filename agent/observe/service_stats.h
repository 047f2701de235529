#pragma once

#include <atomic>
#include <cstdint>

namespace strait::agent {

// Totals of one service since it started, written by every worker's connections (relaxed
// atomics: they are counters, read only for status reports and metrics).
struct ServiceStats {
  std::atomic<uint64_t> connections{0};
  std::atomic<uint64_t> bytes_from_clients{0};
  std::atomic<uint64_t> bytes_to_clients{0};
  std::atomic<uint64_t> errors{0};  // connections that failed before or instead of relaying
  std::atomic<uint64_t> udp_associations{0};  // SOCKS5 UDP relays open now
};

}  // namespace strait::agent
