#include "agent/runtime/service_options.h"

#include <algorithm>

#include "common/address.h"
#include "common/metadata.h"

namespace strait::agent {
namespace {

using common::Metadata;

// The first of `maps` that sets `key`: GOST's command line puts a query key in every map,
// a config file in the one it belongs to.
template <typename Read>
auto first_set(std::initializer_list<const Metadata*> maps, std::string_view key, Read read)
    -> decltype(read(**maps.begin(), key)) {
  for (const Metadata* metadata : maps) {
    auto value = read(*metadata, key);
    if (!value.ok() || value->has_value()) return value;
  }
  return std::nullopt;
}

absl::StatusOr<std::optional<std::chrono::nanoseconds>> duration_of(std::initializer_list<const Metadata*> maps,
                                                                    std::string_view key) {
  return first_set(maps, key, common::metadata_duration);
}

absl::StatusOr<std::optional<int64_t>> int_of(std::initializer_list<const Metadata*> maps, std::string_view key) {
  return first_set(maps, key, common::metadata_int);
}

std::chrono::seconds whole_seconds(std::chrono::nanoseconds value) {
  return std::max(std::chrono::seconds(1), std::chrono::duration_cast<std::chrono::seconds>(value));
}

}  // namespace

absl::StatusOr<ServiceOptions> parse_service_options(const config::v1::ServiceConfig& service, size_t workers) {
  ServiceOptions options;
  auto address = common::parse_host_port(service.addr(), true);
  if (!address.ok()) return address.status();
  options.listen.address = *address;
  const Metadata& listener = service.listener().metadata();
  const Metadata& handler = service.handler().metadata();
  const Metadata& own = service.metadata();
  const bool udp = service.listener().type() == "udp";

  auto backlog = int_of({&listener}, "backlog");
  if (!backlog.ok()) return backlog.status();
  if (*backlog) {
    if (udp) {
      options.listen.udp_backlog = static_cast<size_t>(**backlog);
    } else {
      options.listen.backlog = static_cast<int>(**backlog);
    }
  }
  auto keepalive = common::metadata_bool(listener, "keepalive");
  if (!keepalive.ok()) return keepalive.status();
  options.listen.keepalive.enabled = keepalive->value_or(true);
  auto keepalive_idle = common::metadata_duration(listener, "keepalive.idle");
  if (!keepalive_idle.ok()) return keepalive_idle.status();
  if (*keepalive_idle) options.listen.keepalive.idle = whole_seconds(**keepalive_idle);
  auto keepalive_interval = common::metadata_duration(listener, "keepalive.interval");
  if (!keepalive_interval.ok()) return keepalive_interval.status();
  if (*keepalive_interval) options.listen.keepalive.interval = whole_seconds(**keepalive_interval);
  auto keepalive_count = common::metadata_int(listener, "keepalive.count");
  if (!keepalive_count.ok()) return keepalive_count.status();
  if (*keepalive_count) options.listen.keepalive.count = static_cast<int>(**keepalive_count);

  for (const char* key : {"maxConnections", "maxConns"}) {
    auto limit = int_of({&own, &handler, &listener}, key);
    if (!limit.ok()) return limit.status();
    if (*limit) options.max_connections = static_cast<size_t>(**limit);
  }
  options.datagram = udp;
  if (udp) {
    size_t sessions = options.max_connections > 0 ? options.max_connections : kDefaultUdpSessions;
    options.listen.max_udp_sessions = std::max<size_t>(1, (sessions + workers - 1) / std::max<size_t>(1, workers));
    auto ttl = duration_of({&listener, &own}, "ttl");
    if (!ttl.ok()) return ttl.status();
    auto ttl_alias = duration_of({&listener, &own}, "keepalive.ttl");
    if (!ttl_alias.ok()) return ttl_alias.status();
    options.relay.idle_timeout = ttl->value_or(ttl_alias->value_or(kDefaultUdpTtl));
    // A datagram flow has no half close.
    options.relay.half_close_timeout = options.relay.idle_timeout;
    return options;
  }
  auto idle = duration_of({&own, &handler}, "idleTimeout");
  if (!idle.ok()) return idle.status();
  if (*idle) options.relay.idle_timeout = **idle;
  auto half_close = duration_of({&own, &handler}, "halfCloseTimeout");
  if (!half_close.ok()) return half_close.status();
  if (*half_close) options.relay.half_close_timeout = **half_close;
  return options;
}

}  // namespace strait::agent
