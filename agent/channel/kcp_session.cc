#include "agent/channel/kcp_session.h"

#include <algorithm>

#include <boost/asio/post.hpp>

namespace strait::agent {
namespace {

// kcp-go compares its 32-bit millisecond clock by signed difference.
int32_t diff(uint32_t later, uint32_t earlier) { return static_cast<int32_t>(later - earlier); }

uint32_t to_ms(std::chrono::nanoseconds duration) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(duration).count();
  return static_cast<uint32_t>(std::clamp<int64_t>(ms, 1, INT32_MAX));
}

uint16_t load16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

}  // namespace

// ---- KcpTimers ----

KcpTimers::KcpTimers(asio::any_io_executor executor) : timer_(executor), epoch_(Clock::now()) {}

uint32_t KcpTimers::now_ms() const {
  return static_cast<uint32_t>(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - epoch_).count());
}

void KcpTimers::add(KcpSession& session) {
  session.timer_id_ = next_id_++;
  sessions_.emplace(session.timer_id_, &session);
}

void KcpTimers::remove(KcpSession& session) {
  sessions_.erase(session.timer_id_);
  session.scheduled_ms_.reset();
}

void KcpTimers::schedule(KcpSession& session, uint32_t at_ms) {
  if (!sessions_.contains(session.timer_id_)) return;
  if (session.scheduled_ms_ && diff(at_ms, *session.scheduled_ms_) >= 0) return;
  session.scheduled_ms_ = at_ms;
  auto at = Clock::now() + std::chrono::milliseconds(diff(at_ms, now_ms()));
  heap_.push({at, session.timer_id_, at_ms});
  // Entries superseded by earlier ones wait in the heap until their time; rebuild it when
  // they outnumber the sessions, so it stays bounded by them.
  if (heap_.size() > 4 * sessions_.size() + 64) {
    decltype(heap_) fresh;
    while (!heap_.empty()) {
      Entry entry = heap_.top();
      heap_.pop();
      auto it = sessions_.find(entry.id);
      if (it != sessions_.end() && it->second->scheduled_ms_ == entry.at_ms) fresh.push(entry);
    }
    heap_.swap(fresh);
  }
  arm();
}

void KcpTimers::arm() {
  if (heap_.empty()) {
    if (armed_at_) timer_.cancel();
    armed_at_.reset();
    return;
  }
  auto at = heap_.top().at;
  if (armed_at_ && *armed_at_ <= at) return;
  armed_at_ = at;
  timer_.expires_at(at);
  timer_.async_wait([weak = weak_from_this()](error_code error) {
    if (error) return;  // re-armed earlier, or closing
    if (auto self = weak.lock()) {
      self->armed_at_.reset();
      self->fire();
    }
  });
}

void KcpTimers::fire() {
  const auto now = Clock::now();
  const uint32_t now_ms = this->now_ms();
  while (!heap_.empty() && heap_.top().at <= now) {
    Entry entry = heap_.top();
    heap_.pop();
    auto it = sessions_.find(entry.id);
    if (it == sessions_.end() || it->second->scheduled_ms_ != entry.at_ms) continue;
    auto session = it->second->shared_from_this();
    session->scheduled_ms_.reset();
    session->on_timer(now_ms);
  }
  arm();
}

// ---- first packets ----

std::optional<uint32_t> first_packet_conversation(std::span<uint8_t> datagram, kcp::PacketCrypt* crypt, bool fec) {
  if (crypt != nullptr && !crypt->open(datagram)) return std::nullopt;
  auto body = datagram.subspan(crypt != nullptr ? kcp::kCryptHeaderSize : 0);
  if (fec) {
    if (body.size() < kcp::kFecHeaderSize + kcp::kFecSizeFieldSize || load16(body.data() + 4) != kcp::kFecData) {
      return std::nullopt;
    }
    body = body.subspan(kcp::kFecHeaderSize + kcp::kFecSizeFieldSize);
  }
  auto header = kcp::decode_segment_header(body);
  if (!header || header->command < kcp::command::kPush || header->command > kcp::command::kWindowTell ||
      header->length > body.size() - kcp::kSegmentHeaderSize) {
    return std::nullopt;
  }
  return header->conversation;
}

