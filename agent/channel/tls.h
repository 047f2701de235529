#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "agent/channel/channel.h"
#include "agent/channel/layered.h"
#include "agent/channel/tls_context.h"
#include "strait/v1/config.pb.h"

namespace strait::agent {

// TLS as a layer of other channels (wss, mtls, h2): the server side uses the listener's
// certificate (listener.tls), else the agent's top-level tls section, else a self-signed one;
// the client side uses the node's tls settings (dialer.tls over node.tls).
absl::StatusOr<std::shared_ptr<const ServerLayer>> make_tls_server_layer(const config::v1::ServiceConfig& service,
                                                                         const config::v1::Config& config,
                                                                         const std::string& alpn = kNoAlpn);
absl::StatusOr<std::shared_ptr<const ClientLayer>> make_tls_client_layer(const config::v1::NodeConfig& node,
                                                                         const std::string& alpn = kNoAlpn);

// The deadline of a layered channel's handshake: metadata handshakeTimeout, 10 s by default.
absl::StatusOr<std::chrono::nanoseconds> channel_handshake_timeout(const google::protobuf::Struct& metadata);

// `tls` listener and dialer: TLS over TCP.
absl::StatusOr<std::unique_ptr<ListenerFactory>> make_tls_listener_factory(const config::v1::ServiceConfig& service,
                                                                           const config::v1::Config& config);
absl::StatusOr<std::unique_ptr<Dialer>> make_tls_dialer(const config::v1::NodeConfig& node);

}  // namespace strait::agent
