#pragma once

#include <chrono>
#include <cstdint>

#include <boost/asio/awaitable.hpp>

#include "absl/functional/any_invocable.h"

#include "agent/channel/channel.h"

namespace strait::agent {

struct RelayOptions {
  // Both directions silent for this long ends the relay; zero disables the check. One hour
  // by default, as Envoy's tcp_proxy: without it a peer that vanished without a FIN (and
  // with keepalive off) would hold its connection forever.
  std::chrono::nanoseconds idle_timeout = std::chrono::hours(1);
  // Once one direction has ended (a half close), the other ends after being silent this
  // long, as haproxy's `timeout client-fin`/`server-fin`; zero disables it.
  std::chrono::nanoseconds half_close_timeout = std::chrono::seconds(60);
};

struct RelayResult {
  uint64_t bytes_from_client = 0;  // client -> target
  uint64_t bytes_to_client = 0;    // target -> client
  error_code error;                // first error that ended the relay, empty for clean EOFs
  bool idle_timeout = false;
  bool half_close_timeout = false;
  bool spliced = false;            // true when the zero-copy path carried the bytes
};

// Copies bytes both ways until both directions have ended. EOF in one direction is passed on
// as a half close; an error in either closes both streams. Two plain TCP sockets are joined
// with splice(2) through a pipe taken from the worker's PipePool while bytes are in flight
// (copying through user space when no pipe can be had); other streams wait until they are
// readable before taking a buffer, so an idle connection holds neither a pipe nor a buffer.
asio::awaitable<RelayResult> relay(Stream& client, Stream& target, const RelayOptions& options);

using RelayFinished = absl::AnyInvocable<void(const RelayResult&) &&>;

// As relay(), but the relay owns both streams and its caller need not wait: `finished` gets
// the result once both directions have ended, then the streams are destroyed. A handler
// that has nothing left to do after relaying ends here, so that an idle connection costs
// one relay object and two pending readiness waits instead of also the chain of coroutine
// frames (spawn, service, handler, relay) that awaiting relay() keeps. Should the
// io_context be destroyed first, the relay goes with its pending operations and `finished`
// is not called.
void start_relay(StreamPtr client, StreamPtr target, const RelayOptions& options, RelayFinished finished);

}  // namespace strait::agent
