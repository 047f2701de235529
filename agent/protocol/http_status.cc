#include "agent/protocol/http_status.h"

namespace strait::agent {

std::optional<int> parse_http_status(std::string_view head) {
  // "HTTP/1.x SP 3DIGIT [SP reason]" (RFC 9112 §4).
  if (head.size() < 12 || head.substr(0, 7) != "HTTP/1." || head[8] != ' ') return std::nullopt;
  int code = 0;
  for (size_t i = 9; i < 12; ++i) {
    if (head[i] < '0' || head[i] > '9') return std::nullopt;
    code = code * 10 + (head[i] - '0');
  }
  if (head.size() > 12 && head[12] != ' ' && head[12] != '\r') return std::nullopt;
  return code;
}

}  // namespace strait::agent
