#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/address.h"

namespace strait::agent {

// Listening sockets this agent did not open: handed over by the agent it replaces
// (--takeover) or by systemd (socket activation). A service whose listener matches one
// (same protocol, port and address) adopts it instead of binding, so no client that the
// kernel already queued is refused. Owns the descriptors until a service takes them.
class InheritedSockets {
 public:
  InheritedSockets() = default;
  InheritedSockets(InheritedSockets&&) = default;
  InheritedSockets& operator=(InheritedSockets&&) = default;
  ~InheritedSockets() { close_rest(); }

  // Adds a socket, described by what the kernel says of it; false (and closed) when it is
  // neither a listening TCP socket nor a bound UDP socket.
  bool add(int fd);
  // Removes and returns the sockets of `network` ("tcp" or "udp") bound to `address` (an
  // empty host matches any unspecified address).
  std::vector<int> take(std::string_view network, const common::HostPort& address);
  size_t size() const { return sockets_.size(); }
  // Closes what no service took.
  void close_rest();

 private:
  struct Socket {
    int fd;
    std::string network;
    std::string host;  // empty for an unspecified address
    uint16_t port;
  };
  std::vector<Socket> sockets_;
};

// Adds the sockets systemd passed (LISTEN_PID is this process, LISTEN_FDS counts them from
// descriptor 3) and removes those variables, as sd_listen_fds(3) does. Returns how many.
size_t add_systemd_sockets(InheritedSockets& sockets);

}  // namespace strait::agent
