#pragma once

#include <array>
#include <memory>
#include <span>

#include <openssl/ssl.h>

#include "agent/channel/channel.h"

namespace strait::agent {

// TLS over any Stream (a TCP socket, a WebSocket, a stream a previous hop opened), driven
// through OpenSSL with a BIO that reads and writes the stream below. Unlike asio::ssl::stream,
// which keeps two 17 KiB buffers per connection, an idle TlsStream holds no buffer: bytes
// from below are read into a pooled buffer only once they are there (so async_wait_readable
// works through it), and OpenSSL releases its record buffers between records.
class TlsStream final : public Stream {
 public:
  struct Core;

  // `ssl` is in client or server mode already, with its SNI/verification set.
  TlsStream(StreamPtr below, SSL* ssl);
  ~TlsStream() override;

  // Writes some of `buffers` (the first four non-empty ones, up to a relay buffer's worth),
  // in order: records of at most 16 KiB, none spanning two buffers, and one write below for
  // all of them, so that a WebSocket frame's header and payload, or a relay buffer of four
  // records, cost one system call.
  void write_some_gathered(std::span<const asio::const_buffer> buffers, common::IoHandler handler);

  // Runs the handshake (client or server, as the SSL is set up).
  asio::awaitable<error_code> handshake();
  SSL* ssl();

  executor_type get_executor() override;
  // Sends close_notify, then a FIN below: TLS 1.3 peers may go on writing, and TLS 1.2 ones
  // see the end of our data.
  void shutdown_send() override;
  void close() override;
  std::string remote_address() const override;
  std::string local_address() const override;

 protected:
  void do_read_some(asio::mutable_buffer buffer, common::IoHandler handler) override;
  void do_write_some(asio::const_buffer buffer, common::IoHandler handler) override;
  void do_wait_readable(common::WaitHandler handler) override;

 private:
  struct Gathered {
    std::array<asio::const_buffer, 4> items;
    size_t count = 0;
  };

  std::shared_ptr<Core> core_;
};

}  // namespace strait::agent
