#include "agent/channel/pht.h"

#include <algorithm>

#include "agent/channel/layered.h"
#include "agent/channel/pht_client.h"
#include "agent/channel/pht_server.h"
#include "agent/channel/tcp.h"
#include "agent/channel/tls.h"
#include "common/log_escape.h"
#include "common/metadata.h"
#include "common/strings.h"

namespace strait::agent {
namespace {

using common::str_cat;
using Metadata = google::protobuf::Struct;

constexpr size_t kDefaultBacklog = 128;  // GOST listener/pht defaultBacklog

// A path goes into request lines as it is: it must start with '/' and hold no space, '?' or
// control character. GOST silently takes its default for a value without the '/'; a typo
// here is better told.
absl::StatusOr<std::string> read_path(const Metadata& metadata, std::string_view key, std::string_view fallback) {
  auto path = common::metadata_string(metadata, key);
  if (!path || path->empty()) return std::string(fallback);
  bool clean =
      std::none_of(path->begin(), path->end(), [](unsigned char c) { return c <= ' ' || c == '?' || c == 0x7f; });
  if (path->front() != '/' || !clean) {
    return absl::InvalidArgumentError(str_cat("metadata ", key, " \"", common::text_escaped(*path),
                                              "\": expected a path such as ", fallback,
                                              " (starting with /, no spaces, '?' or control characters)"));
  }
  return *path;
}

bool is_header_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](unsigned char c) {
    return std::isalnum(c) || std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
  });
}

// `header`: a map of extra request headers (GOST ≥ 3.2 dialer/pht).
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> read_headers(const Metadata& metadata) {
  std::vector<std::pair<std::string, std::string>> headers;
  for (const auto& [key, value] : metadata.fields()) {
    if (!common::iequals(key, "header")) continue;
    if (!value.has_struct_value())
      return absl::InvalidArgumentError(str_cat("metadata ", key, ": expected a map of headers"));
    for (const auto& [name, text] : value.struct_value().fields()) {
      const std::string& content = text.string_value();
      bool clean =
          std::none_of(content.begin(), content.end(), [](char c) { return c == '\r' || c == '\n' || c == 0; });
      if (!is_header_name(name) || !text.has_string_value() || !clean) {
        return absl::InvalidArgumentError(str_cat("metadata ", key, ".", common::text_escaped(name),
                                                  ": expected a header name with a one-line string value"));
      }
      headers.emplace_back(name, content);
    }
  }
  return headers;
}

template <typename T>
absl::StatusOr<T> read_count(const Metadata& metadata, std::string_view key, T fallback) {
  auto value = common::metadata_int(metadata, key);  // within the key's range (common/metadata.cc)
  if (!value.ok()) return value.status();
  return value->has_value() ? static_cast<T>(**value) : fallback;
}

absl::StatusOr<std::unique_ptr<ListenerFactory>> pht_listener(const config::v1::ServiceConfig& service,
                                                              const config::v1::Config& config, bool tls) {
  const auto& metadata = service.listener().metadata();
  PhtListenerConfig options;
  options.name = tls ? "phts listener" : "pht listener";
  auto authorize = read_path(metadata, "authorizePath", pht::kAuthorizePath);
  if (!authorize.ok()) return authorize.status();
  auto push = read_path(metadata, "pushPath", pht::kPushPath);
  if (!push.ok()) return push.status();
  auto pull = read_path(metadata, "pullPath", pht::kPullPath);
  if (!pull.ok()) return pull.status();
  options.authorize_path = *std::move(authorize);
  options.push_path = *std::move(push);
  options.pull_path = *std::move(pull);
  auto backlog = read_count<size_t>(metadata, "backlog", kDefaultBacklog);
  if (!backlog.ok()) return backlog.status();
  options.backlog = *backlog;
  auto sessions = read_count<size_t>(metadata, "pht.maxSessions", options.limits.max_sessions);
  if (!sessions.ok()) return sessions.status();
  options.limits.max_sessions = *sessions;
  auto buffer = read_count<size_t>(metadata, "pht.bufferSize", options.limits.buffer_size);
  if (!buffer.ok()) return buffer.status();
  options.limits.buffer_size = *buffer;
  auto idle = common::metadata_duration(metadata, "pht.idleTimeout");
  if (!idle.ok()) return idle.status();
  if (*idle && (*idle)->count() > 0) options.limits.idle_timeout = **idle;

  std::unique_ptr<ListenerFactory> base = make_tcp_listener_factory();
  if (tls) {
    auto timeout = channel_handshake_timeout(metadata);
    if (!timeout.ok()) return timeout.status();
    auto layer = make_tls_server_layer(service, config);
    if (!layer.ok()) return layer.status();
    base = make_layered_listener_factory(std::move(base), {*std::move(layer)}, *timeout);
  }
  return make_pht_session_listener_factory(std::move(base), std::move(options));
}

absl::StatusOr<std::unique_ptr<Dialer>> pht_dialer(const config::v1::NodeConfig& node, bool tls) {
  const auto& metadata = node.dialer().metadata();
  PhtDialerConfig options;
  auto authorize = read_path(metadata, "authorizePath", pht::kAuthorizePath);
  if (!authorize.ok()) return authorize.status();
  auto push = read_path(metadata, "pushPath", pht::kPushPath);
  if (!push.ok()) return push.status();
  auto pull = read_path(metadata, "pullPath", pht::kPullPath);
  if (!pull.ok()) return pull.status();
  options.authorize_path = *std::move(authorize);
  options.push_path = *std::move(push);
  options.pull_path = *std::move(pull);
  options.host = common::metadata_string(metadata, "host").value_or("");
  if (!options.host.empty() && !common::is_host_name(options.host)) {
    if (auto parsed = common::parse_host_port(options.host); !parsed.ok() || !common::is_host_name(parsed->host)) {
      return absl::InvalidArgumentError(
          str_cat("metadata host \"", common::text_escaped(options.host), "\": expected a host name or host:port"));
    }
  }
  auto headers = read_headers(metadata);
  if (!headers.ok()) return headers.status();
  options.headers = *std::move(headers);
  auto timeout = channel_handshake_timeout(metadata);
  if (!timeout.ok()) return timeout.status();
  options.handshake_timeout = *timeout;
  if (tls) {
    auto layer = make_tls_client_layer(node);
    if (!layer.ok()) return layer.status();
    options.tls = *std::move(layer);
  }
  return make_pht_dialer_from(std::move(options));
}

}  // namespace

absl::StatusOr<std::unique_ptr<ListenerFactory>> make_pht_listener_factory(const config::v1::ServiceConfig& service,
                                                                           const config::v1::Config& config) {
  return pht_listener(service, config, false);
}
absl::StatusOr<std::unique_ptr<ListenerFactory>> make_phts_listener_factory(const config::v1::ServiceConfig& service,
                                                                            const config::v1::Config& config) {
  return pht_listener(service, config, true);
}
absl::StatusOr<std::unique_ptr<Dialer>> make_pht_dialer(const config::v1::NodeConfig& node) {
  return pht_dialer(node, false);
}
absl::StatusOr<std::unique_ptr<Dialer>> make_phts_dialer(const config::v1::NodeConfig& node) {
  return pht_dialer(node, true);
}

}  // namespace strait::agent
