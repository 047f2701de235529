#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "agent/channel/channel.h"
#include "agent/channel/h2_session.h"
#include "strait/v1/config.pb.h"

namespace strait::agent {

// `h2` (HTTP/2 over TLS, ALPN h2) and `h2c` (cleartext, prior knowledge) channels, as GOST's
// (shared/PROTOCOLS.md §7): a byte tunnel in one HTTP/2 stream.
// Dialer: one HTTP/2 client connection per node address per worker, shared by its dials.
// Each dial is a `CONNECT` with :authority = `host` or the node address, or a `GET <path>`
// when `path` is set, plus the `header` map; status 200 opens the tunnel (request body =
// our bytes, response body = the server's). Listener: without `path` only CONNECT is taken
// (else 405), with `path` the request path must be it (else 400); then 200 and the stream
// is the accepted client. h2 refuses TLS clients that did not ask for ALPN h2; h2c also
// takes an HTTP/1.1 `Upgrade: h2c` (the upgraded request can only receive, as in Go's h2c).
absl::StatusOr<std::unique_ptr<ListenerFactory>> make_h2_listener_factory(const config::v1::ServiceConfig& service,
                                                                          const config::v1::Config& config);
absl::StatusOr<std::unique_ptr<ListenerFactory>> make_h2c_listener_factory(const config::v1::ServiceConfig& service,
                                                                           const config::v1::Config& config);
absl::StatusOr<std::unique_ptr<Dialer>> make_h2_dialer(const config::v1::NodeConfig& node);
absl::StatusOr<std::unique_ptr<Dialer>> make_h2c_dialer(const config::v1::NodeConfig& node);

// `http2` listener: HTTP/2 over TLS (ALPN h2) whose requests are accepted unanswered as
// H2Streams for the `http2` handler (HTTP proxy semantics). `http2` dialer: the pooled
// TLS + ALPN h2 client connection itself, as an H2ClientConnection for the `http2`
// connector, which opens one CONNECT stream per target on it.
absl::StatusOr<std::unique_ptr<ListenerFactory>> make_http2_listener_factory(const config::v1::ServiceConfig& service,
                                                                             const config::v1::Config& config);
absl::StatusOr<std::unique_ptr<Dialer>> make_http2_dialer(const config::v1::NodeConfig& node);

// What the `http2` dialer returns: not a byte stream but a live HTTP/2 client connection,
// on which a connector opens streams (GOST's http2 dialer hands its http.Client to the
// connector the same way). Reads and writes fail with operation_not_supported; closing it
// leaves a pooled connection to other dials and ends an unpooled one that has no stream.
class H2ClientConnection final : public Stream {
 public:
  H2ClientConnection(std::shared_ptr<H2Session> session, bool pooled);
  ~H2ClientConnection() override;
  const std::shared_ptr<H2Session>& session() const { return session_; }

  executor_type get_executor() override { return session_->get_executor(); }
  void shutdown_send() override {}
  void close() override;
  std::string remote_address() const override { return session_->remote_address(); }
  std::string local_address() const override { return session_->local_address(); }

 protected:
  void do_read_some(asio::mutable_buffer buffer, common::IoHandler handler) override;
  void do_write_some(asio::const_buffer buffer, common::IoHandler handler) override;

 private:
  std::shared_ptr<H2Session> session_;
  bool pooled_;
};

}  // namespace strait::agent
