#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include "absl/status/statusor.h"
#include "agent/runtime/inherited_sockets.h"

namespace strait::agent {

// Binary upgrade without a refused connection, as haproxy's -x and Envoy's hot restart: the
// running agent listens on a unix socket (--takeover PATH); a new agent started with the
// same flag connects, receives every listening socket over SCM_RIGHTS, starts serving on
// them, then tells the old agent to drain and exit. The sockets, and the clients queued in
// them, never close. Only processes of the same user (or root) are answered.
//
// The exchange, one byte per message: the new agent sends 'S'; the old one answers with
// 'F' messages carrying up to 64 descriptors each, then 'E'. Once serving, the new agent
// sends 'D'; the old one answers 'A' and starts draining.

// The new agent's side, after it took the sockets.
class Handover {
 public:
  explicit Handover(int connection) : connection_(connection) {}
  ~Handover();
  Handover(const Handover&) = delete;
  Handover& operator=(const Handover&) = delete;

  // Tells the old agent to stop accepting and drain; returns once it has agreed.
  absl::Status tell_old_agent_to_drain();

 private:
  int connection_;
};

// Connects to the agent at `path` and takes its listening sockets into `sockets`. nullopt
// (not an error) when no agent listens there.
absl::StatusOr<std::unique_ptr<Handover>> take_over(const std::string& path, InheritedSockets& sockets,
                                                    std::chrono::seconds timeout);

// The running agent's side. Lives on the control thread's io_context.
class TakeoverServer {
 public:
  using ListeningSockets = std::function<std::vector<int>()>;
  using Drain = std::function<void()>;

  // Binds `path` (mode 0600; an earlier agent's socket file there is replaced).
  static absl::StatusOr<std::unique_ptr<TakeoverServer>> listen(boost::asio::io_context& io, const std::string& path,
                                                                ListeningSockets sockets, Drain drain);
  ~TakeoverServer();

 private:
  TakeoverServer(boost::asio::io_context& io, std::string path, ListeningSockets sockets, Drain drain);
  void accept_next();
  void serve(int fd);

  boost::asio::local::stream_protocol::acceptor acceptor_;
  // New agents that took the sockets and have not said yet that they serve.
  std::vector<std::weak_ptr<boost::asio::local::stream_protocol::socket>> waiting_;
  std::string path_;
  ListeningSockets sockets_;
  Drain drain_;
};

}  // namespace strait::agent
