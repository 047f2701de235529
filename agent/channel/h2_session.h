#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "agent/channel/channel.h"
#include "agent/channel/h2_stream.h"
#include "agent/protocol/h2_connection.h"

namespace strait::agent {

struct H2SessionOptions {
  h2::Limits limits;
  // The peer's connection preface (its first SETTINGS) must arrive within this.
  std::chrono::nanoseconds settings_timeout = std::chrono::seconds(10);
  // With no stream open for this long the session sends GOAWAY and ends; 0: never.
  std::chrono::nanoseconds idle_timeout = std::chrono::minutes(5);
  // End (GOAWAY) once the last stream has ended: for a connection that served one dial.
  bool single_use = false;
  // Names the session in its log lines, e.g. "listener 127.0.0.1:8443" or "h2c dialer".
  std::string name = "h2";
};

// An HTTP/2 connection, client or server, over any byte stream (TCP, TLS, a stream a
// previous hop opened), with nghttp2 doing the protocol (agent/protocol/h2_connection).
//
// Threading: everything runs on the connection's executor, which must be one thread (a
// worker's io_context); nothing locks. One reader coroutine feeds received bytes to nghttp2,
// one writer coroutine sends what nghttp2 has to send, one watch coroutine enforces the
// SETTINGS and idle deadlines.
//
// Lifetime: the session lives while its coroutines, a stream or an owner holds it; it ends
// on close(), when the connection fails, on malformed input (one log line with the peer and
// nghttp2's reason; other sessions are not affected) or after GOAWAY. Ending completes every
// pending stream operation (operation_aborted when closed here, connection_reset otherwise).
class H2Session : public std::enable_shared_from_this<H2Session>, private h2::Observer {
 public:
  using RequestHandler = std::function<void(std::unique_ptr<H2Stream>)>;

  // Server: each request whose header section is complete goes to `on_request`, on the
  // session's executor; the handler answers it (H2Stream::respond) or keeps it for later.
  static std::shared_ptr<H2Session> start_server(StreamPtr connection, H2SessionOptions options,
                                                 RequestHandler on_request);
  static std::shared_ptr<H2Session> start_client(StreamPtr connection, H2SessionOptions options);
  // Server after an HTTP/1.1 `Upgrade: h2c` (RFC 7540 §3.2): `settings` is the decoded
  // HTTP2-Settings field and `request` the upgraded request, which becomes stream 1.
  static std::shared_ptr<H2Session> start_upgraded_server(StreamPtr connection, H2SessionOptions options,
                                                          RequestHandler on_request, std::span<const uint8_t> settings,
                                                          h2::Head request, bool head_request);

  H2Session(const H2Session&) = delete;
  H2Session& operator=(const H2Session&) = delete;
  ~H2Session() override;

  // Client: sends `request` (CONNECT without :path, or a method with a path) and waits for
  // the final response head within `timeout`. The stream's status is in head().status; its
  // body flows both ways from then on.
  asio::awaitable<Result<std::unique_ptr<H2Stream>>> open(const h2::Head& request, std::chrono::nanoseconds timeout);
  // Client: whether open() can still start a stream here (live, no GOAWAY, ids left).
  bool can_open() const;
  // Ends at once: the connection is closed, queued frames are dropped.
  void close();
  // Ends gracefully: GOAWAY, so the peer opens no more streams; the session ends when the
  // open ones have.
  void shutdown(const std::string& reason);
  bool closed() const { return closed_; }
  // Calls `done` once when the session has ended.
  void on_end(std::function<void()> done);
  size_t stream_count() const { return connection_ ? connection_->stream_count() : 0; }
  asio::any_io_executor get_executor() const { return executor_; }
  const std::string& remote_address() const { return remote_; }
  const std::string& local_address() const { return local_; }
  // The stream below (a TlsStream when the session runs over TLS).
  Stream& transport() { return *transport_; }

 private:
  friend class H2Stream;
  H2Session(StreamPtr connection, h2::Role role, H2SessionOptions options, RequestHandler on_request);
  static std::shared_ptr<H2Session> launch(std::shared_ptr<H2Session> session);

  static asio::awaitable<void> read_loop(std::shared_ptr<H2Session> self);
  static asio::awaitable<void> write_loop(std::shared_ptr<H2Session> self);
  static asio::awaitable<void> watch_loop(std::shared_ptr<H2Session> self);
  void on_stream_event(h2::StreamState& stream) override;
  void on_idle() override;
  // Tells streams what changed during the last receive()/take_output(), outside nghttp2.
  void deliver_events();
  void dispatch_requests();
  // The one end path: one log line, the connection closed, every stream operation completed.
  void end(error_code stream_error, const std::string& reason, bool warn);
  void wake_writer() { writer_event_.cancel(); }

  StreamPtr transport_;
  asio::any_io_executor executor_;
  const h2::Role role_;
  const H2SessionOptions options_;
  RequestHandler on_request_;
  std::unique_ptr<h2::Connection> connection_;
  const std::string remote_;
  const std::string local_;
  bool closed_ = false;
  error_code close_error_;
  std::vector<std::function<void()>> on_end_;
  std::vector<int32_t> events_;  // streams with news, by id (a state may go meanwhile)
  bool goaway_due_ = false;      // the writer sends GOAWAY if still no stream is open
  std::string goaway_reason_;
  std::vector<uint8_t> out_;
  asio::steady_timer writer_event_;  // used as an event: cancel() wakes the writer
  asio::steady_timer watch_timer_;
  asio::steady_timer::clock_type::time_point idle_since_;
  const asio::steady_timer::clock_type::time_point started_;
  uint64_t bytes_received_ = 0;
  uint64_t bytes_sent_ = 0;
  size_t streams_seen_ = 0;
};

}  // namespace strait::agent
