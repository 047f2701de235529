#include "agent/auth/auther.h"

#include <openssl/crypto.h>
#include "common/strings.h"


namespace strait::agent {

bool Auther::authenticate(const std::string& username, const std::string& password) const {
  auto it = users_.find(username);
  if (it == users_.end()) return false;
  // Constant-time comparison so that response timing does not reveal the password.
  return it->second.size() == password.size() &&
         CRYPTO_memcmp(it->second.data(), password.data(), password.size()) == 0;
}

absl::StatusOr<std::shared_ptr<const Auther>> build_auther(const config::v1::HandlerConfig& handler,
                                                           const config::v1::Config& config) {
  auto auther = std::make_shared<Auther>();
  if (!handler.auth().username().empty()) auther->add(handler.auth().username(), handler.auth().password());
  std::vector<std::string> names(handler.authers().begin(), handler.authers().end());
  if (!handler.auther().empty()) names.push_back(handler.auther());
  for (const auto& name : names) {
    const config::v1::AutherConfig* found = nullptr;
    for (const auto& candidate : config.authers()) {
      if (candidate.name() == name) found = &candidate;
    }
    if (found == nullptr) return absl::InvalidArgumentError(common::str_cat("auther \"", name, "\" is not defined in authers"));
    for (const auto& entry : found->auths()) auther->add(entry.username(), entry.password());
  }
  if (auther->empty()) return std::shared_ptr<const Auther>();
  return std::shared_ptr<const Auther>(std::move(auther));
}

}  // namespace strait::agent
