#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "agent/channel/channel.h"
#include "agent/protocol/smux.h"

namespace strait::agent {

class SmuxStream;

// One xtaci/smux session (versions 1 and 2, wire-compatible with Go smux and hence GOST's
// mux transports) over any byte stream. Streams opened here or by the peer are Streams.
//
// Threading: everything runs on the connection's executor, which must be one thread (a
// worker's io_context); nothing locks and nothing on the data path blocks. One reader
// coroutine reads frames, one writer coroutine owns the connection's write side, one
// keepalive coroutine sends NOP and watches for silence.
//
// Lifetime: the session lives until close() or until it fails (the connection ends, a
// protocol error, a keepalive timeout), whoever holds the pointer; each stream keeps it
// alive too. Ending the session completes every pending stream operation: with
// operation_aborted when the application closed it, connection_reset when it failed.
//
// Bounds: received data waiting in streams is held to max_receive_buffer (plus one frame) by
// pausing the reader; each stream queues at most two frames of data for the writer and the
// session at most 8 frames (at least 256 KiB); max_streams open streams; kAcceptBacklog
// streams waiting for accept_stream().
class SmuxSession : public std::enable_shared_from_this<SmuxSession> {
 public:
  // Starts a session over `connection` (client: opens odd stream ids, server: even).
  // `config` must pass smux::validate (else std::invalid_argument: a programmer error).
  static std::shared_ptr<SmuxSession> start(StreamPtr connection, bool client, smux::Config config);

  SmuxSession(const SmuxSession&) = delete;
  SmuxSession& operator=(const SmuxSession&) = delete;
  ~SmuxSession();

  // Opens a stream (sends SYN). Fails when the session has ended, max_streams are open or
  // stream ids are used up.
  asio::awaitable<Result<StreamPtr>> open_stream();
  // The next stream the peer opened; waits. Fails once the session has ended; per-operation
  // cancellation (`co_await (accept_stream() || timer)`) completes it with operation_aborted.
  asio::awaitable<Result<StreamPtr>> accept_stream();
  // Ends the session at once: the connection is closed, queued frames are dropped.
  void close();
  bool closed() const { return closed_; }
  // Open streams, including those waiting for accept_stream().
  size_t stream_count() const { return streams_.size(); }
  // Received bytes waiting in streams for the application.
  size_t buffered_bytes() const { return buffered_; }
  const smux::Config& config() const { return config_; }
  asio::any_io_executor get_executor() const { return executor_; }
  // The connection's addresses, as they were when the session started.
  const std::string& remote_address() const { return remote_; }
  const std::string& local_address() const { return local_; }

 private:
  friend class SmuxStream;
  struct Owner {  // payload bytes of one stream in a write batch
    uint32_t id;
    uint64_t serial;
    size_t bytes;
  };

  SmuxSession(StreamPtr connection, bool client, smux::Config config);

  static asio::awaitable<void> read_loop(std::shared_ptr<SmuxSession> self);
  static asio::awaitable<void> write_loop(std::shared_ptr<SmuxSession> self);
  static asio::awaitable<void> keepalive_loop(std::shared_ptr<SmuxSession> self);
  // Reads the rest of one frame and acts on it; false when the session ended.
  asio::awaitable<bool> handle_frame(const smux::FrameHeader& header);
  void on_syn(uint32_t id);
  void refuse(uint32_t id, const char* why);
  SmuxStream* find(uint32_t id) const;
  // The one close path: logs one line, closes the connection, completes every stream op.
  void end(error_code stream_error, const std::string& reason, bool warn);
  void append_header(std::vector<uint8_t>& out, uint8_t command, uint32_t id, uint16_t length = 0);
  void wake_writer();

  // Used by SmuxStream.
  size_t write_room(const SmuxStream& stream) const;
  void queue_data(const SmuxStream& stream, const uint8_t* data, size_t size);
  void queue_fin(uint32_t id);
  void queue_update(uint32_t id);
  void wait_for_room(uint32_t id);
  void release(size_t bytes);
  void forget(const SmuxStream& stream);
  size_t stream_queue_limit() const { return 2 * size_t{config_.max_frame_size}; }

  StreamPtr connection_;
  asio::any_io_executor executor_;
  const smux::Config config_;
  const size_t session_queue_limit_;
  const std::string remote_;
  const std::string local_;
  uint32_t next_id_;
  uint64_t next_serial_ = 0;
  bool ids_exhausted_ = false;
  bool closed_ = false;
  error_code close_error_;

  std::unordered_map<uint32_t, SmuxStream*> streams_;
  std::deque<StreamPtr> accept_backlog_;
  asio::steady_timer accept_event_;  // used as an event: cancel() wakes accept_stream()

  // Reader state.
  smux::HeaderBytes header_{};
  std::array<uint8_t, smux::kUpdateSize> update_{};
  size_t buffered_ = 0;
  bool receive_paused_ = false;
  bool frame_arrived_ = false;  // since the last keepalive check
  asio::steady_timer budget_event_;

  // Writer state: control frames go out before data; data frames (PSH, FIN) keep their order.
  std::vector<uint8_t> control_;
  std::vector<uint32_t> updates_due_;  // v2 streams owing a UPD, encoded when written
  std::vector<uint8_t> data_;
  std::vector<Owner> data_owners_;
  std::vector<uint8_t> out_control_;
  std::vector<uint8_t> out_data_;
  std::vector<Owner> out_owners_;
  std::vector<uint32_t> room_waiters_;
  bool nop_queued_ = false;
  size_t refusals_queued_ = 0;
  asio::steady_timer writer_event_;
  asio::steady_timer keepalive_timer_;

  // For the summary line.
  const asio::steady_timer::clock_type::time_point started_;
  uint64_t bytes_received_ = 0;  // PSH data, including what was dropped
  uint64_t bytes_dropped_ = 0;   // PSH data for streams we closed or never had
  uint64_t bytes_sent_ = 0;      // everything written to the connection
  size_t opened_ = 0;
  size_t accepted_ = 0;
  size_t refused_ = 0;
  bool refusal_logged_ = false;
};

}  // namespace strait::agent
