#include "agent/channel/kcp_options.h"

#include <fstream>
#include <iterator>
#include <optional>
#include <string_view>

#include <google/protobuf/util/json_util.h>

#include "agent/channel/tls.h"
#include "agent/protocol/kcp_fec.h"
#include "common/metadata.h"
#include "common/strings.h"

namespace strait::agent {
namespace {

using common::str_cat;
using google::protobuf::Struct;

constexpr int64_t kMaxBuffer = 64 << 20;
constexpr size_t kMaxConfigFile = 1 << 20;

struct IntField {
  const char* name;
  int KcpConfig::*field;
  int64_t min;
  int64_t max;
};

// kcptun/GOST JSON names; metadata adds the `kcp.` prefix.
constexpr IntField kIntFields[] = {
    {"mtu", &KcpConfig::mtu, 64, kcp::kMaxPacket},
    {"sndwnd", &KcpConfig::send_window, 1, 32768},
    {"rcvwnd", &KcpConfig::receive_window, 1, 32768},
    {"datashard", &KcpConfig::data_shards, 0, kcp::kFecMaxShards},
    {"parityshard", &KcpConfig::parity_shards, 0, kcp::kFecMaxShards},
    {"dscp", &KcpConfig::dscp, 0, 63},
    {"interval", &KcpConfig::interval_ms, 10, 5000},
    {"resend", &KcpConfig::resend, 0, 1000},
    {"sockbuf", &KcpConfig::socket_buffer, 0, kMaxBuffer},
    {"smuxver", &KcpConfig::smux_version, 0, 2},
    {"smuxbuf", &KcpConfig::smux_buffer, 0, kMaxBuffer},
    {"streambuf", &KcpConfig::stream_buffer, 0, kMaxBuffer},
    {"keepalive", &KcpConfig::keepalive_seconds, 0, 86400},
};

struct BoolField {
  const char* name;
  bool KcpConfig::*field;
};

constexpr BoolField kBoolFields[] = {
    {"nocomp", &KcpConfig::no_compression},
    {"acknodelay", &KcpConfig::ack_nodelay},
    {"nodelay", &KcpConfig::nodelay},
    {"nc", &KcpConfig::no_congestion},
};

constexpr std::string_view kStringFields[] = {"key", "crypt", "mode"};

std::string& string_field(KcpConfig& config, std::string_view name) {
  if (name == "key") return config.key;
  if (name == "crypt") return config.crypt;
  return config.mode;
}

// One source of values: a metadata map (keys `kcp.<name>` or `<name>`) or a JSON object or
// `kcp.config` map (keys `<name>`). `where` prefixes errors from the latter.
class Source {
 public:
  Source(const Struct& values, bool metadata, std::string where)
      : values_(values), metadata_(metadata), where_(std::move(where)) {}

  // The key under which `name` is present, if it is.
  std::optional<std::string> key_of(std::string_view name) const {
    if (metadata_) {
      std::string prefixed = str_cat("kcp.", name);
      if (present(prefixed)) return prefixed;
      // The service reads a bare `keepalive` as TCP keepalive (a boolean).
      if (name == "keepalive") return std::nullopt;
    }
    if (present(name)) return std::string(name);
    return std::nullopt;
  }

  absl::Status apply(KcpConfig& config) const {
    for (const auto& field : kIntFields) {
      auto key = key_of(field.name);
      if (!key) continue;
      auto value = common::metadata_int(values_, *key);
      if (!value.ok()) return error(value.status());
      if (**value < field.min || **value > field.max) {
        return error(absl::InvalidArgumentError(str_cat("metadata ", *key, ": expected an integer from ", field.min,
                                                        " to ", field.max, ", got ", **value)));
      }
      config.*field.field = static_cast<int>(**value);
    }
    for (const auto& field : kBoolFields) {
      auto key = key_of(field.name);
      if (!key) continue;
      auto value = common::metadata_bool(values_, *key);
      if (!value.ok()) return error(value.status());
      config.*field.field = **value;
    }
    for (auto name : kStringFields) {
      if (auto key = key_of(name)) string_field(config, name) = common::metadata_string(values_, *key).value_or("");
    }
    if (auto key = key_of("tcp")) {
      auto tcp = common::metadata_bool(values_, *key);
      if (!tcp.ok()) return error(tcp.status());
      if (**tcp) return error(absl::InvalidArgumentError(str_cat(*key, ": tcpraw (KCP over fake TCP) is not supported")));
    }
    return absl::OkStatus();
  }

