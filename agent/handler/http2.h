#pragma once

#include "agent/handler/handler.h"

namespace strait::agent {

// http2: HTTP proxy over HTTP/2, for the streams of the `http2` listener (GOST handler/http2).
// Each stream is one request, read from H2Stream::head(): CONNECT host:port is answered 200
// and the stream becomes the tunnel; a request with :scheme http and an :authority is
// forwarded to it as HTTP/1.1 and the response streamed back; Proxy-Authorization: Basic is
// checked against the service's auther (407 with Proxy-Authenticate: Basic realm="gost", or
// the `authBasicRealm` option). Streams of other listeners are refused with a log line.
absl::StatusOr<std::unique_ptr<Handler>> make_http2_handler(const config::v1::ServiceConfig& service);

}  // namespace strait::agent
