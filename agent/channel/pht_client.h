#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "agent/channel/channel.h"
#include "agent/channel/layered.h"
#include "agent/protocol/pht.h"

namespace strait::agent {

struct PhtDialerConfig {
  std::string authorize_path{pht::kAuthorizePath};
  std::string push_path{pht::kPushPath};
  std::string pull_path{pht::kPullPath};
  // The host of the requests' Host header, with the node's port (GOST's `host`); empty: the
  // node address as it is.
  std::string host;
  std::vector<std::pair<std::string, std::string>> headers;               // added to every request
  std::shared_ptr<const ClientLayer> tls;                                 // phts: TLS on every connection
  std::chrono::nanoseconds handshake_timeout = std::chrono::seconds(10);  // TLS and authorize
};

// The pht dialer (agent/channel/pht.h tells the exchange). dial() opens a connection,
// authorizes, and returns the tunnel as a Stream: each write is one push on a connection
// kept for pushes (a stale one is replaced once), reads take what a pull loop on a second
// connection receives. close() sends GOST's empty push in the background, then drops both
// connections. handshake() over a previous hop's stream fails with operation_not_supported:
// a tunnel needs several connections, and a hop gives one.
std::unique_ptr<Dialer> make_pht_dialer_from(PhtDialerConfig config);

}  // namespace strait::agent
