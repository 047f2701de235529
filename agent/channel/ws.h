#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "agent/channel/channel.h"
#include "agent/channel/layered.h"
#include "strait/v1/config.pb.h"

namespace strait::agent {

// WebSocket as a layer (RFC 6455; Beast parses the upgrade's HTTP, agent/channel/ws_stream
// carries the frames), as GOST's ws transport: the client upgrades `GET <path>` (default
// /ws) with Host = `host` or the node address; each write is one binary message and reads
// return the payloads of incoming messages as one byte stream. WebSocket has no half close:
// a close frame is sent when the stream is closed.
absl::StatusOr<std::shared_ptr<const ServerLayer>> make_ws_server_layer(const config::v1::ServiceConfig& service);
absl::StatusOr<std::shared_ptr<const ClientLayer>> make_ws_client_layer(const config::v1::NodeConfig& node);

// `ws` and `wss` (WebSocket over TLS) listeners and dialers.
absl::StatusOr<std::unique_ptr<ListenerFactory>> make_ws_listener_factory(const config::v1::ServiceConfig& service,
                                                                          const config::v1::Config& config);
absl::StatusOr<std::unique_ptr<ListenerFactory>> make_wss_listener_factory(const config::v1::ServiceConfig& service,
                                                                           const config::v1::Config& config);
absl::StatusOr<std::unique_ptr<Dialer>> make_ws_dialer(const config::v1::NodeConfig& node);
absl::StatusOr<std::unique_ptr<Dialer>> make_wss_dialer(const config::v1::NodeConfig& node);

}  // namespace strait::agent
