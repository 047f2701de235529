#include "agent/channel/registry.h"

#include "agent/channel/tcp.h"
#include "agent/channel/udp.h"
#include "common/strings.h"

namespace strait::agent {
namespace {

struct ListenerEntry {
  const char* type;
  std::unique_ptr<ListenerFactory> (*make)();
};

struct DialerEntry {
  const char* type;
  std::unique_ptr<Dialer> (*make)();
};

constexpr ListenerEntry kListeners[] = {
    {"tcp", make_tcp_listener_factory},
    {"udp", make_udp_listener_factory},
};

constexpr DialerEntry kDialers[] = {
    {"tcp", make_tcp_dialer},
    {"udp", make_udp_dialer},
};

template <typename Table>
std::vector<std::string> names_of(const Table& table) {
  std::vector<std::string> names;
  for (const auto& entry : table) names.emplace_back(entry.type);
  return names;
}

}  // namespace

std::vector<std::string> listener_types() { return names_of(kListeners); }
std::vector<std::string> dialer_types() { return names_of(kDialers); }

absl::StatusOr<std::unique_ptr<ListenerFactory>> make_listener_factory(const std::string& type) {
  for (const auto& entry : kListeners) {
    if (type == entry.type) return entry.make();
  }
  return absl::InvalidArgumentError(
      common::str_cat("unknown listener type \"", type, "\"; known: ", common::join(listener_types(), ", ")));
}

absl::StatusOr<std::unique_ptr<Dialer>> make_dialer(const std::string& type) {
  for (const auto& entry : kDialers) {
    if (type == entry.type) return entry.make();
  }
  return absl::InvalidArgumentError(
      common::str_cat("unknown dialer type \"", type, "\"; known: ", common::join(dialer_types(), ", ")));
}

}  // namespace strait::agent
