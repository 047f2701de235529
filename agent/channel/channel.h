#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include "common/address.h"
#include "common/stream.h"

namespace strait::agent {

namespace asio = boost::asio;
using boost::system::error_code;
using common::Stream;
using common::StreamPtr;

template <typename T>
using Result = boost::system::result<T>;

enum class Network { kTcp, kUdp };

const char* network_name(Network network);

// TCP keepalive, so that a peer that vanished (a NAT that forgot us, a host that died) is
// noticed and its connection ends. Defaults as Go's net package, hence GOST: a first probe
// after 15 s of silence, then every 15 s, dropped after 9 unanswered.
struct KeepAlive {
  bool enabled = true;
  std::chrono::seconds idle{15};
  std::chrono::seconds interval{15};
  int count = 9;
};

// Applies `keepalive` to a connected TCP socket; errors are ignored (the socket still works).
void set_keepalive(int fd, const KeepAlive& keepalive);
// Whether a bound socket (an inherited one, say) is IPv6.
Result<bool> is_ipv6_socket(int fd);

struct ListenOptions {
  common::HostPort address;
  int backlog = 4096;
  size_t udp_backlog = 128;
  // Clients a udp listener serves at once (per worker socket); the one silent for longest
  // makes room for a new one.
  size_t max_udp_sessions = 10000;
  KeepAlive keepalive{};
  // A listening socket handed over by the agent this one replaces, or by systemd: adopted
  // instead of binding a new one (its address and type match the service's). -1: bind.
  int inherited_fd = -1;
};

// Server side of the channel layer. One Listener lives on one worker thread.
class Listener {
 public:
  virtual ~Listener() = default;
  // The next client stream; an error once the listener is closed.
  virtual asio::awaitable<Result<StreamPtr>> accept() = 0;
  // Runs the channel's layers above the socket (TLS, WebSocket) over a stream accept()
  // returned. The service calls it on that connection's own coroutine, so a slow or silent
  // client never holds the accept loop; it is bounded by the listener's handshake timeout.
  virtual asio::awaitable<Result<StreamPtr>> handshake(StreamPtr accepted) { co_return std::move(accepted); }
  // Clients the kernel has queued but accept() has not returned yet, taken without waiting,
  // so that a listener about to close can hand them over instead of resetting them.
  virtual std::vector<StreamPtr> take_pending() { return {}; }
  // Takes new options for the same socket (listen backlog, keepalive of accepted sockets,
  // UDP session limits) without closing it. The address and type never change here.
  virtual void update(const ListenOptions& options) = 0;
  // Stops accepting; streams already accepted are not affected.
  virtual void close() = 0;
  // Bound address, e.g. "[::]:8080" (the kernel's port when 0 was asked).
  virtual common::HostPort bound_address() const = 0;
  // The listening socket, for handing it over to a new agent (-1 when closed).
  virtual int native_handle() = 0;
};

// Makes listeners of one type for a service: one per worker, all bound to the same address
// (SO_REUSEPORT), so that every worker accepts on its own socket.
class ListenerFactory {
 public:
  virtual ~ListenerFactory() = default;
  virtual Result<std::unique_ptr<Listener>> listen(asio::any_io_executor executor, const ListenOptions& options) = 0;
};

struct DialOptions {
  // Covers name resolution and the connect.
  std::chrono::nanoseconds timeout = std::chrono::seconds(10);
  KeepAlive keepalive{};
};

// Client side of the channel layer (a chain node's transport).
class Dialer {
 public:
  virtual ~Dialer() = default;
  // Opens a channel to `address` (host:port) from this host.
  virtual asio::awaitable<Result<StreamPtr>> dial(asio::any_io_executor executor, const std::string& address,
                                                  Network network, const DialOptions& options) = 0;
  // Runs this channel's handshake over a stream a previous hop opened to `address` (TLS,
  // WebSocket...); the address gives the defaults of SNI and the WebSocket Host.
  virtual asio::awaitable<Result<StreamPtr>> handshake(StreamPtr stream, const std::string& /*address*/) {
    co_return std::move(stream);
  }
};

}  // namespace strait::agent
