#pragma once

// The kcp channel (GOST's kcp listener and dialer; kcptun's client and server speak the same):
// KCP conversations over UDP, optionally snappy-compressed, each carrying one smux session
// whose streams are the channel's streams. Wire facts: shared/PROTOCOLS.md §4, §5. Options:
// agent/channel/kcp_options.h.
//
// Listener: one UDP socket per worker (SO_REUSEPORT keeps a peer's 4-tuple on one worker),
// datagrams in batches, conversations keyed by the peer's address as kcp-go's server does,
// one timer per socket for all of them. A datagram from a new address starts a conversation
// only when the crypt opens it and it carries a KCP segment, while fewer than
// kcp.maxSessions conversations are open and fewer than `backlog` wait for the smux layer;
// anything else is dropped and counted. Dialer: per worker, one conversation per server
// address (a connected UDP socket, a random conv), reopened once it ends; each dial opens a
// smux stream on it.

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "agent/channel/channel.h"
#include "agent/channel/kcp_options.h"
#include "strait/v1/config.pb.h"

namespace strait::agent {

struct KcpListenerCounters {
  uint64_t sessions_opened = 0;
  uint64_t garbage = 0;         // first datagrams of a new address that were no KCP of ours
  uint64_t over_capacity = 0;   // new addresses refused at kcp.maxSessions
  uint64_t over_backlog = 0;    // new addresses refused while `backlog` waited for accept
  size_t sessions_open = 0;
};

// KCP (and snappy) below smux: the listener's accept() returns conversations, its
// handshake() adds snappy; the dialer's dial() returns a snappy-wrapped conversation.
std::unique_ptr<ListenerFactory> make_kcp_conversation_listener_factory(KcpConfig config);
std::unique_ptr<Dialer> make_kcp_conversation_dialer(KcpConfig config);
// The counters of a listener made by make_kcp_conversation_listener_factory; nullptr for
// any other listener.
const KcpListenerCounters* kcp_listener_counters(const Listener& listener);

// The registry's type `kcp`: the above under smux.
absl::StatusOr<std::unique_ptr<ListenerFactory>> make_kcp_listener_factory(const config::v1::ServiceConfig& service,
                                                                           const config::v1::Config& config);
absl::StatusOr<std::unique_ptr<Dialer>> make_kcp_dialer(const config::v1::NodeConfig& node);

}  // namespace strait::agent
