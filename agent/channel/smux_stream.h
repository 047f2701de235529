#pragma once

// Internal to the smux session (agent/channel/smux_session.cc): one multiplexed stream.
// Users see it only as a Stream returned by SmuxSession.

#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <vector>

#include <boost/asio/cancellation_signal.hpp>

#include "agent/channel/smux_session.h"

namespace strait::agent {

class SmuxStream final : public Stream {
 public:
  SmuxStream(std::shared_ptr<SmuxSession> session, uint32_t id, uint64_t serial);
  ~SmuxStream() override;

  executor_type get_executor() override;
  // Sends FIN after the data written so far; reads go on.
  void shutdown_send() override;
  // Sends FIN if not sent yet and forgets the stream: what the peer sends for it later is
  // dropped. Pending operations complete with operation_aborted.
  void close() override;
  std::string remote_address() const override;
  std::string local_address() const override;

  // Called by the session, on its executor.
  uint32_t id() const { return id_; }
  uint64_t serial() const { return serial_; }
  size_t queued() const { return queued_; }
  uint32_t written() const { return written_; }
  void on_data(std::vector<uint8_t> data);
  void on_fin();
  void on_update(const smux::WindowUpdate& update);
  // The session ended: pending operations complete with `error`.
  void on_session_end(error_code error);
  // Queue room or window may have opened: retries a pending write.
  void on_room();
  void on_flushed(size_t bytes) { queued_ -= bytes; }
  // The UPD the writer sends now (version 2), or nullopt when none is owed any more.
  std::optional<smux::WindowUpdate> take_update();

 protected:
  void do_read_some(asio::mutable_buffer buffer, common::IoHandler handler) override;
  void do_write_some(asio::const_buffer buffer, common::IoHandler handler) override;
  void do_wait_readable(common::WaitHandler handler) override;

 private:
  enum class Op { kRead, kWrite, kWait };
  // Installed in a pending operation's cancellation slot. It never outlives the stream's
  // interest: a completed operation clears its slot, a cancelled one disarms it.
  struct Canceller {
    Canceller(SmuxStream* target, Op kind) : stream(target), op(kind) {}
    SmuxStream* stream;
    Op op;
    void operator()(asio::cancellation_type type);
  };
  template <typename Handler, typename Buffer>
  struct Pending {
    Buffer buffer;
    Handler handler;
    asio::cancellation_slot slot;
    Canceller* canceller = nullptr;
  };
  using PendingRead = Pending<common::IoHandler, asio::mutable_buffer>;
  using PendingWrite = Pending<common::IoHandler, asio::const_buffer>;
  using PendingWait = Pending<common::WaitHandler, int>;

  template <typename P>
  void arm(std::optional<P>& pending, Op op);
  void complete(std::optional<PendingRead>& pending, error_code error, size_t n);
  void complete(std::optional<PendingWait>& pending, error_code error);
  void complete_write(error_code error, size_t n);
  void cancel(Op op);
  void post(common::IoHandler handler, error_code error, size_t n);

  // Moves buffered bytes into `buffer`, returning tokens to the session and owing a UPD.
  size_t take(asio::mutable_buffer buffer);
  // Queues what the window and the queue limits allow of `buffer`; 0 when it must wait.
  size_t try_write(asio::const_buffer buffer);
  error_code read_error() const;
  error_code write_error() const;
  int version() const;

  std::shared_ptr<SmuxSession> session_;
  const uint32_t id_;
  const uint64_t serial_;
  bool closed_ = false;
  bool fin_sent_ = false;
  bool remote_fin_ = false;
  error_code session_error_;

  // Received data: one chunk per PSH frame, allocated when it arrives, freed when read.
  std::list<std::vector<uint8_t>> chunks_;
  size_t chunk_offset_ = 0;
  size_t buffered_ = 0;

  // Version 2 windows, smux's counters mod 2^32.
  uint32_t read_total_ = 0;
  uint32_t read_since_update_ = 0;
  bool update_owed_ = false;
  uint32_t written_ = 0;
  uint32_t peer_consumed_ = 0;
  uint32_t peer_window_ = smux::kInitialPeerWindow;

  size_t queued_ = 0;  // payload bytes in the session's write queue
  bool waiting_room_ = false;

  std::optional<PendingRead> read_;
  std::optional<PendingWrite> write_;
  std::optional<PendingWait> wait_;
};

}  // namespace strait::agent
