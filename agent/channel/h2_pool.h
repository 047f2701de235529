#pragma once

#include <memory>
#include <string>
#include <unordered_map>

#include <boost/asio/steady_timer.hpp>

#include "agent/channel/channel.h"
#include "agent/channel/h2_session.h"
#include "agent/net/worker_local.h"

namespace strait::agent {

// Whether `stream` is TLS on which the server selected ALPN "h2" (RFC 9113 §3.2).
bool tls_negotiated_h2(Stream& stream);

// The HTTP/2 client connections of one dialer: one per node address per worker, as GOST
// keeps one http.Client per address, so the dials of a worker to a node multiplex their
// streams on one TCP or TLS connection. Dials that arrive while it is being made wait for
// it; one that broke, got GOAWAY or used up its stream ids is replaced by the next dial.
// Each worker touches only its own slot (WorkerLocal), so nothing locks.
class H2ClientPool {
 public:
  // `transport` opens the connection (TCP, or TCP then TLS); with `require_h2_alpn` a TLS
  // server that did not select "h2" is refused.
  H2ClientPool(std::unique_ptr<Dialer> transport, bool require_h2_alpn, H2SessionOptions options);

  // A live session to `address` on the calling worker, connecting when there is none.
  asio::awaitable<Result<std::shared_ptr<H2Session>>> session(asio::any_io_executor executor,
                                                              const std::string& address, const DialOptions& options);
  // A session over a stream a previous hop opened to `address` (TLS first when the
  // transport has it). Not pooled: it ends with its last stream.
  asio::awaitable<Result<std::shared_ptr<H2Session>>> session_over(StreamPtr stream, const std::string& address);

 private:
  struct Attempt {
    explicit Attempt(asio::any_io_executor executor);
    asio::steady_timer done;  // cancel(): the result is there
    bool finished = false;
    Result<std::shared_ptr<H2Session>> result = asio::error::operation_aborted;
  };
  struct Entry {
    std::shared_ptr<H2Session> session;
    std::shared_ptr<Attempt> attempt;  // a connection being made
  };
  // One worker's connections. Its owner may be destroyed on any thread: idle sessions are
  // closed on their own executor.
  struct Slot {
    std::unordered_map<std::string, Entry> entries;
    ~Slot();
  };

  Result<std::shared_ptr<H2Session>> start(StreamPtr stream, const std::string& address, bool single_use) const;

  std::unique_ptr<Dialer> transport_;
  const bool require_h2_alpn_;
  const H2SessionOptions options_;
  WorkerLocal<Slot> slots_;
};

}  // namespace strait::agent
