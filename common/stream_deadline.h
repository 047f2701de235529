#pragma once

#include <chrono>
#include <memory>

#include <boost/asio/steady_timer.hpp>

#include "common/stream.h"

namespace strait::common {

// Bounds a wait that a peer controls: when an armed deadline passes, the stream is closed so
// that whatever is pending on it completes with an error. Works for every Stream type.
class StreamDeadline {
 public:
  explicit StreamDeadline(Stream& stream);
  ~StreamDeadline();
  StreamDeadline(const StreamDeadline&) = delete;
  StreamDeadline& operator=(const StreamDeadline&) = delete;

  void arm(std::chrono::nanoseconds timeout);
  void disarm();
  bool expired() const { return state_->expired; }

 private:
  struct State {
    Stream* stream;
    bool expired = false;
    uint64_t generation = 0;
  };
  std::shared_ptr<State> state_;
  asio::steady_timer timer_;
};

}  // namespace strait::common
