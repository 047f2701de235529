#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include <boost/asio/cancellation_signal.hpp>

#include "agent/channel/channel.h"
#include "agent/protocol/h2_connection.h"

namespace strait::agent {

class H2Session;

// One HTTP/2 stream of an H2Session as a byte Stream: reads return the peer's body (the
// request body on a server, the response body on a client), writes send ours as DATA,
// shutdown_send() is END_STREAM, close() is RST_STREAM CANCEL (unless both sides had ended,
// when our queued bytes still go out). Writes complete once their bytes are queued (at most
// Limits::send_buffer per stream); received bytes are acknowledged as they are read.
//
// The http2 listener hands these streams to the http2 handler, which takes the request from
// head() and answers with respond() before writing the response body:
//   if (auto* h2 = dynamic_cast<H2Stream*>(client.get())) { h2->head().method ...; h2->respond(200); }
class H2Stream final : public Stream {
 public:
  H2Stream(std::shared_ptr<H2Session> session, h2::StreamState* state);
  ~H2Stream() override;

  // The peer's header section: the request of a stream a server accepted, the final
  // response of one a client opened (once async_wait_head completed).
  const h2::Head& head() const { return head_; }
  // Server: sends the response head; `end_stream` when no body follows. Once per stream.
  error_code respond(int status, const h2::Fields& fields = {}, bool end_stream = false);
  // Ends the stream at once with RST_STREAM `code` (h2::kRefusedStream, h2::kCancel...).
  void reset(uint32_t code);
  // Whether reads can only return the end: the peer ended its side and all was read.
  bool peer_done() const { return state_ == nullptr || (state_->remote_end && state_->buffered == 0); }

  // Client: completes when the final response head has arrived, or with the stream's error.
  template <typename Token>
  auto async_wait_head(Token&& token) {
    return asio::async_initiate<Token, void(error_code)>([this](auto handler) { do_wait_head(std::move(handler)); },
                                                         token);
  }

  executor_type get_executor() override;
  void shutdown_send() override;
  void close() override;
  std::string remote_address() const override;
  std::string local_address() const override;

  // Called by the session on its executor.
  void on_event();
  void on_session_end(error_code error);

 protected:
  void do_read_some(asio::mutable_buffer buffer, common::IoHandler handler) override;
  void do_write_some(asio::const_buffer buffer, common::IoHandler handler) override;
  void do_wait_readable(common::WaitHandler handler) override;

 private:
  enum class Op { kRead, kWrite, kWait, kHead };
  // Installed in a pending operation's cancellation slot (`co_await (read || timer)`).
  struct Canceller {
    H2Stream* stream;
    Op op;
    void operator()(asio::cancellation_type type);
  };
  template <typename Handler, typename Buffer>
  struct Pending {
    Buffer buffer;
    Handler handler;
    asio::cancellation_slot slot;
    bool armed = false;
  };
  using PendingIo = Pending<common::IoHandler, asio::mutable_buffer>;
  using PendingWait = Pending<common::WaitHandler, int>;

  void do_wait_head(common::WaitHandler handler);
  template <typename P>
  void arm(std::optional<P>& pending, Op op);
  void complete(std::optional<PendingIo>& pending, error_code error, size_t n);
  void complete(std::optional<PendingWait>& pending, error_code error);
  void cancel(Op op);
  void post(common::IoHandler handler, error_code error, size_t n);
  void post(common::WaitHandler handler, error_code error);
  // Moves what is ready into a pending operation, or completes it with its error.
  void retry_read();
  void retry_write();
  void retry_waits();
  bool head_ready();

  error_code stream_error() const;
  error_code read_error() const;
  error_code write_error() const;

  std::shared_ptr<H2Session> session_;
  h2::StreamState* state_;  // null once closed
  h2::Head head_;
  bool closed_ = false;
  error_code session_error_;
  std::optional<PendingIo> read_;
  std::optional<PendingIo> write_;  // the buffer is a const one, held as mutable for storage
  std::optional<PendingWait> wait_;
  std::optional<PendingWait> head_wait_;
};

}  // namespace strait::agent
