#pragma once

#include <optional>

#include <boost/asio/ip/tcp.hpp>

#include "agent/channel/channel.h"

namespace strait::agent {

// A plain TCP connection as a Stream. `remote`, when the caller has it (accept(2) gives it),
// spares a getpeername(2) each time the peer's address is asked for.
class TcpStream final : public Stream {
 public:
  explicit TcpStream(asio::ip::tcp::socket socket, std::optional<asio::ip::tcp::endpoint> remote = std::nullopt);

  executor_type get_executor() override { return socket_.get_executor(); }
  void shutdown_send() override;
  void close() override;
  std::string remote_address() const override;
  std::string local_address() const override;
  asio::ip::tcp::socket* plain_tcp_socket() override { return &socket_; }

 protected:
  void do_read_some(asio::mutable_buffer buffer, common::IoHandler handler) override;
  void do_write_some(asio::const_buffer buffer, common::IoHandler handler) override;
  void do_wait_readable(common::WaitHandler handler) override;

 private:
  asio::ip::tcp::socket socket_;
  std::optional<asio::ip::tcp::endpoint> remote_;
};

std::string endpoint_to_string(const asio::ip::tcp::endpoint& endpoint);

std::unique_ptr<ListenerFactory> make_tcp_listener_factory();
std::unique_ptr<Dialer> make_tcp_dialer();

// Resolves host:port (a literal needs no lookup) and connects, trying each address in turn,
// all within options.timeout.
asio::awaitable<Result<asio::ip::tcp::socket>> connect_tcp(asio::any_io_executor executor, const std::string& address,
                                                           const DialOptions& options);

}  // namespace strait::agent