// ---- KcpSession ----

class KcpStream final : public Stream {
 public:
  explicit KcpStream(std::shared_ptr<KcpSession> session) : session_(std::move(session)) {}
  ~KcpStream() override { session_->close(); }
  executor_type get_executor() override { return session_->get_executor(); }
  // KCP has no half close; smux above it carries FIN.
  void shutdown_send() override {}
  void close() override { session_->close(); }
  std::string remote_address() const override { return session_->remote_address(); }
  std::string local_address() const override { return session_->local_address(); }

 protected:
  void do_read_some(asio::mutable_buffer buffer, common::IoHandler handler) override {
    session_->read(buffer, std::move(handler));
  }
  void do_write_some(asio::const_buffer buffer, common::IoHandler handler) override {
    session_->write(buffer, std::move(handler));
  }
  void do_wait_readable(common::WaitHandler handler) override { session_->wait_readable(std::move(handler)); }

 private:
  std::shared_ptr<KcpSession> session_;
};

std::shared_ptr<KcpSession> KcpSession::create(std::shared_ptr<KcpTimers> timers, const KcpConfig& config,
                                               std::shared_ptr<kcp::PacketCrypt> crypt, uint32_t conversation,
                                               Sink sink, std::string remote, std::string local) {
  std::shared_ptr<KcpSession> session(new KcpSession(std::move(timers), config, std::move(crypt), conversation,
                                                     std::move(sink), std::move(remote), std::move(local)));
  session->settle(session->started_ms_);
  return session;
}

KcpSession::KcpSession(std::shared_ptr<KcpTimers> timers, const KcpConfig& config,
                       std::shared_ptr<kcp::PacketCrypt> crypt, uint32_t conversation, Sink sink, std::string remote,
                       std::string local)
    : timers_(std::move(timers)),
      executor_(timers_->get_executor()),
      crypt_(std::move(crypt)),
      crypt_size_(crypt_ ? kcp::kCryptHeaderSize : 0),
      sink_(std::move(sink)),
      control_(conversation, config.tuning(), [this](std::span<uint8_t> packet) { output(packet); }),
      remote_(std::move(remote)),
      local_(std::move(local)),
      idle_limit_ms_(to_ms(3 * std::chrono::seconds(config.keepalive_seconds))),
      handshake_limit_ms_(to_ms(config.handshake_timeout)),
      started_ms_(timers_->now_ms()) {
  if (config.has_fec()) {
    fec_encoder_.emplace(config.data_shards, config.parity_shards, crypt_size_);
    fec_decoder_.emplace(config.data_shards, config.parity_shards);
  }
  timers_->add(*this);
}

KcpSession::~KcpSession() { timers_->remove(*this); }

StreamPtr KcpSession::stream() { return std::make_unique<KcpStream>(shared_from_this()); }

void KcpSession::output(std::span<uint8_t> packet) {
  if (ended_ || !sink_) return;
  if (fec_encoder_) {
    // Parity for every group, also of sparse traffic (kcp-go skips it when the gap between
    // packets reaches the RTO): on a lossy link the lone last packets are the ones worth saving.
    auto parity = fec_encoder_->encode(packet.subspan(crypt_size_), timers_->now_ms(), UINT32_MAX);
    if (crypt_) crypt_->seal(packet);
    sink_(packet);
    for (auto shard : parity) {
      if (crypt_) crypt_->seal(shard);
      sink_(shard);
    }
    return;
  }
  if (crypt_) crypt_->seal(packet);
  sink_(packet);
}

