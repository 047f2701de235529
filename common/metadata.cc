#include "common/metadata.h"

#include <cmath>

#include "absl/strings/numbers.h"
#include "common/duration.h"
#include "common/strings.h"

namespace strait::common {
namespace {

using google::protobuf::Value;
using Kind = MetadataKind;

// Every key a Strait type reads. GOST spells some keys several ways; each spelling is a row.
const std::vector<MetadataKey> kKeys = {
    // service
    {"idleTimeout", Kind::kDuration, 0, 0, "a relayed connection with no bytes either way for this long is closed"},
    {"halfCloseTimeout", Kind::kDuration, 0, 0, "after one side ends its stream, how long the other may go on"},
    {"maxConnections", Kind::kInteger, 0, 10'000'000, "open connections (UDP: sessions) of the service, 0 = agent-wide limit only"},
    {"maxConns", Kind::kInteger, 0, 10'000'000, "alias of maxConnections"},
    // listener
    {"ttl", Kind::kDuration, 0, 0, "udp listener: a client session idle this long ends"},
    {"keepalive.ttl", Kind::kDuration, 0, 0, "alias of ttl"},
    {"backlog", Kind::kInteger, 1, 65535, "listen backlog (udp: sessions not yet accepted)"},
    {"keepalive", Kind::kBool, 0, 0, "TCP keepalive on accepted and dialed sockets (default on)"},
    {"keepalive.idle", Kind::kDuration, 0, 0, "idle time before the first keepalive probe"},
    {"keepalive.interval", Kind::kDuration, 0, 0, "time between keepalive probes"},
    {"keepalive.count", Kind::kInteger, 1, 127, "unanswered probes before the connection is dropped"},
    // handlers
    {"readTimeout", Kind::kDuration, 0, 0, "how long a client may take to send its request"},
    {"bind", Kind::kBool, 0, 0, "allow BIND (SOCKS4/5; relay: GOST's remote forwarding)"},
    {"udp", Kind::kBool, 0, 0, "allow SOCKS5 UDP relay"},
    {"udpBufferSize", Kind::kInteger, 1, INT32_MAX, "largest UDP datagram read from a target (clamped to 512..65536)"},
    {"udp.bufferSize", Kind::kInteger, 1, INT32_MAX, "alias of udpBufferSize"},
    {"udp.ttl", Kind::kDuration, 0, 0, "SOCKS5 UDP: a target flow idle this long is closed"},
    {"udp.maxAssociations", Kind::kInteger, 0, 1'000'000, "SOCKS5 UDP associations open at once per service"},
    {"key", Kind::kString, 0, 0, "ss/ssu: the raw cipher key instead of one derived from the password"},
    {"users", Kind::kStringMap, 0, 0, "ss/ssu handler, 2022 methods: user name to base64 PSK (SIP023 identity headers)"},
    {"udpConnTTL", Kind::kDuration, 0, 0, "ssu handler: a target flow (and the session) idle this long is closed"},
    {"udp.connTTL", Kind::kDuration, 0, 0, "alias of udpConnTTL"},
    {"authBasicRealm", Kind::kString, 0, 0, "realm of the HTTP proxy's 407 answer"},
    // connectors and dialers
    {"timeout", Kind::kDuration, 0, 0, "hop handshake deadline"},
    {"connectTimeout", Kind::kDuration, 0, 0, "alias of timeout"},
    {"relay", Kind::kString, 0, 0, "socks5 connector UDP mode: udp for UDP ASSOCIATE"},
    {"disable4a", Kind::kBool, 0, 0, "socks4 connector: resolve names locally"},
    // Channels (tls, ws, wss, mux).
    {"handshakeTimeout", Kind::kDuration, 0, 0, "TLS/WebSocket handshake deadline of a listener or dialer"},
    {"ws.handshakeTimeout", Kind::kDuration, 0, 0, "alias of handshakeTimeout"},
    {"path", Kind::kString, 0, 0, "ws/wss: the HTTP path of the upgrade (default /ws)"},
    {"ws.path", Kind::kString, 0, 0, "alias of path"},
    {"host", Kind::kString, 0, 0, "ws/wss, h2/h2c, pht dialers: the Host (:authority) they send (default: the node address)"},
    {"ws.host", Kind::kString, 0, 0, "alias of host"},
    {"header", Kind::kStringMap, 0, 0, "ws/wss, h2/h2c: HTTP headers added (dialer: request; ws listener: upgrade response)"},
    {"ws.header", Kind::kStringMap, 0, 0, "alias of header"},
    {"ws.keepalive", Kind::kBool, 0, 0, "ws/wss dialer: send WebSocket pings"},
    {"ws.keepalive.interval", Kind::kDuration, 0, 0, "time between WebSocket pings (default 15s)"},
    {"notls", Kind::kBool, 0, 0, "socks5: do not offer (connector) or accept (handler) GOST's TLS methods 0x80/0x82"},
    {"nodelay", Kind::kBool, 0, 0, "relay, ss: send the request/header at once instead of with the first data"},
    {"mux.version", Kind::kInteger, 1, 2, "smux protocol version"},
    {"mux.keepaliveInterval", Kind::kDuration, 0, 0, "smux: time between keepalive frames"},
    {"mux.keepaliveTimeout", Kind::kDuration, 0, 0, "smux: a session silent this long is closed"},
    {"mux.keepaliveDisabled", Kind::kBool, 0, 0, "smux: no keepalive frames"},
    {"mux.maxFrameSize", Kind::kInteger, 1, 65535, "smux: largest data frame"},
    {"mux.maxReceiveBuffer", Kind::kInteger, 1024, 64 << 20, "smux: bytes buffered per session"},
    {"mux.maxStreamBuffer", Kind::kInteger, 1024, 64 << 20, "smux: bytes buffered per stream (version 2 window)"},
    {"mux.maxStreams", Kind::kInteger, 1, 65535, "smux: streams open at once per session"},
    {"authorizePath", Kind::kString, 0, 0, "pht/phts: the HTTP path that opens a tunnel (default /authorize)"},
    {"pushPath", Kind::kString, 0, 0, "pht/phts: the HTTP path of client-to-server data (default /push)"},
    {"pullPath", Kind::kString, 0, 0, "pht/phts: the HTTP path of server-to-client data (default /pull)"},
    {"pht.maxSessions", Kind::kInteger, 1, 1'000'000, "pht/phts listener: tunnels open at once (default 10000)"},
    {"pht.idleTimeout", Kind::kDuration, 0, 0, "pht/phts listener: a tunnel without requests this long ends (60s)"},
    {"pht.bufferSize", Kind::kInteger, 4096, 64 << 20, "pht/phts listener: bytes held per tunnel each way (256 KiB)"},
    // kcp listener and dialer (GOST's names; the JSON config file uses them without `kcp.`)
    {"kcp.key", Kind::kString, 0, 0, "kcp: pre-shared key (default empty, as the newest GOST)"},
    {"kcp.crypt", Kind::kString, 0, 0, "kcp: packet cipher (aes, aes-128, aes-192, salsa20, sm4, xor, none, null, ...)"},
    {"kcp.mode", Kind::kString, 0, 0, "kcp: normal, fast (default), fast2, fast3 or manual"},
    {"kcp.mtu", Kind::kInteger, 64, 1500, "kcp: largest UDP payload (1350)"},
    {"kcp.sndwnd", Kind::kInteger, 1, 32768, "kcp: send window in packets (1024)"},
    {"kcp.rcvwnd", Kind::kInteger, 1, 32768, "kcp: receive window in packets (1024)"},
    {"kcp.datashard", Kind::kInteger, 0, 255, "kcp: FEC data shards (10; GOST reads it from the config file only)"},
    {"kcp.parityshard", Kind::kInteger, 0, 255, "kcp: FEC parity shards (3)"},
    {"kcp.dscp", Kind::kInteger, 0, 63, "kcp: DSCP of the UDP packets"},
    {"kcp.nocomp", Kind::kBool, 0, 0, "kcp: no snappy compression"},
    {"kcp.acknodelay", Kind::kBool, 0, 0, "kcp: acknowledge at once"},
    {"kcp.nodelay", Kind::kBool, 0, 0, "kcp manual mode: nodelay"},
    {"kcp.interval", Kind::kInteger, 10, 5000, "kcp manual mode: flush interval in ms"},
    {"kcp.resend", Kind::kInteger, 0, 1000, "kcp manual mode: fast resend after this many skips"},
    {"kcp.nc", Kind::kBool, 0, 0, "kcp manual mode: no congestion window"},
    {"kcp.sockbuf", Kind::kInteger, 0, 64 << 20, "kcp: UDP socket buffers (4 MiB)"},
    {"kcp.smuxver", Kind::kInteger, 0, 2, "kcp: smux version (1)"},
    {"kcp.smuxbuf", Kind::kInteger, 0, 64 << 20, "kcp: smux session buffer (4 MiB)"},
    {"kcp.streambuf", Kind::kInteger, 0, 64 << 20, "kcp: smux stream buffer (2 MiB)"},
    {"kcp.keepalive", Kind::kInteger, 0, 86400, "kcp: seconds between smux keepalives (10)"},
    {"kcp.tcp", Kind::kBool, 0, 0, "kcp over fake TCP: refused (not supported)"},
    {"kcp.configFile", Kind::kString, 0, 0, "kcp: kcptun/GOST JSON config file"},
    {"configFile", Kind::kString, 0, 0, "alias of kcp.configFile"},
    {"kcp.maxSessions", Kind::kInteger, 1, 1'000'000, "kcp listener: conversations per socket (4096)"},
};

const Value* find(const Metadata& metadata, std::string_view key) {
  for (const auto& [name, value] : metadata.fields()) {
    if (iequals(name, key)) return &value;
  }
  return nullptr;
}

// The value as text for messages, cut short: metadata can be long and comes from users.
std::string shown(const Value& value) {
  std::string text;
  if (value.has_string_value()) {
    text = value.string_value();
  } else if (value.has_bool_value()) {
    text = value.bool_value() ? "true" : "false";
  } else if (value.has_number_value()) {
    text = std::to_string(value.number_value());
  } else {
    text = "(not a scalar)";
  }
  if (text.size() > 40) text = text.substr(0, 40) + "...";
  return text;
}

absl::Status wrong_form(std::string_view key, std::string_view expected, const Value& got) {
  return absl::InvalidArgumentError(str_cat("metadata ", key, ": expected ", expected, ", got \"", shown(got), "\""));
}

// Exactly representable integers of a double: past 2^53 a JSON number is no longer exact.
constexpr double kMaxExactDouble = 9007199254740992.0;

}  // namespace

const std::vector<MetadataKey>& known_metadata_keys() { return kKeys; }

const MetadataKey* find_metadata_key(std::string_view name) {
  for (const auto& key : kKeys) {
    if (iequals(key.name, name)) return &key;
  }
  return nullptr;
}

absl::StatusOr<std::optional<bool>> metadata_bool(const Metadata& metadata, std::string_view key) {
  const Value* value = find(metadata, key);
  if (value == nullptr) return std::nullopt;
  if (value->has_bool_value()) return value->bool_value();
  if (value->has_number_value()) {
    if (value->number_value() == 0) return false;
    if (value->number_value() == 1) return true;
    return wrong_form(key, "true or false", *value);
  }
  std::string text = to_lower(value->string_value());
  // Go's strconv.ParseBool spellings, which GOST uses.
  if (text == "true" || text == "1" || text == "t") return true;
  if (text == "false" || text == "0" || text == "f") return false;
  return wrong_form(key, "true or false", *value);
}

absl::StatusOr<std::optional<std::chrono::nanoseconds>> metadata_duration(const Metadata& metadata,
                                                                          std::string_view key) {
  const Value* value = find(metadata, key);
  if (value == nullptr) return std::nullopt;
  const auto max_seconds = std::chrono::duration<double>(kMaxDuration).count();
  if (value->has_number_value()) {
    // GOST reads a bare number as seconds.
    double seconds = value->number_value();
    if (!std::isfinite(seconds) || seconds < 0 || seconds > max_seconds) {
      return wrong_form(key, str_cat("a duration from 0 to ", format_duration(kMaxDuration)), *value);
    }
    return std::chrono::nanoseconds(static_cast<int64_t>(seconds * 1e9));
  }
  if (!value->has_string_value()) return wrong_form(key, "a duration such as 10s", *value);
  auto parsed = parse_timeout(value->string_value());
  if (!parsed.ok()) return absl::InvalidArgumentError(str_cat("metadata ", key, ": ", parsed.status().message()));
  return *parsed;
}

absl::StatusOr<std::optional<int64_t>> metadata_int(const Metadata& metadata, std::string_view key) {
  const Value* value = find(metadata, key);
  if (value == nullptr) return std::nullopt;
  const MetadataKey* schema = find_metadata_key(key);
  int64_t min = schema != nullptr ? schema->min : INT64_MIN;
  int64_t max = schema != nullptr ? schema->max : INT64_MAX;
  std::string range = str_cat("an integer from ", min, " to ", max);
  int64_t parsed = 0;
  if (value->has_number_value()) {
    double number = value->number_value();
    if (!std::isfinite(number) || std::trunc(number) != number || std::fabs(number) > kMaxExactDouble) {
      return wrong_form(key, range, *value);
    }
    parsed = static_cast<int64_t>(number);
  } else if (!value->has_string_value() || !absl::SimpleAtoi(value->string_value(), &parsed)) {
    return wrong_form(key, range, *value);
  }
  if (parsed < min || parsed > max) return wrong_form(key, range, *value);
  return parsed;
}

std::optional<std::string> metadata_string(const Metadata& metadata, std::string_view key) {
  const Value* value = find(metadata, key);
  if (value == nullptr) return std::nullopt;
  if (value->has_string_value()) return value->string_value();
  if (value->has_bool_value()) return value->bool_value() ? "true" : "false";
  if (value->has_number_value()) {
    double number = value->number_value();
    if (std::isfinite(number) && std::trunc(number) == number && std::fabs(number) <= kMaxExactDouble) {
      return std::to_string(static_cast<int64_t>(number));
    }
    return std::to_string(number);
  }
  return std::string();
}

absl::Status validate_metadata(const Metadata& metadata, std::string_view where, std::vector<std::string>* unknown) {
  for (const auto& [name, value] : metadata.fields()) {
    const MetadataKey* key = find_metadata_key(name);
    if (key == nullptr) {
      if (unknown != nullptr) unknown->push_back(name);
      continue;
    }
    absl::Status status;
    switch (key->kind) {
      case Kind::kBool:
        status = metadata_bool(metadata, name).status();
        break;
      case Kind::kDuration:
        status = metadata_duration(metadata, name).status();
        break;
      case Kind::kInteger:
        status = metadata_int(metadata, name).status();
        break;
      case Kind::kString:
        if (value.has_struct_value() || value.has_list_value()) status = wrong_form(name, "a string", value);
        break;
      case Kind::kStringMap:
        if (!value.has_struct_value()) {
          status = wrong_form(name, "a map of names to strings", value);
          break;
        }
        for (const auto& [entry, text] : value.struct_value().fields()) {
          if (!text.has_string_value()) {
            status = wrong_form(str_cat(name, ".", entry), "a string", text);
            break;
          }
        }
        break;
    }
    if (!status.ok()) return absl::InvalidArgumentError(str_cat(where, ": ", status.message()));
  }
  return absl::OkStatus();
}

}  // namespace strait::common
