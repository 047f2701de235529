#include "agent/runtime/config_sources.h"

#include <exception>

#include "common/cmdline_config.h"
#include "common/strings.h"

namespace strait::agent {

absl::Status ConfigSources::set_local(config::v1::Config local) {
  std::lock_guard lock(mutex_);
  auto status = apply_locked(local, controller_ ? &*controller_ : nullptr);
  if (status.ok()) local_ = std::move(local);
  return status;
}

absl::Status ConfigSources::set_controller(config::v1::Config snapshot) {
  std::lock_guard lock(mutex_);
  auto status = apply_locked(local_, &snapshot);
  if (status.ok()) controller_ = std::move(snapshot);
  return status;
}

bool ConfigSources::has_controller_snapshot() const {
  std::lock_guard lock(mutex_);
  return controller_.has_value();
}

absl::Status ConfigSources::apply_locked(const config::v1::Config& local, const config::v1::Config* snapshot) {
  auto merged = std::make_shared<config::v1::Config>(local);
  if (snapshot != nullptr) common::merge_config(*merged, *snapshot);
  // Validation refuses bad values before anything is built; should a value still slip
  // through and throw, the source's change is refused (a NACK) rather than ending the agent.
  try {
    return runtime_.apply(std::move(merged));
  } catch (const std::exception& error) {
    return absl::InternalError(common::str_cat("config not applied: unexpected error: ", error.what()));
  }
}

}  // namespace strait::agent
