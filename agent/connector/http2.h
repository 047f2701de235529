#pragma once

#include "agent/connector/connector.h"

namespace strait::agent {

// http2: CONNECT over HTTP/2 to an `http2` server (GOST connector/http2): one stream per
// target with :authority = the target and Proxy-Authorization: Basic when the node has
// auth; 200 opens the tunnel, 407 is kAuthRequired, anything else kRejected. It opens the
// stream on the connection an `http2` dialer returned (H2ClientConnection); over any other
// stream it speaks HTTP/2 with prior knowledge on a connection of its own.
absl::StatusOr<std::unique_ptr<Connector>> make_http2_connector(const config::v1::NodeConfig& node);

}  // namespace strait::agent
