#pragma once

#include <chrono>
#include <cstdint>

#include <boost/asio/awaitable.hpp>

#include "agent/channel/channel.h"

namespace strait::agent {

struct RelayOptions {
  // Both directions silent for this long ends the relay; zero disables the check.
  std::chrono::nanoseconds idle_timeout{0};
};

struct RelayResult {
  uint64_t bytes_from_client = 0;  // client -> target
  uint64_t bytes_to_client = 0;    // target -> client
  error_code error;                // first error that ended the relay, empty for clean EOFs
  bool idle_timeout = false;
  bool spliced = false;            // true when the zero-copy path carried the bytes
};

// Copies bytes both ways until both directions have ended. EOF in one direction is passed on
// as a half close; an error in either closes both streams. Two plain TCP sockets are joined
// with splice(2) through a pipe created on first data; other streams use a buffer taken only
// once data is ready, so an idle connection holds no data buffer.
asio::awaitable<RelayResult> relay(Stream& client, Stream& target, const RelayOptions& options);

}  // namespace strait::agent
