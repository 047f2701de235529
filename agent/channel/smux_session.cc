#include "agent/channel/smux_session.h"

#include <algorithm>
#include <stdexcept>

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "agent/channel/smux_stream.h"
#include "common/log_escape.h"
#include "common/strings.h"

namespace strait::agent {
namespace {

using common::str_cat;
using Clock = asio::steady_timer::clock_type;
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
// Refusals (FIN answering a SYN beyond our limits) waiting to be written: past this the peer
// opens streams without reading our answers, and the session ends.
constexpr size_t kMaxRefusalsQueued = 1024;

auto log_unexpected(const char* what) {
  return [what](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& exception) {
      spdlog::error("smux: the session's {} ended by an unexpected exception: {}", what, exception.what());
    } catch (...) {
      spdlog::error("smux: the session's {} ended by an unexpected exception", what);
    }
  };
}

std::string describe(const error_code& error, const char* direction) {
  if (error == asio::error::eof) return "the peer closed the connection";
  return str_cat("connection ", direction, " error: ", error.message());
}

long long milliseconds(std::chrono::nanoseconds duration) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(duration).count();
}

}  // namespace

std::shared_ptr<SmuxSession> SmuxSession::start(StreamPtr connection, bool client, smux::Config config) {
  if (auto status = smux::validate(config); !status.ok()) {
    throw std::invalid_argument(str_cat("smux config: ", status.message()));
  }
  std::shared_ptr<SmuxSession> session(new SmuxSession(std::move(connection), client, std::move(config)));
  asio::co_spawn(session->executor_, read_loop(session), log_unexpected("reader"));
  asio::co_spawn(session->executor_, write_loop(session), log_unexpected("writer"));
  if (!session->config_.keepalive_disabled) {
    asio::co_spawn(session->executor_, keepalive_loop(session), log_unexpected("keepalive"));
  }
  return session;
}

SmuxSession::SmuxSession(StreamPtr connection, bool client, smux::Config config)
    : connection_(std::move(connection)),
      executor_(connection_->get_executor()),
      config_(std::move(config)),
      session_queue_limit_(std::max<size_t>(8 * size_t{config_.max_frame_size}, 256 * 1024)),
      remote_(connection_->remote_address()),
      local_(connection_->local_address()),
      next_id_(client ? 1 : 0),
      accept_event_(executor_, Clock::time_point::max()),
      budget_event_(executor_, Clock::time_point::max()),
      writer_event_(executor_, Clock::time_point::max()),
      keepalive_timer_(executor_),
      started_(Clock::now()) {}

SmuxSession::~SmuxSession() = default;

asio::awaitable<Result<StreamPtr>> SmuxSession::open_stream() {
  if (closed_) co_return close_error_;
  if (streams_.size() >= config_.max_streams) co_return asio::error::no_buffer_space;
  do {
    next_id_ += 2;
    // Client ids are odd, server ids even; wrapping to 1 or 0 means all are used (smux
    // ErrGoAway). Ids the peer took are skipped.
    if (next_id_ < 2) ids_exhausted_ = true;
    if (ids_exhausted_) co_return boost::system::errc::make_error_code(boost::system::errc::result_out_of_range);
  } while (streams_.contains(next_id_));
  auto stream = std::make_unique<SmuxStream>(shared_from_this(), next_id_, next_serial_++);
  streams_[next_id_] = stream.get();
  ++opened_;
  append_header(control_, smux::command::kSyn, next_id_);
  wake_writer();
  co_return StreamPtr(std::move(stream));
}

asio::awaitable<Result<StreamPtr>> SmuxSession::accept_stream() {
  auto self = shared_from_this();
  for (;;) {
    if (!accept_backlog_.empty()) {
      StreamPtr stream = std::move(accept_backlog_.front());
      accept_backlog_.pop_front();
      ++accepted_;
      co_return std::move(stream);
    }
    if (closed_) co_return close_error_;
    // accept_event_ completes (operation_aborted) both when a stream arrives and when this
    // operation is cancelled; the cancellation state tells them apart.
    co_await accept_event_.async_wait(kUseTuple);
    auto state = co_await asio::this_coro::cancellation_state;
    if (state.cancelled() != asio::cancellation_type::none) co_return asio::error::operation_aborted;
  }
}

