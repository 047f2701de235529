#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "agent/channel/channel.h"
#include "agent/protocol/smux.h"
#include "strait/v1/config.pb.h"

namespace strait::agent {

// GOST's mux.* keys (version, keepaliveInterval/Timeout/Disabled, maxFrameSize,
// maxReceiveBuffer, maxStreamBuffer) plus our maxStreams, over smux's defaults.
absl::StatusOr<smux::Config> parse_mux_config(const google::protobuf::Struct& metadata);

// smux over another channel (GOST's mtcp, mtls, mws, mwss). The listener runs a server
// session on every connection `base` accepts (after its handshake) and accept() returns the
// streams clients open; the dialer keeps, per worker, one client session per node address,
// opens a stream on it for every dial and dials a new session once it has ended.
std::unique_ptr<ListenerFactory> make_mux_listener_factory(std::unique_ptr<ListenerFactory> base, smux::Config config);
std::unique_ptr<Dialer> make_mux_dialer(std::unique_ptr<Dialer> base, smux::Config config);

// The registry's types.
absl::StatusOr<std::unique_ptr<ListenerFactory>> make_mtcp_listener_factory(const config::v1::ServiceConfig& service,
                                                                            const config::v1::Config& config);
absl::StatusOr<std::unique_ptr<ListenerFactory>> make_mtls_listener_factory(const config::v1::ServiceConfig& service,
                                                                            const config::v1::Config& config);
absl::StatusOr<std::unique_ptr<ListenerFactory>> make_mws_listener_factory(const config::v1::ServiceConfig& service,
                                                                           const config::v1::Config& config);
absl::StatusOr<std::unique_ptr<ListenerFactory>> make_mwss_listener_factory(const config::v1::ServiceConfig& service,
                                                                            const config::v1::Config& config);
absl::StatusOr<std::unique_ptr<Dialer>> make_mtcp_dialer(const config::v1::NodeConfig& node);
absl::StatusOr<std::unique_ptr<Dialer>> make_mtls_dialer(const config::v1::NodeConfig& node);
absl::StatusOr<std::unique_ptr<Dialer>> make_mws_dialer(const config::v1::NodeConfig& node);
absl::StatusOr<std::unique_ptr<Dialer>> make_mwss_dialer(const config::v1::NodeConfig& node);

}  // namespace strait::agent
