#pragma once

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "strait/v1/config.pb.h"

namespace strait::agent {

// Username/password checks for handlers (GOST auth, auther, authers).
class Auther {
 public:
  void add(const std::string& username, const std::string& password) { users_[username] = password; }
  bool authenticate(const std::string& username, const std::string& password) const;
  bool empty() const { return users_.empty(); }

 private:
  std::map<std::string, std::string> users_;
};

// The auther of a handler: its inline auth plus the named authers it references; null when
// none is configured. Unknown auther names are an error naming them.
absl::StatusOr<std::shared_ptr<const Auther>> build_auther(const config::v1::HandlerConfig& handler,
                                                           const config::v1::Config& config);

}  // namespace strait::agent
