#pragma once

#include <string>

#include "common/stream.h"

namespace strait::common {

// A stream whose first reads return bytes already taken from `inner` (read past a protocol
// header), then read from `inner` itself. Writes go straight to `inner`.
class PrefixedStream final : public Stream {
 public:
  PrefixedStream(StreamPtr inner, std::string prefix);

  executor_type get_executor() override { return inner_->get_executor(); }
  void shutdown_send() override { inner_->shutdown_send(); }
  void close() override { inner_->close(); }
  std::string remote_address() const override { return inner_->remote_address(); }
  std::string local_address() const override { return inner_->local_address(); }
  asio::ip::tcp::socket* plain_tcp_socket() override;
  bool is_datagram() const override { return inner_->is_datagram(); }

 protected:
  void do_read_some(asio::mutable_buffer buffer, IoHandler handler) override;
  void do_write_some(asio::const_buffer buffer, IoHandler handler) override;
  void do_wait_readable(WaitHandler handler) override;

 private:
  StreamPtr inner_;
  std::string prefix_;
  size_t consumed_ = 0;
};

// Wraps `inner` only when there are leftover bytes.
StreamPtr with_prefix(StreamPtr inner, std::string prefix);

}  // namespace strait::common
