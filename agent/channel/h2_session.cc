#include "agent/channel/h2_session.h"

#include <nghttp2/nghttp2.h>

#include <new>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include "agent/net/buffers.h"
#include "common/duration.h"
#include "common/log_escape.h"
#include "common/strings.h"

namespace strait::agent {
namespace {

using namespace asio::experimental::awaitable_operators;
using common::str_cat;
using Clock = asio::steady_timer::clock_type;
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
// Frames collected from nghttp2 into one write to the connection.
constexpr size_t kWriteBatch = 64 * 1024;
// An idle session gives its write buffer back above this size.
constexpr size_t kKeptWriteBuffer = 4 * 1024;

auto log_unexpected(std::string name, const char* what) {
  return [name = std::move(name), what](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& exception) {
      spdlog::error("{}: the HTTP/2 session's {} ended by an unexpected exception: {}", name, what, exception.what());
    } catch (...) {
      spdlog::error("{}: the HTTP/2 session's {} ended by an unexpected exception", name, what);
    }
  };
}

std::string describe(const error_code& error, const char* direction) {
  if (error == asio::error::eof) return "the peer closed the connection";
  return str_cat("connection ", direction, " error: ", error.message());
}

}  // namespace

std::shared_ptr<H2Session> H2Session::start_server(StreamPtr connection, H2SessionOptions options,
                                                   RequestHandler on_request) {
  std::shared_ptr<H2Session> session(
      new H2Session(std::move(connection), h2::Role::kServer, std::move(options), std::move(on_request)));
  return launch(std::move(session));
}

std::shared_ptr<H2Session> H2Session::start_client(StreamPtr connection, H2SessionOptions options) {
  std::shared_ptr<H2Session> session(new H2Session(std::move(connection), h2::Role::kClient, std::move(options), {}));
  return launch(std::move(session));
}

std::shared_ptr<H2Session> H2Session::start_upgraded_server(StreamPtr connection, H2SessionOptions options,
                                                            RequestHandler on_request,
                                                            std::span<const uint8_t> settings, h2::Head request,
                                                            bool head_request) {
  std::shared_ptr<H2Session> session(
      new H2Session(std::move(connection), h2::Role::kServer, std::move(options), std::move(on_request)));
  if (int rv = session->connection_->upgrade(settings, std::move(request), head_request); rv != 0) {
    session->end(asio::error::connection_reset, str_cat("bad h2c upgrade: ", nghttp2_strerror(rv)), true);
    return nullptr;
  }
  launch(session);
  session->dispatch_requests();
  return session;
}

std::shared_ptr<H2Session> H2Session::launch(std::shared_ptr<H2Session> session) {
  asio::co_spawn(session->executor_, read_loop(session), log_unexpected(session->options_.name, "reader"));
  asio::co_spawn(session->executor_, write_loop(session), log_unexpected(session->options_.name, "writer"));
  asio::co_spawn(session->executor_, watch_loop(session), log_unexpected(session->options_.name, "watch"));
  return session;
}

H2Session::H2Session(StreamPtr connection, h2::Role role, H2SessionOptions options, RequestHandler on_request)
    : transport_(std::move(connection)),
      executor_(transport_->get_executor()),
      role_(role),
      options_(std::move(options)),
      on_request_(std::move(on_request)),
      connection_(h2::Connection::create(role, options_.limits, this)),
      remote_(transport_->remote_address()),
      local_(transport_->local_address()),
      writer_event_(executor_, Clock::time_point::max()),
      watch_timer_(executor_),
      idle_since_(Clock::now()),
      started_(Clock::now()) {
  if (!connection_) throw std::bad_alloc();
}

H2Session::~H2Session() = default;

bool H2Session::can_open() const { return !closed_ && role_ == h2::Role::kClient && connection_->can_submit_request(); }

void H2Session::close() { end(asio::error::operation_aborted, "closed by us", false); }