void SmuxSession::close() { end(asio::error::operation_aborted, "closed by us", false); }

asio::awaitable<void> SmuxSession::read_loop(std::shared_ptr<SmuxSession> self) {
  SmuxSession& s = *self;
  while (!s.closed_) {
    // Session-wide flow control (smux token bucket): stop reading while the streams hold
    // max_receive_buffer bytes the application has not read.
    while (!s.closed_ && s.buffered_ >= s.config_.max_receive_buffer) {
      s.receive_paused_ = true;
      co_await s.budget_event_.async_wait(kUseTuple);
    }
    s.receive_paused_ = false;
    if (s.closed_) break;
    auto [error, n] = co_await asio::async_read(*s.connection_, asio::buffer(s.header_), kUseTuple);
    if (s.closed_) break;
    if (error) {
      s.end(asio::error::connection_reset, describe(error, "read"), false);
      break;
    }
    s.frame_arrived_ = true;
    auto header = smux::parse_frame_header(s.header_, s.config_.version);
    if (header.state != ParseState::kComplete) {
      s.end(asio::error::connection_reset, str_cat("protocol error: ", header.reason), true);
      break;
    }
    bool alive = co_await s.handle_frame(header.value);
    if (!alive) break;
  }
}

asio::awaitable<bool> SmuxSession::handle_frame(const smux::FrameHeader& header) {
  const uint32_t id = header.stream_id;
  switch (header.command) {
    case smux::command::kSyn:
      on_syn(id);
      co_return !closed_;
    case smux::command::kFin:
      if (auto* stream = find(id)) stream->on_fin();
      co_return true;
    case smux::command::kUpd: {
      auto [error, n] = co_await asio::async_read(*connection_, asio::buffer(update_), kUseTuple);
      if (closed_) co_return false;
      if (error) {
        end(asio::error::connection_reset, describe(error, "read"), false);
        co_return false;
      }
      auto update = smux::parse_update(update_).value;
      if (auto* stream = find(id)) {
        if (smux::consumed_beyond_written(stream->written(), update.consumed)) {
          end(asio::error::connection_reset,
              str_cat("protocol error: UPD for stream ", id, " says ", update.consumed, " bytes read of ",
                      stream->written(), " sent"),
              true);
          co_return false;
        }
        stream->on_update(update);
      }
      co_return true;
    }
    case smux::command::kPsh: {
      if (header.length == 0) co_return true;
      std::vector<uint8_t> data(header.length);
      auto [error, n] = co_await asio::async_read(*connection_, asio::buffer(data), kUseTuple);
      if (closed_) co_return false;
      if (error) {
        end(asio::error::connection_reset, describe(error, "read"), false);
        co_return false;
      }
      // Data for a stream we closed or never had is dropped, as smux does.
      bytes_received_ += data.size();
      if (auto* stream = find(id)) {
        buffered_ += data.size();
        stream->on_data(std::move(data));
      } else {
        bytes_dropped_ += data.size();
      }
      co_return true;
    }
    default:  // NOP
      co_return true;
  }
}

void SmuxSession::on_syn(uint32_t id) {
  if (streams_.contains(id)) {
    end(asio::error::connection_reset, str_cat("protocol error: SYN for stream ", id, ", which is open"), true);
    return;
  }
  if (streams_.size() >= config_.max_streams) return refuse(id, "max streams are open");
  if (accept_backlog_.size() >= smux::kAcceptBacklog) return refuse(id, "the accept backlog is full");
  auto stream = std::make_unique<SmuxStream>(shared_from_this(), id, next_serial_++);
  streams_[id] = stream.get();
  accept_backlog_.push_back(std::move(stream));
  accept_event_.cancel();
}