bool KcpSession::on_datagram(std::span<uint8_t> datagram) {
  ++counters_.datagrams;
  if (ended_) return false;
  if (crypt_ && !crypt_->open(datagram)) {
    ++counters_.bad_crypt;
    return false;
  }
  auto body = std::span<const uint8_t>(datagram).subspan(crypt_size_);
  const uint32_t now = timers_->now_ms();
  const uint64_t bad_before = counters_.bad_kcp;
  if (fec_decoder_) {
    const auto& stats = fec_decoder_->stats();
    const uint64_t malformed = stats.malformed + stats.mismatched;
    const bool data_shard = body.size() >= kcp::kFecHeaderSize && load16(body.data() + 4) == kcp::kFecData;
    auto pieces = fec_decoder_->decode(body);
    if (stats.malformed + stats.mismatched != malformed) {
      ++counters_.bad_fec;
      return false;
    }
    for (size_t i = 0; i < pieces.size(); ++i) {
      const bool own = i == 0 && data_shard;
      if (!own) ++counters_.recovered;
      feed(pieces[i], own ? kcp::PacketOrigin::kWire : kcp::PacketOrigin::kRecovered, now);
    }
  } else {
    feed(body, kcp::PacketOrigin::kWire, now);
  }
  settle(now);
  return counters_.bad_kcp == bad_before;
}

void KcpSession::feed(std::span<const uint8_t> segments, kcp::PacketOrigin origin, uint32_t now) {
  if (control_.input(segments, now, origin) != kcp::InputError::kNone) {
    ++counters_.bad_kcp;
    return;
  }
  heard_ = true;
  last_valid_ms_ = now;
}

void KcpSession::on_timer(uint32_t now) {
  if (ended_) return;
  control_.update(now);
  if (control_.dead()) return end(asio::error::timed_out);  // a segment went unacknowledged 20 times
  if (!heard_ && diff(now, started_ms_) >= static_cast<int32_t>(handshake_limit_ms_)) {
    return end(asio::error::timed_out);
  }
  if (heard_ && diff(now, last_valid_ms_) >= static_cast<int32_t>(idle_limit_ms_)) return end(asio::error::timed_out);
  settle(now);
}

void KcpSession::settle(uint32_t now) {
  if (ended_) return;
  if (control_.dead()) return end(asio::error::timed_out);
  if (read_ && control_.readable_bytes() > 0) {
    size_t n = take(read_->buffer, now);
    complete(read_, error_code{}, n);
  }
  if (wait_ && control_.readable_bytes() > 0) complete(wait_, error_code{});
  if (write_ && control_.writable()) {
    if (size_t n = put(write_->buffer, now); n > 0) complete(write_, error_code{}, n);
  }
  uint32_t next = control_.next_update_ms(now);
  // An idle Control asks for a wake-up every 5 s; the idle or handshake limit may come sooner.
  uint32_t give_up = heard_ ? last_valid_ms_ + idle_limit_ms_ : started_ms_ + handshake_limit_ms_;
  if (diff(give_up, next) < 0) next = give_up;
  timers_->schedule(*this, next);
}

size_t KcpSession::take(asio::mutable_buffer buffer, uint32_t now) {
  size_t n = control_.receive(std::span(static_cast<uint8_t*>(buffer.data()), buffer.size()));
  counters_.bytes_read += n;
  // Reading may reopen a full window, which the peer must be told about.
  timers_->schedule(*this, control_.next_update_ms(now));
  return n;
}

size_t KcpSession::put(asio::const_buffer buffer, uint32_t now) {
  size_t n = control_.send(std::span(static_cast<const uint8_t*>(buffer.data()), buffer.size()));
  if (n == 0) return 0;
  counters_.bytes_written += n;
  control_.flush(now);  // kcp-go without write delay: on the wire at once
  timers_->schedule(*this, control_.next_update_ms(now));
  return n;
}

