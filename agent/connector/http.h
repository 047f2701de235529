#pragma once

#include <optional>
#include <string_view>

#include "agent/connector/connector.h"

namespace strait::agent {

// http: HTTP CONNECT through an HTTP proxy hop, with Basic proxy auth when the node has auth.
absl::StatusOr<std::unique_ptr<Connector>> make_http_connector(const config::v1::NodeConfig& node);

// The status code of an HTTP/1.x response head ("HTTP/1.1 200 OK\r\n..."), or nullopt when
// the head is not an HTTP response.
std::optional<int> parse_http_status(std::string_view head);

}  // namespace strait::agent