void SmuxSession::refuse(uint32_t id, const char* why) {
  ++refused_;
  if (!refusal_logged_) {  // once per session; the summary line counts them all
    refusal_logged_ = true;
    spdlog::warn("smux session with {}: refusing streams the peer opens ({}, {} open)", common::text_escaped(remote_),
                 why, streams_.size());
  }
  if (++refusals_queued_ > kMaxRefusalsQueued) {
    end(asio::error::connection_reset, "the peer opens streams beyond our limits without reading our refusals", true);
    return;
  }
  append_header(control_, smux::command::kFin, id);
  wake_writer();
}

SmuxStream* SmuxSession::find(uint32_t id) const {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second;
}

void SmuxSession::end(error_code stream_error, const std::string& reason, bool warn) {
  if (closed_) return;
  auto keep_alive = shared_from_this();  // the last stream may go with the backlog below
  closed_ = true;
  close_error_ = stream_error;
  spdlog::log(warn ? spdlog::level::warn : spdlog::level::debug,
              "smux session with {} ended after {} ms: {} (streams: {} open, {} opened, {} accepted, {} refused; "
              "bytes: {} sent, {} received, {} of them for closed streams)",
              common::text_escaped(remote_), milliseconds(Clock::now() - started_), reason, streams_.size(), opened_,
              accepted_, refused_, bytes_sent_, bytes_received_, bytes_dropped_);
  connection_->close();
  accept_event_.cancel();
  budget_event_.cancel();
  writer_event_.cancel();
  keepalive_timer_.cancel();
  for (auto& [id, stream] : streams_) stream->on_session_end(stream_error);
  // out_* may be in an async_write right now: the writer drops them when it wakes.
  control_.clear();
  updates_due_.clear();
  data_.clear();
  data_owners_.clear();
  room_waiters_.clear();
  // Streams nobody accepted: their destructors take them out of streams_.
  auto backlog = std::move(accept_backlog_);
  accept_backlog_.clear();
}

asio::awaitable<void> SmuxSession::write_loop(std::shared_ptr<SmuxSession> self) {
  SmuxSession& s = *self;
  for (;;) {
    while (!s.closed_ && s.control_.empty() && s.updates_due_.empty() && s.data_.empty()) {
      co_await s.writer_event_.async_wait(kUseTuple);
    }
    if (s.closed_) co_return;
    s.out_control_.swap(s.control_);
    for (uint32_t id : s.updates_due_) {
      auto* stream = s.find(id);
      auto update = stream ? stream->take_update() : std::nullopt;
      if (!update) continue;
      auto frame = smux::encode_update(s.config_.version, id, *update);
      s.out_control_.insert(s.out_control_.end(), frame.begin(), frame.end());
    }
    s.updates_due_.clear();
    s.nop_queued_ = false;
    s.refusals_queued_ = 0;
    s.out_data_.swap(s.data_);
    s.out_owners_.swap(s.data_owners_);
    std::array<std::vector<uint8_t>*, 2> outs{&s.out_control_, &s.out_data_};
    for (auto* out : outs) {
      if (out->empty()) continue;
      auto [error, n] = co_await asio::async_write(*s.connection_, asio::buffer(*out), kUseTuple);
      s.bytes_sent_ += n;
      if (s.closed_) co_return;
      if (error) {
        s.end(asio::error::connection_reset, describe(error, "write"), false);
        co_return;
      }
    }
    for (const auto& owner : s.out_owners_) {
      auto* stream = s.find(owner.id);
      if (stream && stream->serial() == owner.serial) stream->on_flushed(owner.bytes);
    }
    s.out_control_.clear();
    s.out_data_.clear();
    s.out_owners_.clear();
    if (s.data_.empty()) {  // idle: an idle session holds no write buffer
      s.out_control_.shrink_to_fit();
      s.out_data_.shrink_to_fit();
      s.data_.shrink_to_fit();
    }
    auto waiters = std::move(s.room_waiters_);
    s.room_waiters_.clear();
    for (uint32_t id : waiters) {
      if (auto* stream = s.find(id)) stream->on_room();
    }
  }
}