 private:
  bool present(std::string_view key) const {
    for (const auto& [name, value] : values_.fields()) {
      if (common::iequals(name, key)) return true;
    }
    return false;
  }
  absl::Status error(const absl::Status& status) const {
    if (where_.empty()) return status;
    return absl::InvalidArgumentError(str_cat(where_, ": ", status.message()));
  }

  const Struct& values_;
  bool metadata_;
  std::string where_;
};

const google::protobuf::Value* find_value(const Struct& metadata, std::string_view key) {
  for (const auto& [name, value] : metadata.fields()) {
    if (common::iequals(name, key)) return &value;
  }
  return nullptr;
}

// The JSON file or map named in metadata, applied over `config`.
absl::Status apply_base(const Struct& metadata, KcpConfig& config) {
  for (const char* key : {"kcp.configFile", "configFile", "c"}) {
    auto path = common::metadata_string(metadata, key);
    if (!path || path->empty()) continue;
    std::ifstream file(*path, std::ios::binary);
    if (!file) return absl::InvalidArgumentError(str_cat(key, ": cannot open \"", *path, "\""));
    std::string json;
    json.resize(kMaxConfigFile + 1);
    file.read(json.data(), static_cast<std::streamsize>(json.size()));
    json.resize(static_cast<size_t>(file.gcount()));
    if (json.size() > kMaxConfigFile) {
      return absl::InvalidArgumentError(str_cat(key, ": \"", *path, "\" is larger than 1 MiB"));
    }
    return apply_kcp_json(json, str_cat(key, " ", *path), config);
  }
  for (const char* key : {"kcp.config", "config"}) {
    const auto* value = find_value(metadata, key);
    if (value == nullptr) continue;
    if (!value->has_struct_value()) return absl::InvalidArgumentError(str_cat(key, ": expected a map of kcp settings"));
    return Source(value->struct_value(), false, key).apply(config);
  }
  return absl::OkStatus();
}

// GOST's Init(): zero means "derive from sockbuf" or "the default".
void fill_zero_values(KcpConfig& config) {
  const KcpConfig defaults;
  if (config.smux_version == 0) config.smux_version = 1;
  if (config.keepalive_seconds == 0) config.keepalive_seconds = defaults.keepalive_seconds;
  if (config.smux_buffer == 0) config.smux_buffer = config.socket_buffer > 0 ? config.socket_buffer : defaults.smux_buffer;
  if (config.stream_buffer == 0) {
    config.stream_buffer = config.socket_buffer > 0 ? config.socket_buffer / 2 : defaults.stream_buffer;
  }
}

}  // namespace

size_t KcpConfig::packet_overhead() const {
  size_t overhead = has_crypt() ? kcp::kCryptHeaderSize : 0;
  if (has_fec()) overhead += kcp::kFecHeaderSize + kcp::kFecSizeFieldSize;
  return overhead;
}

kcp::Tuning KcpConfig::tuning() const {
  kcp::Tuning tuning;
  tuning.nodelay = nodelay;
  tuning.interval_ms = static_cast<uint32_t>(interval_ms);
  tuning.fast_resend = resend;
  tuning.congestion_control = !no_congestion;
  tuning.mtu = static_cast<uint32_t>(mtu);
  tuning.reserved = static_cast<uint32_t>(packet_overhead());
  tuning.send_window = static_cast<uint32_t>(send_window);
  tuning.receive_window = static_cast<uint32_t>(receive_window);
  tuning.ack_nodelay = ack_nodelay;
  return tuning;
}

smux::Config KcpConfig::smux_config() const {
  smux::Config config;  // smux DefaultConfig, as GOST starts from
  config.version = smux_version;
  config.max_receive_buffer = static_cast<uint32_t>(smux_buffer);
  config.max_stream_buffer = static_cast<uint32_t>(stream_buffer);
  config.keepalive_interval = std::chrono::seconds(keepalive_seconds);
  // smux refuses a timeout below the interval; GOST would fail there, we keep 3 intervals.
  config.keepalive_timeout = std::max<std::chrono::nanoseconds>(config.keepalive_timeout, 3 * config.keepalive_interval);
  return config;
}

void apply_kcp_mode(KcpConfig& config) {
  struct Preset {
    std::string_view name;
    bool nodelay;
    int interval;
    int resend;
    bool no_congestion;
  };
  // kcptun/GOST: (nodelay, interval, resend, nc).
  constexpr Preset kPresets[] = {
      {"normal", false, 40, 2, true}, {"fast", false, 30, 2, true}, {"fast2", true, 20, 2, true}, {"fast3", true, 10, 2, true}};
  for (const auto& preset : kPresets) {
    if (!common::iequals(config.mode, preset.name)) continue;
    config.nodelay = preset.nodelay;
    config.interval_ms = preset.interval;
    config.resend = preset.resend;
    config.no_congestion = preset.no_congestion;
  }
}

absl::Status apply_kcp_json(const std::string& json, const std::string& where, KcpConfig& config) {
  Struct values;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  auto parsed = google::protobuf::util::JsonStringToMessage(json, &values, options);
  if (!parsed.ok()) return absl::InvalidArgumentError(str_cat(where, ": not a JSON object: ", std::string(parsed.message().data(), parsed.message().size())));
  return Source(values, false, where).apply(config);
}

absl::StatusOr<KcpConfig> parse_kcp_config(const Struct& metadata) {
  KcpConfig config;
  if (auto status = apply_base(metadata, config); !status.ok()) return status;
  if (auto status = Source(metadata, true, "").apply(config); !status.ok()) return status;
  if (!config.mode.empty() && !common::iequals(config.mode, "manual")) {
    bool known = false;
    for (std::string_view name : {"normal", "fast", "fast2", "fast3"}) known = known || common::iequals(config.mode, name);
    if (!known) {
      return absl::InvalidArgumentError(
          str_cat("kcp.mode: unknown mode \"", config.mode, "\" (known: normal, fast, fast2, fast3, manual)"));
    }
  }
  apply_kcp_mode(config);
  fill_zero_values(config);

  auto sessions = common::metadata_int(metadata, "kcp.maxSessions");
  if (!sessions.ok()) return sessions.status();
  if (*sessions) {
    if (**sessions < 1 || **sessions > 1000000) {
      return absl::InvalidArgumentError(str_cat("metadata kcp.maxSessions: expected an integer from 1 to 1000000, got ",
                                                **sessions));
    }
    config.max_sessions = static_cast<size_t>(**sessions);
  }
  auto timeout = channel_handshake_timeout(metadata);
  if (!timeout.ok()) return timeout.status();
  config.handshake_timeout = *timeout;

  if (config.has_fec()) {
    if (auto status = kcp::validate_fec_shards(config.data_shards, config.parity_shards); !status.ok()) {
      return absl::InvalidArgumentError(str_cat("kcp.datashard/kcp.parityshard: ", status.message()));
    }
  }
  config.derived_key = kcp::derive_key(config.key);
  absl::Status crypt_error;
  auto crypt = kcp::make_packet_crypt_with_key(config.crypt, config.derived_key, crypt_error, kcp::UnknownCrypt::kUseAes);
  if (!crypt_error.ok()) return absl::InvalidArgumentError(str_cat("kcp.crypt: ", crypt_error.message()));
  config.crypt_resolved = crypt ? std::string(crypt->name()) : "null";
  if (static_cast<size_t>(config.mtu) < kcp::kMinMtu + config.packet_overhead()) {
    return absl::InvalidArgumentError(str_cat("kcp.mtu: ", config.mtu, " leaves no room after the ",
                                              config.packet_overhead(), " bytes of crypt and FEC headers"));
  }
  if (auto status = kcp::validate(config.tuning()); !status.ok()) {
    return absl::InvalidArgumentError(str_cat("kcp: ", status.message()));
  }
  if (auto status = smux::validate(config.smux_config()); !status.ok()) {
    return absl::InvalidArgumentError(str_cat("kcp.smuxbuf/kcp.streambuf/kcp.keepalive: ", status.message()));
  }
  return config;
}

}  // namespace strait::agent
