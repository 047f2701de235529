#include "common/stream_deadline.h"

namespace strait::common {

StreamDeadline::StreamDeadline(Stream& stream)
    : state_(std::make_shared<State>(State{&stream})), timer_(stream.get_executor()) {}

StreamDeadline::~StreamDeadline() {
  state_->stream = nullptr;
  timer_.cancel();
}

void StreamDeadline::arm(std::chrono::nanoseconds timeout) {
  uint64_t generation = ++state_->generation;
  timer_.expires_after(timeout);
  // The handler owns the state, so it is safe even if it runs after this object is gone.
  timer_.async_wait([state = state_, generation](const error_code& ec) {
    if (ec || state->generation != generation || state->stream == nullptr) return;
    state->expired = true;
    state->stream->close();
  });
}

void StreamDeadline::disarm() {
  ++state_->generation;
  timer_.cancel();
}

}  // namespace strait::common
