#pragma once

// The options of the kcp channel (listener and dialer): kcp-go/kcptun/GOST knobs, parsed once
// at config time. Wire facts and the defaults rule: shared/PROTOCOLS.md §5 ("Strait's rule").
//
// Sources, later ones overriding earlier ones: our defaults; a JSON file (`kcp.configFile`,
// `configFile` or `c`; kcptun/GOST JSON names) or a map (`kcp.config`/`config`, same names);
// metadata keys, each accepted as `kcp.<name>` and `<name>` (except `keepalive`, which the
// service reads as TCP keepalive, so only `kcp.keepalive`). Then the mode preset (normal,
// fast, fast2, fast3) replaces nodelay/interval/resend/nc, as kcptun and GOST do; mode
// `manual` (or empty) keeps them.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include <google/protobuf/struct.pb.h>

#include "absl/status/statusor.h"
#include "agent/protocol/kcp.h"
#include "agent/protocol/kcp_crypt.h"
#include "agent/protocol/smux.h"

namespace strait::agent {

struct KcpConfig {
  // Wire-relevant: as the newest GOST, so that a bare kcp:// talks to it.
  std::string key;             // "" when no source gives one (GOST's kcp.key absent)
  std::string crypt = "aes";   // unknown/empty names mean aes (GOST); `null`: no crypt header
  int data_shards = 10;        // FEC is on when both shard counts are > 0
  int parity_shards = 3;
  bool no_compression = false;  // false: snappy framing between KCP and smux
  int smux_version = 1;
  // Tuning that does not change the wire: GOST's DefaultConfig.
  std::string mode = "fast";
  int mtu = 1350;  // UDP payload bytes, crypt and FEC headers included
  int send_window = 1024;
  int receive_window = 1024;
  int dscp = 0;
  bool ack_nodelay = false;
  bool nodelay = false;
  int interval_ms = 30;
  int resend = 2;
  bool no_congestion = true;  // kcp-go `nc`
  int socket_buffer = 4194304;  // SO_SNDBUF/SO_RCVBUF; 0 leaves the kernel's
  int smux_buffer = 4194304;
  int stream_buffer = 2097152;
  int keepalive_seconds = 10;  // smux NOP interval; a silent KCP session ends after 3×
  // Ours: conversations one listener socket (one worker) serves at once; new addresses
  // beyond it are dropped. A conversation that has carried no valid KCP segment within
  // `handshake_timeout` ends (a dialer's: no answer from the server).
  size_t max_sessions = 4096;
  std::chrono::nanoseconds handshake_timeout = std::chrono::seconds(10);

  // Derived by parse_kcp_config.
  kcp::Key derived_key{};       // pbkdf2 of `key`, computed once
  std::string crypt_resolved;   // canonical name; "null" when there is no crypt header

  bool has_crypt() const { return crypt_resolved != "null"; }
  bool has_fec() const { return data_shards > 0 && parity_shards > 0; }
  // Bytes in front of every packet's KCP segments: crypt header, FEC header, size field.
  size_t packet_overhead() const;
  kcp::Tuning tuning() const;
  smux::Config smux_config() const;
};

// Bounds (besides kcp-go's own): mtu 64..1500 and above the headers; windows 1..32768
// segments (each side holds at most 2 × window segments of ≤ 1.5 KB); shards 0..255 with
// data + parity ≤ 255; dscp 0..63; interval 10..5000 ms; resend 0..1000; sockbuf 0..64 MiB;
// smuxver 1..2; smuxbuf/streambuf 0..64 MiB (0 = GOST's default from sockbuf); keepalive
// 0..86400 s (0 = 10); kcp.maxSessions 1..1000000. A bad value is an error naming its key.
absl::StatusOr<KcpConfig> parse_kcp_config(const google::protobuf::Struct& metadata);

// The pieces, for tests and for the dialer/listener factories.
absl::Status apply_kcp_json(const std::string& json, const std::string& where, KcpConfig& config);
void apply_kcp_mode(KcpConfig& config);

}  // namespace strait::agent