void H2Session::shutdown(const std::string& reason) {
  if (closed_) return;
  goaway_reason_ = reason;
  connection_->shutdown();
  wake_writer();
}

void H2Session::on_end(std::function<void()> done) {
  if (closed_) return done();
  on_end_.push_back(std::move(done));
}

asio::awaitable<Result<std::unique_ptr<H2Stream>>> H2Session::open(const h2::Head& request,
                                                                   std::chrono::nanoseconds timeout) {
  if (closed_) co_return close_error_ ? close_error_ : error_code(asio::error::connection_reset);
  if (!connection_->can_submit_request()) co_return asio::error::connection_aborted;  // GOAWAY or ids used up
  int error = 0;
  h2::StreamState* state = connection_->submit_request(request, error);
  if (state == nullptr) {
    spdlog::warn("{}: cannot send an HTTP/2 request to {}: {}", options_.name, remote_, nghttp2_strerror(error));
    co_return asio::error::invalid_argument;
  }
  ++streams_seen_;
  auto stream = std::make_unique<H2Stream>(shared_from_this(), state);
  wake_writer();
  asio::steady_timer timer(executor_, timeout);
  auto outcome = co_await (stream->async_wait_head(kUseTuple) || timer.async_wait(kUseTuple));
  if (outcome.index() == 1) co_return asio::error::timed_out;  // the stream's close resets it
  if (auto [head_error] = std::get<0>(outcome); head_error) co_return head_error;
  co_return std::move(stream);
}

asio::awaitable<void> H2Session::read_loop(std::shared_ptr<H2Session> self) {
  H2Session& s = *self;
  while (!s.closed_) {
    // A buffer is taken only once bytes are there, so an idle session holds none.
    auto [wait_error] = co_await s.transport_->async_wait_readable(kUseTuple);
    if (s.closed_) break;
    if (wait_error) {
      s.end(asio::error::connection_reset, describe(wait_error, "read"), false);
      break;
    }
    auto buffer = StreamBuffers::this_thread().take();
    auto [error, n] =
        co_await s.transport_->async_read_some(asio::buffer(buffer.get(), StreamBuffers::kBufferSize), kUseTuple);
    int rv = 0;
    if (!s.closed_ && !error) {
      s.bytes_received_ += n;
      rv = s.connection_->receive({buffer.get(), n});
    }
    StreamBuffers::this_thread().give_back(std::move(buffer));
    if (s.closed_) break;
    if (error) {
      s.end(asio::error::connection_reset, describe(error, "read"), false);
      break;
    }
    if (rv != 0) {
      s.end(asio::error::connection_reset, str_cat("malformed HTTP/2 input: ", nghttp2_strerror(rv)), true);
      break;
    }
    s.dispatch_requests();
    s.deliver_events();
    s.wake_writer();
    // After a GOAWAY nghttp2 reads no more; the writer flushes what is due and ends the session.
    if (!s.connection_->wants_read()) break;
  }
}

asio::awaitable<void> H2Session::write_loop(std::shared_ptr<H2Session> self) {
  H2Session& s = *self;
  while (!s.closed_) {
    if (s.goaway_due_) {
      s.goaway_due_ = false;
      if (s.connection_->stream_count() == 0) s.connection_->terminate(h2::kNoError);
    }
    s.out_.clear();
    int rv = s.connection_->take_output(s.out_, kWriteBatch);
    s.deliver_events();
    if (s.closed_) break;
    if (rv != 0) {
      s.end(asio::error::connection_reset, str_cat("nghttp2: ", nghttp2_strerror(rv)), true);
      break;
    }
    if (!s.out_.empty()) {
      auto [error, n] = co_await asio::async_write(*s.transport_, asio::buffer(s.out_), kUseTuple);
      if (s.closed_) break;
      if (error) {
        s.end(asio::error::connection_reset, describe(error, "write"), false);
        break;
      }
      s.bytes_sent_ += n;
      continue;
    }
    if (!s.connection_->wants_read() && !s.connection_->wants_write()) {
      const std::string& why = s.connection_->protocol_error();
      if (!why.empty()) {
        s.end(asio::error::connection_reset, str_cat("protocol error: ", common::text_escaped(why)), true);
      } else {
        s.end(asio::error::connection_reset, s.goaway_reason_.empty() ? "GOAWAY" : s.goaway_reason_, false);
      }
      break;
    }
    if (s.out_.capacity() > kKeptWriteBuffer) std::vector<uint8_t>().swap(s.out_);
    co_await s.writer_event_.async_wait(kUseTuple);
  }
}

