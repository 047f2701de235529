#include "agent/channel/smux_stream.h"

#include <algorithm>
#include <cstring>

#include <boost/asio/post.hpp>

namespace strait::agent {

// What an idle stream costs (the session's map entry aside): no buffer until data arrives.
static_assert(sizeof(SmuxStream) <= 512);

SmuxStream::SmuxStream(std::shared_ptr<SmuxSession> session, uint32_t id, uint64_t serial)
    : session_(std::move(session)), id_(id), serial_(serial) {}

SmuxStream::~SmuxStream() { close(); }

template <typename P>
void SmuxStream::arm(std::optional<P>& pending, Op op) {
  pending->slot = asio::get_associated_cancellation_slot(pending->handler);
  if (pending->slot.is_connected()) pending->canceller = &pending->slot.template emplace<Canceller>(this, op);
}

Stream::executor_type SmuxStream::get_executor() { return session_->get_executor(); }
std::string SmuxStream::remote_address() const { return session_->remote_address(); }
std::string SmuxStream::local_address() const { return session_->local_address(); }
int SmuxStream::version() const { return session_->config().version; }

void SmuxStream::shutdown_send() {
  if (closed_ || fin_sent_) return;
  fin_sent_ = true;
  session_->queue_fin(id_);
  // A write still waiting has queued nothing: it would come after the FIN.
  if (write_) complete_write(asio::error::broken_pipe, 0);
}

void SmuxStream::close() {
  if (closed_) return;
  closed_ = true;
  if (!fin_sent_) {
    fin_sent_ = true;
    session_->queue_fin(id_);
  }
  if (read_) complete(read_, asio::error::operation_aborted, 0);
  if (wait_) complete(wait_, asio::error::operation_aborted);
  if (write_) complete_write(asio::error::operation_aborted, 0);
  session_->release(buffered_);
  chunks_.clear();
  chunk_offset_ = 0;
  buffered_ = 0;
  session_->forget(*this);
}

void SmuxStream::do_read_some(asio::mutable_buffer buffer, common::IoHandler handler) {
  if (read_) return post(std::move(handler), asio::error::in_progress, 0);
  if (buffer.size() == 0) return post(std::move(handler), {}, 0);
  if (buffered_ > 0 && !closed_) {
    size_t n = take(buffer);
    return post(std::move(handler), {}, n);
  }
  if (auto error = read_error()) return post(std::move(handler), error, 0);
  read_.emplace(PendingRead{buffer, std::move(handler), {}, nullptr});
  arm(read_, Op::kRead);
}

void SmuxStream::do_write_some(asio::const_buffer buffer, common::IoHandler handler) {
  if (write_) return post(std::move(handler), asio::error::in_progress, 0);
  if (auto error = write_error()) return post(std::move(handler), error, 0);
  if (buffer.size() == 0) return post(std::move(handler), {}, 0);
  if (size_t n = try_write(buffer); n > 0) return post(std::move(handler), {}, n);
  write_.emplace(PendingWrite{buffer, std::move(handler), {}, nullptr});
  arm(write_, Op::kWrite);
}

void SmuxStream::do_wait_readable(common::WaitHandler handler) {
  auto finish = [this](common::WaitHandler done, error_code error) {
    asio::post(get_executor(), [done = std::move(done), error]() mutable { std::move(done)(error); });
  };
  if (wait_) return finish(std::move(handler), asio::error::in_progress);
  if (closed_) return finish(std::move(handler), asio::error::bad_descriptor);
  // Readable: data, the end of the stream, or an error the next read returns.
  if (buffered_ > 0 || read_error()) return finish(std::move(handler), {});
  wait_.emplace(PendingWait{0, std::move(handler), {}, nullptr});
  arm(wait_, Op::kWait);
}

void SmuxStream::on_data(std::vector<uint8_t> data) {
  buffered_ += data.size();
  chunks_.push_back(std::move(data));
  if (read_) {
    size_t n = take(read_->buffer);
    complete(read_, {}, n);
  }
  if (wait_) complete(wait_, {});
}

void SmuxStream::on_fin() {
  remote_fin_ = true;
  if (read_ && buffered_ == 0) complete(read_, asio::error::eof, 0);
  if (wait_) complete(wait_, {});
}

void SmuxStream::on_update(const smux::WindowUpdate& update) {
  peer_consumed_ = update.consumed;
  peer_window_ = update.window;
  on_room();
}

void SmuxStream::on_session_end(error_code error) {
  session_error_ = error;
  if (read_) complete(read_, error, 0);
  if (wait_) complete(wait_, error);
  if (write_) complete_write(error, 0);
}

void SmuxStream::on_room() {
  waiting_room_ = false;
  if (!write_) return;
  if (auto error = write_error()) return complete_write(error, 0);
  if (size_t n = try_write(write_->buffer); n > 0) complete_write({}, n);
}

std::optional<smux::WindowUpdate> SmuxStream::take_update() {
  if (!update_owed_) return std::nullopt;
  update_owed_ = false;
  return smux::WindowUpdate{read_total_, session_->config().max_stream_buffer};
}

size_t SmuxStream::take(asio::mutable_buffer buffer) {
  auto* out = static_cast<uint8_t*>(buffer.data());
  size_t n = 0;
  while (n < buffer.size() && !chunks_.empty()) {
    auto& chunk = chunks_.front();
    size_t count = std::min(buffer.size() - n, chunk.size() - chunk_offset_);
    std::memcpy(out + n, chunk.data() + chunk_offset_, count);
    n += count;
    chunk_offset_ += count;
    if (chunk_offset_ == chunk.size()) {
      chunks_.pop_front();
      chunk_offset_ = 0;
    }
  }
  buffered_ -= n;
  session_->release(n);
  if (version() == 2 && n > 0) {
    read_total_ += static_cast<uint32_t>(n);
    read_since_update_ += static_cast<uint32_t>(n);
    if (smux::update_due(read_total_, static_cast<uint32_t>(n), read_since_update_,
                         session_->config().max_stream_buffer)) {
      read_since_update_ = 0;
      if (!update_owed_) {  // one UPD per stream waits at most; it carries the latest count
        update_owed_ = true;
        session_->queue_update(id_);
      }
    }
  }
  return n;
}

size_t SmuxStream::try_write(asio::const_buffer buffer) {
  size_t n = buffer.size();
  if (version() == 2) {
    // Per-stream window: wait for a UPD (on_update) when the peer's window is used up.
    n = std::min<size_t>(n, smux::send_window(written_, peer_consumed_, peer_window_));
    if (n == 0) return 0;
  }
  size_t room = session_->write_room(*this);
  if (room == 0) {
    if (!waiting_room_) {
      waiting_room_ = true;
      session_->wait_for_room(id_);
    }
    return 0;
  }
  n = std::min(n, room);
  session_->queue_data(*this, static_cast<const uint8_t*>(buffer.data()), n);
  queued_ += n;
  written_ += static_cast<uint32_t>(n);
  return n;
}

error_code SmuxStream::read_error() const {
  if (closed_) return asio::error::bad_descriptor;
  if (remote_fin_) return asio::error::eof;
  return session_error_;
}

error_code SmuxStream::write_error() const {
  if (closed_) return asio::error::bad_descriptor;
  if (session_error_) return session_error_;
  if (fin_sent_) return asio::error::broken_pipe;
  return {};
}

void SmuxStream::Canceller::operator()(asio::cancellation_type type) {
  if (stream == nullptr || type == asio::cancellation_type::none) return;
  auto* target = stream;
  stream = nullptr;
  target->cancel(op);
}

void SmuxStream::cancel(Op op) {
  // Running inside the slot's handler: disarm instead of clearing the slot.
  switch (op) {
    case Op::kRead:
      if (!read_) return;
      read_->canceller = nullptr;
      return complete(read_, asio::error::operation_aborted, 0);
    case Op::kWait:
      if (!wait_) return;
      wait_->canceller = nullptr;
      return complete(wait_, asio::error::operation_aborted);
    case Op::kWrite:
      if (!write_) return;
      write_->canceller = nullptr;
      return complete_write(asio::error::operation_aborted, 0);
  }
}

void SmuxStream::complete(std::optional<PendingRead>& pending, error_code error, size_t n) {
  PendingRead done = std::move(*pending);
  pending.reset();
  if (done.canceller != nullptr) done.slot.clear();
  post(std::move(done.handler), error, n);
}

void SmuxStream::complete(std::optional<PendingWait>& pending, error_code error) {
  PendingWait done = std::move(*pending);
  pending.reset();
  if (done.canceller != nullptr) done.slot.clear();
  asio::post(get_executor(), [handler = std::move(done.handler), error]() mutable { std::move(handler)(error); });
}

void SmuxStream::complete_write(error_code error, size_t n) {
  PendingWrite done = std::move(*write_);
  write_.reset();
  if (done.canceller != nullptr) done.slot.clear();
  post(std::move(done.handler), error, n);
}

void SmuxStream::post(common::IoHandler handler, error_code error, size_t n) {
  // Never inline: the caller may be the session's reader in the middle of a frame.
  asio::post(get_executor(), [handler = std::move(handler), error, n]() mutable { std::move(handler)(error, n); });
}

}  // namespace strait::agent
