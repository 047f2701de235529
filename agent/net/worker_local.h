#pragma once

#include <array>
#include <cstddef>
#include <memory>

namespace strait::agent {

inline constexpr size_t kMaxWorkers = 256;

// Which worker thread the caller runs on: set once by each worker thread; 0 on threads that
// are not workers (the main thread, tests).
size_t this_worker();
void set_this_worker(size_t index);

// One T per worker thread, made on first use there and touched only by that thread, so that
// per-worker state shared by every connection of a worker (mux session pools, upstream
// HTTP/2 clients) needs no lock; Envoy keeps its connection pools per worker the same way.
// The owner outlives its users; T's destructor may run on any thread.
template <typename T>
class WorkerLocal {
 public:
  T& get() {
    auto& slot = slots_[this_worker()];
    if (!slot) slot = std::make_unique<T>();
    return *slot;
  }

 private:
  std::array<std::unique_ptr<T>, kMaxWorkers> slots_;
};

}  // namespace strait::agent