asio::awaitable<void> SmuxSession::keepalive_loop(std::shared_ptr<SmuxSession> self) {
  SmuxSession& s = *self;
  const auto interval = s.config_.keepalive_interval;
  const auto timeout = s.config_.keepalive_timeout;
  auto next_ping = Clock::now() + interval;
  auto next_check = Clock::now() + timeout;
  while (!s.closed_) {
    s.keepalive_timer_.expires_at(std::min(next_ping, next_check));
    co_await s.keepalive_timer_.async_wait(kUseTuple);
    if (s.closed_) co_return;
    auto now = Clock::now();
    if (now >= next_ping) {
      if (!s.nop_queued_) {
        s.nop_queued_ = true;
        s.append_header(s.control_, smux::command::kNop, 0);
        s.wake_writer();
      }
      next_ping = now + interval;
    }
    if (now >= next_check) {
      // A reader paused by the receive budget reads no frames: that is not silence (smux).
      if (!s.frame_arrived_ && !s.receive_paused_) {
        s.end(asio::error::timed_out,
              str_cat("keepalive timeout: no frame from the peer for ", milliseconds(timeout), " ms"), true);
        co_return;
      }
      s.frame_arrived_ = false;
      next_check = now + timeout;
    }
  }
}

void SmuxSession::append_header(std::vector<uint8_t>& out, uint8_t command, uint32_t id, uint16_t length) {
  auto header = smux::encode_frame_header({static_cast<uint8_t>(config_.version), command, length, id});
  out.insert(out.end(), header.begin(), header.end());
}

void SmuxSession::wake_writer() { writer_event_.cancel(); }

size_t SmuxSession::write_room(const SmuxStream& stream) const {
  if (closed_) return 0;
  size_t stream_room = stream.queued() >= stream_queue_limit() ? 0 : stream_queue_limit() - stream.queued();
  size_t session_room = data_.size() >= session_queue_limit_ ? 0 : session_queue_limit_ - data_.size();
  return std::min(stream_room, session_room);
}

void SmuxSession::queue_data(const SmuxStream& stream, const uint8_t* data, size_t size) {
  for (size_t offset = 0; offset < size;) {
    size_t chunk = std::min<size_t>(size - offset, config_.max_frame_size);
    append_header(data_, smux::command::kPsh, stream.id(), static_cast<uint16_t>(chunk));
    data_.insert(data_.end(), data + offset, data + offset + chunk);
    offset += chunk;
  }
  if (!data_owners_.empty() && data_owners_.back().serial == stream.serial()) {
    data_owners_.back().bytes += size;
  } else {
    data_owners_.push_back({stream.id(), stream.serial(), size});
  }
  wake_writer();
}

void SmuxSession::queue_fin(uint32_t id) {
  if (closed_) return;
  append_header(data_, smux::command::kFin, id);  // after the stream's data
  wake_writer();
}

void SmuxSession::queue_update(uint32_t id) {
  if (closed_) return;
  updates_due_.push_back(id);
  wake_writer();
}

void SmuxSession::wait_for_room(uint32_t id) {
  if (!closed_) room_waiters_.push_back(id);
}

void SmuxSession::release(size_t bytes) {
  buffered_ -= std::min(bytes, buffered_);
  if (receive_paused_ && buffered_ < config_.max_receive_buffer) budget_event_.cancel();
}

void SmuxSession::forget(const SmuxStream& stream) {
  auto it = streams_.find(stream.id());
  if (it != streams_.end() && it->second == &stream) streams_.erase(it);
}

}  // namespace strait::agent
