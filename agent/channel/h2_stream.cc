#include "agent/channel/h2_stream.h"

#include <boost/asio/post.hpp>

#include "agent/channel/h2_session.h"

namespace strait::agent {

H2Stream::H2Stream(std::shared_ptr<H2Session> session, h2::StreamState* state)
    : session_(std::move(session)), state_(state) {
  state_->user = this;
  if (state_->head_complete) head_ = std::move(state_->head);
}

H2Stream::~H2Stream() { close(); }

Stream::executor_type H2Stream::get_executor() { return session_->get_executor(); }
std::string H2Stream::remote_address() const { return session_->remote_address(); }
std::string H2Stream::local_address() const { return session_->local_address(); }

error_code H2Stream::respond(int status, const h2::Fields& fields, bool end_stream) {
  if (auto error = stream_error()) return error;
  if (session_->closed()) return session_->close_error_;
  if (int rv = session_->connection_->submit_response(*state_, status, fields, end_stream); rv != 0) {
    return asio::error::broken_pipe;
  }
  session_->wake_writer();
  retry_write();  // a write queued before the response may complete now, or fail
  return {};
}

void H2Stream::reset(uint32_t code) {
  if (state_ == nullptr || session_->closed()) return;
  session_->connection_->reset(*state_, code);
  session_->wake_writer();
  on_event();
}

void H2Stream::shutdown_send() {
  if (state_ == nullptr || session_->closed()) return;
  session_->connection_->end_stream(*state_);
  session_->wake_writer();
  // A write still waiting queued nothing: it would come after END_STREAM.
  if (write_) complete(write_, asio::error::broken_pipe, 0);
}

void H2Stream::close() {
  if (closed_) return;
  closed_ = true;
  if (read_) complete(read_, asio::error::operation_aborted, 0);
  if (write_) complete(write_, asio::error::operation_aborted, 0);
  if (wait_) complete(wait_, asio::error::operation_aborted);
  if (head_wait_) complete(head_wait_, asio::error::operation_aborted);
  if (state_ != nullptr) {
    h2::StreamState* state = state_;
    state_ = nullptr;
    session_->connection_->release(*state);
    if (!session_->closed()) session_->wake_writer();
  }
}

void H2Stream::do_read_some(asio::mutable_buffer buffer, common::IoHandler handler) {
  if (read_) return post(std::move(handler), asio::error::in_progress, 0);
  read_.emplace(PendingIo{buffer, std::move(handler), {}, false});
  arm(read_, Op::kRead);
  retry_read();
}

void H2Stream::do_write_some(asio::const_buffer buffer, common::IoHandler handler) {
  if (write_) return post(std::move(handler), asio::error::in_progress, 0);
  write_.emplace(PendingIo{asio::mutable_buffer(const_cast<void*>(buffer.data()), buffer.size()), std::move(handler),
                           {}, false});
  arm(write_, Op::kWrite);
  retry_write();
}

void H2Stream::do_wait_readable(common::WaitHandler handler) {
  if (wait_) return post(std::move(handler), asio::error::in_progress);
  wait_.emplace(PendingWait{0, std::move(handler), {}, false});
  arm(wait_, Op::kWait);
  retry_waits();
}

void H2Stream::do_wait_head(common::WaitHandler handler) {
  if (head_wait_) return post(std::move(handler), asio::error::in_progress);
  head_wait_.emplace(PendingWait{0, std::move(handler), {}, false});
  arm(head_wait_, Op::kHead);
  retry_waits();
}

void H2Stream::on_event() {
  retry_read();
  retry_write();
  retry_waits();
}

void H2Stream::on_session_end(error_code error) {
  session_error_ = error;
  on_event();
}

void H2Stream::retry_read() {
  if (!read_) return;
  if (read_->buffer.size() == 0) return complete(read_, {}, 0);
  if (!closed_ && state_ != nullptr && state_->buffered > 0) {
    auto* data = static_cast<uint8_t*>(read_->buffer.data());
    size_t n = session_->connection_->read(*state_, {data, read_->buffer.size()});
    if (!session_->closed()) session_->wake_writer();  // a WINDOW_UPDATE may be due
    return complete(read_, {}, n);
  }
  if (auto error = read_error()) complete(read_, error, 0);
}

void H2Stream::retry_write() {
  if (!write_) return;
  if (auto error = write_error()) return complete(write_, error, 0);
  if (write_->buffer.size() == 0) return complete(write_, {}, 0);
  const auto* data = static_cast<const uint8_t*>(write_->buffer.data());
  size_t n = session_->connection_->write(*state_, {data, write_->buffer.size()});
  if (n == 0) return;  // the queue is full: an event brings room
  session_->wake_writer();
  complete(write_, {}, n);
}

bool H2Stream::head_ready() {
  if (head_.status != 0 || !head_.method.empty()) return true;
  if (state_ != nullptr && state_->head_complete) {
    head_ = std::move(state_->head);
    return true;
  }
  return false;
}

void H2Stream::retry_waits() {
  if (wait_) {
    bool readable = (!closed_ && state_ != nullptr && state_->buffered > 0) || read_error();
    if (readable) complete(wait_, {});
  }
  if (head_wait_) {
    if (head_ready()) return complete(head_wait_, {});
    error_code error = closed_ ? error_code(asio::error::bad_descriptor) : stream_error();
    if (!error && state_ != nullptr && state_->closed) error = asio::error::connection_reset;
    if (error) complete(head_wait_, error);
  }
}

error_code H2Stream::stream_error() const {
  if (state_ == nullptr) return asio::error::bad_descriptor;
  if (state_->error == h2::kRefusedStream) return asio::error::connection_refused;
  if (state_->error != 0 || state_->reset_sent) return asio::error::connection_reset;
  return session_error_;
}

error_code H2Stream::read_error() const {
  if (closed_ || state_ == nullptr) return asio::error::bad_descriptor;
  if (state_->buffered > 0) return {};
  if (state_->remote_end) return asio::error::eof;
  if (auto error = stream_error()) return error;
  if (state_->closed) return asio::error::connection_reset;
  return {};
}

error_code H2Stream::write_error() const {
  if (closed_ || state_ == nullptr) return asio::error::bad_descriptor;
  if (auto error = stream_error()) return error;
  if (state_->local_end || state_->closed) return asio::error::broken_pipe;
  return {};
}

template <typename P>
void H2Stream::arm(std::optional<P>& pending, Op op) {
  pending->slot = asio::get_associated_cancellation_slot(pending->handler);
  if (pending->slot.is_connected()) {
    pending->slot.template emplace<Canceller>(Canceller{this, op});
    pending->armed = true;
  }
}

void H2Stream::Canceller::operator()(asio::cancellation_type type) {
  if (stream == nullptr || type == asio::cancellation_type::none) return;
  auto* target = stream;
  stream = nullptr;
  target->cancel(op);
}

void H2Stream::cancel(Op op) {
  // Running inside the slot's handler: disarm instead of clearing the slot.
  switch (op) {
    case Op::kRead:
      if (!read_) return;
      read_->armed = false;
      return complete(read_, asio::error::operation_aborted, 0);
    case Op::kWrite:
      if (!write_) return;
      write_->armed = false;
      return complete(write_, asio::error::operation_aborted, 0);
    case Op::kWait:
      if (!wait_) return;
      wait_->armed = false;
      return complete(wait_, asio::error::operation_aborted);
    case Op::kHead:
      if (!head_wait_) return;
      head_wait_->armed = false;
      return complete(head_wait_, asio::error::operation_aborted);
  }
}

void H2Stream::complete(std::optional<PendingIo>& pending, error_code error, size_t n) {
  PendingIo done = std::move(*pending);
  pending.reset();
  if (done.armed) done.slot.clear();
  post(std::move(done.handler), error, n);
}

void H2Stream::complete(std::optional<PendingWait>& pending, error_code error) {
  PendingWait done = std::move(*pending);
  pending.reset();
  if (done.armed) done.slot.clear();
  post(std::move(done.handler), error);
}

void H2Stream::post(common::IoHandler handler, error_code error, size_t n) {
  // Never inline: the caller may be the session's reader or writer between two frames.
  asio::post(get_executor(), [handler = std::move(handler), error, n]() mutable { std::move(handler)(error, n); });
}

void H2Stream::post(common::WaitHandler handler, error_code error) {
  asio::post(get_executor(), [handler = std::move(handler), error]() mutable { std::move(handler)(error); });
}

}  // namespace strait::agent
