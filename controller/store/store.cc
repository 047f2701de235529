#include "controller/store/store.h"

#include "common/strings.h"

namespace strait::controller {

int StoreListeners::add(std::function<void(const StoreEvent&)> listener) {
  std::lock_guard lock(mutex_);
  listeners_[++next_] = std::move(listener);
  return next_;
}

void StoreListeners::remove(int id) {
  std::lock_guard lock(mutex_);
  listeners_.erase(id);
}

void StoreListeners::notify(const std::vector<StoreEvent>& events) {
  std::lock_guard lock(mutex_);
  for (const auto& event : events) {
    for (auto& [id, listener] : listeners_) listener(event);
  }
}

absl::Status check_expected_revision(const std::string& kind, const std::string& name, int64_t actual,
                                     std::optional<int64_t> expected) {
  using common::str_cat;
  if (!expected || *expected == actual) return absl::OkStatus();
  if (*expected == 0) return absl::AlreadyExistsError(str_cat(kind, " \"", name, "\" already exists (revision ", actual, ")"));
  return absl::FailedPreconditionError(str_cat(kind, " \"", name, "\" is at revision ", actual, ", not ", *expected,
                                               ": it changed since it was read"));
}

}  // namespace strait::controller
