#pragma once

#include <optional>
#include <string_view>

namespace strait::agent {

// The status code of an HTTP/1.x response head ("HTTP/1.1 200 OK\r\n..."), or nullopt when
// the head is not an HTTP response. What an http connector reads from a hop.
std::optional<int> parse_http_status(std::string_view head);

}  // namespace strait::agent
