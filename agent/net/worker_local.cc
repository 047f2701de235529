#include "agent/net/worker_local.h"

namespace strait::agent {
namespace {

thread_local size_t current_worker = 0;

}  // namespace

size_t this_worker() { return current_worker; }

void set_this_worker(size_t index) { current_worker = index < kMaxWorkers ? index : kMaxWorkers - 1; }

}  // namespace strait::agent
