#pragma once

// An agent stream for Fleet tests: keeps what the fleet sends, for the test to take in order.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>

#include "controller/server/fleet.h"

namespace strait::test {

class FakeStream final : public controller::AgentStream {
 public:
  using Message = std::shared_ptr<const control::v1::ControllerMessage>;
  static constexpr std::chrono::seconds kWait{5};

  void send(Message message) override {
    std::lock_guard lock(mutex_);
    received_.push_back(std::move(message));
    changed_.notify_all();
  }
  void close(const absl::Status& status) override {
    std::lock_guard lock(mutex_);
    closed_ = status;
    changed_.notify_all();
  }

  // The next message, or null when none comes within kWait.
  Message next() {
    std::unique_lock lock(mutex_);
    if (!changed_.wait_for(lock, kWait, [this] { return !received_.empty(); })) return nullptr;
    Message message = received_.front();
    received_.pop_front();
    return message;
  }
  // True when nothing arrives within `quiet`: for asserting that no push is made.
  bool nothing_within(std::chrono::milliseconds quiet) {
    std::unique_lock lock(mutex_);
    return !changed_.wait_for(lock, quiet, [this] { return !received_.empty(); });
  }
  std::optional<absl::Status> closed() {
    std::lock_guard lock(mutex_);
    return closed_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Message> received_;
  std::optional<absl::Status> closed_;
};

}  // namespace strait::test