asio::awaitable<void> H2Session::watch_loop(std::shared_ptr<H2Session> self) {
  H2Session& s = *self;
  s.watch_timer_.expires_after(s.options_.settings_timeout);
  co_await s.watch_timer_.async_wait(kUseTuple);
  if (s.closed_) co_return;
  if (!s.connection_->settings_received()) {
    s.end(asio::error::timed_out,
          str_cat("no HTTP/2 SETTINGS from the peer within ", common::format_duration(s.options_.settings_timeout)),
          true);
    co_return;
  }
  const auto idle = s.options_.idle_timeout;
  if (idle.count() <= 0) co_return;
  while (!s.closed_) {
    bool unused = s.connection_->stream_count() == 0;
    s.watch_timer_.expires_at(unused ? s.idle_since_ + std::chrono::duration_cast<Clock::duration>(idle)
                                     : Clock::now() + std::chrono::duration_cast<Clock::duration>(idle));
    co_await s.watch_timer_.async_wait(kUseTuple);
    if (s.closed_) co_return;
    if (s.connection_->stream_count() == 0 && Clock::now() - s.idle_since_ >= idle) {
      s.goaway_reason_ = str_cat("no stream for ", common::format_duration(idle));
      s.goaway_due_ = true;
      s.wake_writer();
      co_return;
    }
  }
}

void H2Session::on_stream_event(h2::StreamState& stream) {
  if (stream.user == nullptr || stream.event_pending) return;
  stream.event_pending = true;
  events_.push_back(stream.id);
}

void H2Session::on_idle() {
  idle_since_ = Clock::now();
  if (options_.single_use && !closed_) {
    goaway_reason_ = "its stream ended";
    goaway_due_ = true;
    wake_writer();
  }
}

void H2Session::deliver_events() {
  if (events_.empty()) return;
  std::vector<int32_t> ids;
  ids.swap(events_);
  for (int32_t id : ids) {
    h2::StreamState* state = connection_->find(id);
    if (state == nullptr) continue;
    state->event_pending = false;
    if (state->user != nullptr) static_cast<H2Stream*>(state->user)->on_event();
  }
}

void H2Session::dispatch_requests() {
  while (!closed_) {
    h2::StreamState* state = connection_->take_request();
    if (state == nullptr) break;
    ++streams_seen_;
    on_request_(std::make_unique<H2Stream>(shared_from_this(), state));
  }
}

void H2Session::end(error_code stream_error, const std::string& reason, bool warn) {
  if (closed_) return;
  closed_ = true;
  close_error_ = stream_error;
  transport_->close();
  writer_event_.cancel();
  watch_timer_.cancel();
  events_.clear();
  connection_->for_each_stream([&](h2::StreamState& state) {
    if (state.user != nullptr) static_cast<H2Stream*>(state.user)->on_session_end(stream_error);
  });
  auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started_).count();
  auto level = warn ? spdlog::level::warn : spdlog::level::info;
  spdlog::log(level, "{}: HTTP/2 session with {} ended after {} ms: {}; {} streams, {} bytes in, {} bytes out",
              options_.name, remote_, elapsed, reason, streams_seen_, bytes_received_, bytes_sent_);
  auto callbacks = std::move(on_end_);
  on_end_.clear();
  for (auto& done : callbacks) done();
}

}  // namespace strait::agent