void KcpSession::read(asio::mutable_buffer buffer, common::IoHandler handler) {
  auto post = [this](common::IoHandler done, error_code error, size_t n) {
    asio::post(executor_, [done = std::move(done), error, n]() mutable { std::move(done)(error, n); });
  };
  if (read_) return post(std::move(handler), asio::error::in_progress, 0);
  if (ended_) return post(std::move(handler), end_error_, 0);
  if (buffer.size() == 0) return post(std::move(handler), {}, 0);
  if (control_.readable_bytes() > 0) return post(std::move(handler), {}, take(buffer, timers_->now_ms()));
  read_.emplace(PendingRead{buffer, std::move(handler), {}});
  arm(read_, Op::kRead);
}

void KcpSession::write(asio::const_buffer buffer, common::IoHandler handler) {
  auto post = [this](common::IoHandler done, error_code error, size_t n) {
    asio::post(executor_, [done = std::move(done), error, n]() mutable { std::move(done)(error, n); });
  };
  if (write_) return post(std::move(handler), asio::error::in_progress, 0);
  if (ended_) return post(std::move(handler), end_error_, 0);
  if (buffer.size() == 0) return post(std::move(handler), {}, 0);
  if (size_t n = put(buffer, timers_->now_ms()); n > 0) return post(std::move(handler), {}, n);
  write_.emplace(PendingWrite{buffer, std::move(handler), {}});
  arm(write_, Op::kWrite);
}

void KcpSession::wait_readable(common::WaitHandler handler) {
  if (wait_ || ended_ || control_.readable_bytes() > 0) {
    error_code error = wait_ ? error_code(asio::error::in_progress) : error_code();
    asio::post(executor_, [handler = std::move(handler), error]() mutable { std::move(handler)(error); });
    return;
  }
  wait_.emplace(PendingWait{0, std::move(handler), {}});
  arm(wait_, Op::kWait);
}

template <typename P>
void KcpSession::arm(std::optional<P>& pending, Op op) {
  auto slot = asio::get_associated_cancellation_slot(pending->handler);
  if (!slot.is_connected()) return;
  pending->slot = slot;
  slot.assign([weak = weak_from_this(), op](asio::cancellation_type type) {
    if (type == asio::cancellation_type::none) return;
    if (auto self = weak.lock()) self->cancel(op);
  });
}

void KcpSession::cancel(Op op) {
  // Running inside the slot's handler: forget the slot rather than clear it.
  switch (op) {
    case Op::kRead:
      if (!read_) return;
      read_->slot = {};
      return complete(read_, error_code(asio::error::operation_aborted), size_t{0});
    case Op::kWrite:
      if (!write_) return;
      write_->slot = {};
      return complete(write_, error_code(asio::error::operation_aborted), size_t{0});
    case Op::kWait:
      if (!wait_) return;
      wait_->slot = {};
      return complete(wait_, error_code(asio::error::operation_aborted));
  }
}

template <typename P, typename... Args>
void KcpSession::complete(std::optional<P>& pending, Args... args) {
  P done = std::move(*pending);
  pending.reset();
  if (done.slot.is_connected()) done.slot.clear();
  asio::post(executor_, [handler = std::move(done.handler), args...]() mutable { std::move(handler)(args...); });
}

void KcpSession::close() {
  if (ended_) return;
  control_.flush(timers_->now_ms());  // what is queued goes out once, as kcp-go's Close
  end(asio::error::operation_aborted);
}

void KcpSession::end(error_code error) {
  if (ended_) return;
  ended_ = true;
  end_error_ = error;
  if (read_) complete(read_, error, size_t{0});
  if (write_) complete(write_, error, size_t{0});
  if (wait_) complete(wait_, error_code{});
  timers_->remove(*this);
  sink_ = nullptr;
  // Posted: the owner may drop its reference, and we may be inside its receive loop.
  if (auto callback = std::move(on_end_)) asio::post(executor_, std::move(callback));
}

}  // namespace strait::agent
