#include "agent/runtime/workers.h"

namespace strait::agent {

Workers::Workers(size_t count) {
  if (count == 0) count = 1;
  for (size_t i = 0; i < count; ++i) {
    contexts_.push_back(std::make_unique<asio::io_context>(1));
    guards_.push_back(asio::make_work_guard(*contexts_.back()));
  }
  for (size_t i = 0; i < count; ++i) {
    threads_.emplace_back([context = contexts_[i].get()] { context->run(); });
  }
}

Workers::~Workers() { stop(); }

void Workers::stop() {
  guards_.clear();
  for (auto& context : contexts_) context->stop();
  for (auto& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
}

}  // namespace strait::agent
