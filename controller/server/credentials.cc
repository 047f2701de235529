#include "controller/server/credentials.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/strings.h"
#include "controller/resource/resource.h"

namespace strait::controller {
namespace {

std::string to_hex(const unsigned char* data, size_t size) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (size_t i = 0; i < size; ++i) {
    out.push_back(kHex[data[i] >> 4]);
    out.push_back(kHex[data[i] & 0xF]);
  }
  return out;
}

constexpr size_t kMinimumImportedSecret = 32;
constexpr size_t kMaximumSecret = 256;

int64_t now_unix() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

std::string_view bearer_token(std::string_view authorization) {
  constexpr std::string_view kPrefix = "Bearer ";
  if (authorization.size() <= kPrefix.size() || !common::istarts_with(authorization, kPrefix)) return {};
  return common::strip_whitespace(authorization.substr(kPrefix.size()));
}

std::string random_hex(size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1) {
    throw std::runtime_error("no randomness from the OS");  // the controller cannot run without it
  }
  return to_hex(reinterpret_cast<const unsigned char*>(raw.data()), raw.size());
}

std::string sha256_hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha256(), nullptr);
  return to_hex(digest, size);
}

absl::StatusOr<std::string> read_secret(const std::string& path) {
  std::ifstream existing(path);
  if (!existing) return absl::NotFoundError(common::str_cat("cannot read ", path));
  std::stringstream contents;
  contents << existing.rdbuf();
  std::string secret(common::strip_whitespace(contents.str()));
  if (secret.empty()) return absl::InvalidArgumentError(common::str_cat(path, " is empty"));
  return secret;
}

absl::StatusOr<std::string> load_or_create_secret(const std::string& path) {
  if (std::filesystem::exists(path)) return read_secret(path);
  std::string secret = random_hex(24);
  mode_t previous = ::umask(077);
  std::ofstream out(path);
  out << secret << "\n";
  out.close();
  ::umask(previous);
  if (!out) return absl::UnavailableError(common::str_cat("cannot write ", path));
  return secret;
}

Credentials::Credentials(Store& store, std::string admin_token) : store_(store), admin_token_(std::move(admin_token)) {}

bool Credentials::admin_allowed(std::string_view authorization) const {
  std::string_view token = bearer_token(authorization);
  // Constant-time, so timing does not reveal how much of the token was right.
  return token.size() == admin_token_.size() && CRYPTO_memcmp(token.data(), admin_token_.data(), token.size()) == 0;
}

std::optional<JoinToken> Credentials::join_token(std::string_view authorization) const {
  std::string_view token = bearer_token(authorization);
  if (token.empty() || token.size() > kMaximumSecret) return std::nullopt;
  auto found = store_.find_token(sha256_hex(token), now_unix());
  if (!found.ok()) return std::nullopt;
  return *found;
}

absl::StatusOr<JoinToken> Credentials::store_join_token(const std::string& id, const std::string& secret,
                                                        const std::string& description, int64_t ttl_seconds,
                                                        const std::map<std::string, std::string>& grants) {
  if (ttl_seconds < 0) return absl::InvalidArgumentError("ttl_seconds: a token's TTL cannot be negative");
  if (description.size() > 256) return absl::InvalidArgumentError("description: longer than 256 bytes");
  google::protobuf::Map<std::string, std::string> checked;
  for (const auto& [key, value] : grants) checked[key] = value == "*" ? "any" : value;
  if (auto status = check_labels(checked, "labels"); !status.ok()) return status;
  JoinToken token;
  token.grants = grants;
  token.id = id;
  token.secret_hash = sha256_hex(secret);
  token.description = description;
  token.created_unix = now_unix();
  token.expires_unix = ttl_seconds > 0 ? token.created_unix + ttl_seconds : 0;
  if (auto status = store_.put_token(token); !status.ok()) return status;
  return token;
}

absl::StatusOr<admin::v1::CreateTokenResponse> Credentials::create_join_token(
    const std::string& description, int64_t ttl_seconds, const std::map<std::string, std::string>& grants) {
  std::string id = random_hex(4);
  std::string secret = common::str_cat("sj_", id, "_", random_hex(20));
  auto token = store_join_token(id, secret, description, ttl_seconds, grants);
  if (!token.ok()) return token.status();
  admin::v1::CreateTokenResponse response;
  response.set_token(secret);
  response.set_id(token->id);
  response.set_expires_unix(token->expires_unix);
  return response;
}

absl::StatusOr<std::string> Credentials::import_join_token(const std::string& secret, const std::string& description,
                                                           int64_t ttl_seconds,
                                                           const std::map<std::string, std::string>& grants) {
  // As strong as a generated token's 160 random bits when written in base 62 or hex.
  if (secret.size() < kMinimumImportedSecret || secret.size() > kMaximumSecret) {
    return absl::InvalidArgumentError(common::str_cat("join token: ", secret.size(), " characters; it must have ",
                                                      kMinimumImportedSecret, " to ", kMaximumSecret));
  }
  for (char c : secret) {
    if (c <= ' ' || c > '~') return absl::InvalidArgumentError("join token: only printable ASCII without spaces");
  }
  auto tokens = store_.list_tokens();
  if (!tokens.ok()) return tokens.status();
  std::string hash = sha256_hex(secret);
  for (const auto& token : *tokens) {
    if (token.secret_hash == hash) return token.id;
  }
  auto token = store_join_token(random_hex(4), secret, description, ttl_seconds, grants);
  if (!token.ok()) return token.status();
  return token->id;
}

}  // namespace strait::controller
