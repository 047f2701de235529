#pragma once

#include <memory>
#include <string>

#include "controller/store/store.h"

namespace strait::controller {

// The embedded store: one SQLite database file (WAL mode) in the controller's data dir.
absl::StatusOr<std::unique_ptr<Store>> open_sqlite_store(const std::string& path);

}  // namespace strait::controller
