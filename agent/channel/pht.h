#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "agent/channel/channel.h"
#include "strait/v1/config.pb.h"

namespace strait::agent {

// `pht` (plain HTTP tunnel over TCP) and `phts` (over TLS), as GOST's (go-gost/x
// internal/util/pht, listener/pht, dialer/pht). A tunnel is a session on an HTTP/1.1
// server, named by a token; its bytes travel in ordinary requests, so it passes proxies and
// middleboxes that allow nothing but HTTP:
//   GET  <authorizePath>               200 "token=<xid>" (text/plain); 429 when full.
//   POST <pushPath>?token=<t>          body: base64(bytes) "\n", client to server. Only the
//                                      first line counts. A body without a line (empty) or an
//                                      empty line closes the tunnel. 200 once taken; 400 bad
//                                      base64 (the tunnel ends); 410 the tunnel is gone.
//   GET  <pullPath>?token=<t>          200, chunked, header X-Accel-Buffering: no; then one
//                                      line base64(<= 32 KiB) "\n" per piece of server to
//                                      client bytes, and a bare "\n" keepalive after 10 s
//                                      without data. The client pulls again when an answer
//                                      ends; an answer that ends with no line at all means
//                                      the server's side of the tunnel ended.
// Push and pull with a token the server does not know: 403 (GOST < 3.2). GOST ≥ 3.2 clients
// skip authorize and make their own xid token; its server then opens the tunnel on the first
// push or pull. The listener does the same for a token in xid form, but never for a token
// of a tunnel that ended (403). Other paths: 404; push not POST or pull not GET: 400.
// A client's push and pull may come on different connections, kept alive between requests.
//
// Listener options (listener.metadata): authorizePath, pushPath, pullPath (defaults
// /authorize, /push, /pull), backlog (tunnels waiting for accept(), 128), pht.maxSessions
// (tunnels open at once per service, 10000), pht.idleTimeout (a tunnel with no request in
// progress for this long ends, 60 s), pht.bufferSize (bytes held per tunnel each way,
// 256 KiB), handshakeTimeout (phts: the TLS handshake, 10 s). phts takes listener.tls.
// Dialer options (dialer.metadata): authorizePath, pushPath, pullPath, host (the Host of the
// requests, with the node's port; default the node address), header (a map of extra request
// headers), handshakeTimeout; phts takes dialer.tls / node.tls. The dialer authorizes, then
// keeps one connection for pushes (one per write, up to 64 KiB each) and one for pulls.
// Neither side has a half close: GOST's client sends its empty push only when it closes.
absl::StatusOr<std::unique_ptr<ListenerFactory>> make_pht_listener_factory(const config::v1::ServiceConfig& service,
                                                                           const config::v1::Config& config);
absl::StatusOr<std::unique_ptr<ListenerFactory>> make_phts_listener_factory(const config::v1::ServiceConfig& service,
                                                                            const config::v1::Config& config);
absl::StatusOr<std::unique_ptr<Dialer>> make_pht_dialer(const config::v1::NodeConfig& node);
absl::StatusOr<std::unique_ptr<Dialer>> make_phts_dialer(const config::v1::NodeConfig& node);

}  // namespace strait::agent
