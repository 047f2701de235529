#include "agent/runtime/workers.h"

#include <algorithm>

#include "agent/net/worker_local.h"

namespace strait::agent {

Workers::Workers(size_t count) {
  count = std::clamp<size_t>(count, 1, kMaxWorkers);
  for (size_t i = 0; i < count; ++i) {
    contexts_.push_back(std::make_unique<asio::io_context>(1));
    guards_.push_back(asio::make_work_guard(*contexts_.back()));
  }
  running_ = count;
  for (size_t i = 0; i < count; ++i) {
    threads_.emplace_back([this, i, context = contexts_[i].get()] {
      set_this_worker(i);
      context->run();
      running_.fetch_sub(1);
    });
  }
}

Workers::~Workers() { stop(); }

void Workers::stop(std::chrono::milliseconds grace) {
  guards_.clear();
  auto deadline = std::chrono::steady_clock::now() + grace;
  // Runs once at exit on the main thread; a short poll keeps this simple.
  while (running_.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  for (auto& context : contexts_) context->stop();
  for (auto& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
}

}  // namespace strait::agent
