#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

namespace strait::common {

namespace asio = boost::asio;
using boost::system::error_code;

using IoHandler = asio::any_completion_handler<void(error_code, std::size_t)>;
using WaitHandler = asio::any_completion_handler<void(error_code)>;

// A full-duplex byte stream of the channel layer: a TCP socket, or a layer (TLS, WebSocket,
// a multiplexed stream) over another Stream. It models Asio's AsyncReadStream and
// AsyncWriteStream, so Beast, asio::async_read and ssl::stream run over any channel.
// Datagram channels (udp) are Streams whose every read returns one datagram and whose every
// write sends one.
class Stream {
 public:
  using executor_type = asio::any_io_executor;

  virtual ~Stream() = default;
  virtual executor_type get_executor() = 0;

  template <typename MutableBuffers, typename Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return asio::async_initiate<Token, void(error_code, std::size_t)>(
        [this](auto handler, asio::mutable_buffer buffer) { do_read_some(buffer, std::move(handler)); }, token,
        first_buffer(buffers));
  }

  template <typename ConstBuffers, typename Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return asio::async_initiate<Token, void(error_code, std::size_t)>(
        [this](auto handler, asio::const_buffer buffer) { do_write_some(buffer, std::move(handler)); }, token,
        first_buffer(buffers));
  }

  // Completes once a read would not wait (data, the end of the stream or an error is
  // there), so that a relay takes a buffer only then and an idle stream holds none. A
  // stream that cannot tell completes at once.
  template <typename Token>
  auto async_wait_readable(Token&& token) {
    return asio::async_initiate<Token, void(error_code)>([this](auto handler) { do_wait_readable(std::move(handler)); },
                                                         token);
  }

  // Half close: the peer reads EOF after everything written so far.
  virtual void shutdown_send() = 0;
  // Cancels pending operations and releases the channel; safe to call twice.
  virtual void close() = 0;
  virtual std::string remote_address() const = 0;
  virtual std::string local_address() const = 0;
  // The kernel socket when this stream is a plain TCP socket with nothing buffered in user
  // space, so that the relay may splice(2) it; nullptr otherwise.
  virtual asio::ip::tcp::socket* plain_tcp_socket() { return nullptr; }
  virtual bool is_datagram() const { return false; }

  // Something that lives exactly as long as this stream, whoever comes to own it: a
  // service's record of an open connection goes with the client stream into a relay that
  // outlives the handler's coroutine.
  class Attachment {
   public:
    virtual ~Attachment() = default;
  };
  void attach(std::unique_ptr<Attachment> attachment) { attachment_ = std::move(attachment); }

 protected:
  virtual void do_read_some(asio::mutable_buffer buffer, IoHandler handler) = 0;
  virtual void do_write_some(asio::const_buffer buffer, IoHandler handler) = 0;
  virtual void do_wait_readable(WaitHandler handler) {
    asio::post(get_executor(), [handler = std::move(handler)]() mutable { std::move(handler)(error_code{}); });
  }

 private:
  // Read/write_some may transfer less than asked, so using only the first non-empty buffer
  // of a sequence keeps the contract.
  template <typename Buffers>
  static auto first_buffer(const Buffers& buffers) {
    for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers); ++it) {
      if (asio::buffer_size(*it) > 0) return *it;
    }
    return *asio::buffer_sequence_begin(buffers);
  }

  std::unique_ptr<Attachment> attachment_;
};

using StreamPtr = std::unique_ptr<Stream>;

}  // namespace strait::common
