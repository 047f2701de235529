#include "agent/relay/silence_watch.h"

#include <algorithm>
#include <vector>

namespace strait::agent {
namespace {

constexpr std::chrono::nanoseconds kShortestTick = std::chrono::milliseconds(10);
constexpr std::chrono::nanoseconds kLongestTick = std::chrono::seconds(1);

std::chrono::nanoseconds tick_for(std::chrono::nanoseconds limit) {
  return std::clamp(limit / 4, kShortestTick, kLongestTick);
}

}  // namespace

SilenceDeadline::SilenceDeadline(Stream& client, Stream& target, std::chrono::nanoseconds idle,
                                 std::chrono::nanoseconds half_close)
    : client_(client), target_(target), idle_(idle), half_close_(half_close) {
  if (idle_.count() <= 0 && half_close_.count() <= 0) return;
  SilenceWatch::of(client.get_executor()).add(*this);
}

SilenceDeadline::~SilenceDeadline() {
  if (watch_ != nullptr) watch_->remove(*this);
}

void SilenceDeadline::half_closed() {
  if (half_closed_) return;
  half_closed_ = true;
  last_activity_ = Clock::now();
  if (watch_ != nullptr && half_close_.count() > 0) watch_->tick_within(half_close_);
}

SilenceWatch& SilenceWatch::of(const asio::any_io_executor& executor) {
  // One per io_context run on this thread; kept for the thread's life (a few words each), so
  // that a timer handler still queued when its last relay ended finds its watch.
  thread_local std::vector<std::unique_ptr<SilenceWatch>> watches;
  for (auto& watch : watches) {
    if (watch->executor_ == executor) return *watch;
  }
  watches.push_back(std::unique_ptr<SilenceWatch>(new SilenceWatch(executor)));
  return *watches.back();
}

void SilenceWatch::add(SilenceDeadline& deadline) {
  deadline.watch_ = this;
  deadline.next_ = head_;
  if (head_ != nullptr) head_->previous_ = &deadline;
  head_ = &deadline;
  tick_within(deadline.limit());
}

void SilenceWatch::remove(SilenceDeadline& deadline) {
  if (deadline.previous_ != nullptr) deadline.previous_->next_ = deadline.next_;
  if (deadline.next_ != nullptr) deadline.next_->previous_ = deadline.previous_;
  if (head_ == &deadline) head_ = deadline.next_;
  deadline.watch_ = nullptr;
  if (head_ == nullptr) {
    // Nothing to watch: no timer either, so an idle worker never wakes for this.
    ++generation_;
    timer_.reset();
    next_tick_ = SilenceDeadline::Clock::time_point::max();
  }
}

void SilenceWatch::tick_within(std::chrono::nanoseconds limit) {
  if (limit.count() <= 0) return;
  auto when = SilenceDeadline::Clock::now() + tick_for(limit);
  if (when >= next_tick_) return;
  next_tick_ = when;
  if (!timer_) timer_ = std::make_unique<asio::steady_timer>(executor_);
  uint64_t generation = ++generation_;
  timer_->expires_at(when);
  timer_->async_wait([this, generation](const boost::system::error_code& ec) {
    if (ec || generation != generation_) return;
    next_tick_ = SilenceDeadline::Clock::time_point::max();
    scan();
  });
}

void SilenceWatch::scan() {
  auto now = SilenceDeadline::Clock::now();
  std::chrono::nanoseconds shortest = std::chrono::nanoseconds::max();
  for (SilenceDeadline* deadline = head_; deadline != nullptr; deadline = deadline->next_) {
    auto limit = deadline->limit();
    if (limit.count() <= 0 || deadline->expired_) continue;
    if (now - deadline->last_activity_ >= limit) {
      // Closing only cancels the relay's pending operations; nothing is destroyed here, so
      // the list stays valid while it is walked.
      deadline->expired_ = true;
      deadline->client_.close();
      deadline->target_.close();
      continue;
    }
    shortest = std::min(shortest, limit);
  }
  if (shortest != std::chrono::nanoseconds::max()) tick_within(shortest);
}

}  // namespace strait::agent
