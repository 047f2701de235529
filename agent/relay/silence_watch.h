#pragma once

#include <chrono>
#include <cstdint>
#include <memory>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "agent/channel/channel.h"

namespace strait::agent {

class SilenceWatch;

// How long a relay may stay silent: `idle` while both directions are open, `half_close`
// once one has ended. Past it, both streams are closed. The deadlines of a worker's relays
// are checked by one timer per worker (SilenceWatch) rather than one timer per relay: a
// relay then costs a few words for its deadline, which keeps idle connections small.
// Lives in the relay's frame, on the worker's thread.
class SilenceDeadline {
 public:
  using Clock = std::chrono::steady_clock;

  SilenceDeadline(Stream& client, Stream& target, std::chrono::nanoseconds idle, std::chrono::nanoseconds half_close);
  ~SilenceDeadline();
  SilenceDeadline(const SilenceDeadline&) = delete;
  SilenceDeadline& operator=(const SilenceDeadline&) = delete;

  void activity() { last_activity_ = Clock::now(); }
  // One direction ended: the half-close limit applies from now on.
  void half_closed();
  bool expired() const { return expired_; }
  bool expired_half_closed() const { return expired_ && half_closed_; }

 private:
  friend class SilenceWatch;
  std::chrono::nanoseconds limit() const { return half_closed_ ? half_close_ : idle_; }

  Stream& client_;
  Stream& target_;
  std::chrono::nanoseconds idle_;
  std::chrono::nanoseconds half_close_;
  Clock::time_point last_activity_ = Clock::now();
  bool half_closed_ = false;
  bool expired_ = false;
  SilenceWatch* watch_ = nullptr;
  SilenceDeadline* previous_ = nullptr;  // the watch's list
  SilenceDeadline* next_ = nullptr;
};

// The silence deadlines of the relays of one io_context (one worker), checked by one timer
// that ticks at a quarter of the shortest limit (10 ms to 1 s) while any relay is watched,
// and not at all otherwise. Thread-local: used only on its io_context's thread.
class SilenceWatch {
 public:
  static SilenceWatch& of(const asio::any_io_executor& executor);

  void add(SilenceDeadline& deadline);
  void remove(SilenceDeadline& deadline);
  // A deadline of this limit is watched: tick soon enough for it.
  void tick_within(std::chrono::nanoseconds limit);

 private:
  explicit SilenceWatch(asio::any_io_executor executor) : executor_(std::move(executor)) {}
  void scan();

  asio::any_io_executor executor_;
  SilenceDeadline* head_ = nullptr;
  std::unique_ptr<asio::steady_timer> timer_;  // only while some relay is watched
  SilenceDeadline::Clock::time_point next_tick_ = SilenceDeadline::Clock::time_point::max();
  uint64_t generation_ = 0;
};

}  // namespace strait::agent
