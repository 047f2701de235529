#pragma once

#include <boost/system/error_code.hpp>

namespace strait::agent {

// Failures of a proxy hop that have no errno; handlers map them to their protocol's replies.
enum class ProxyError {
  kAuthRequired = 1,       // the hop asked for (other) credentials
  kRejected,               // the hop refused the request (non-success reply)
  kBadResponse,            // the hop answered with something that is not its protocol
  kUnsupportedNetwork,     // e.g. UDP through an HTTP CONNECT hop
  kNoTarget,               // a forward service without a usable target
  kForbidden,              // the hop's rules do not allow this target (SOCKS5 reply 2)
};

const boost::system::error_category& proxy_error_category();

inline boost::system::error_code make_error_code(ProxyError e) {
  return {static_cast<int>(e), proxy_error_category()};
}

}  // namespace strait::agent

template <>
struct boost::system::is_error_code_enum<strait::agent::ProxyError> : std::true_type {};
