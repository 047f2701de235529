#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <vector>

namespace strait::agent {

// A pipe for splice(2): socket -> pipe -> socket, bytes never enter user space. Owns its
// two descriptors.
class SplicePipe {
 public:
  SplicePipe(int read_end, int write_end, size_t capacity) : fds_{read_end, write_end}, capacity_(capacity) {}
  SplicePipe(SplicePipe&& other) noexcept : fds_{other.fds_[0], other.fds_[1]}, capacity_(other.capacity_) {
    other.fds_[0] = other.fds_[1] = -1;
  }
  SplicePipe& operator=(SplicePipe&& other) noexcept;
  SplicePipe(const SplicePipe&) = delete;
  SplicePipe& operator=(const SplicePipe&) = delete;
  ~SplicePipe();

  int read_end() const { return fds_[0]; }
  int write_end() const { return fds_[1]; }
  size_t capacity() const { return capacity_; }

 private:
  friend class PipePool;
  int fds_[2];
  size_t capacity_;
};

// The pipes of one worker thread, as haproxy's get_pipe/put_pipe/maxpipes: a relay takes
// a pipe when data arrives and gives it back once the pipe is empty, so a connection holds
// pipe descriptors only while bytes are in flight, and the worker never holds more than
// `max_pipes`. When none can be had (the budget is spent, the kernel refuses a pipe, or
// the user's pipe-page budget would make it a one-page pipe), take() says so and the relay
// copies through user space instead: a working connection never fails for want of a pipe.
// Pipes keep the kernel's size (64 KiB, pipe(7)) unless told otherwise; a bulk stream that
// fills its pipe may have it grown to `grown_size`, for at most `max_grown` pipes a worker,
// so that a few hot streams move more per system call while the many stay small and far
// below the user's pipe-page budget. Used by one thread only; no locks.
class PipePool {
 public:
  struct Settings {
    size_t max_pipes = 256;  // per worker
    size_t pipe_size = 0;    // bytes; 0 keeps the kernel's default (64 KiB) and lets bulk pipes grow
    size_t max_grown = 16;   // per worker
    size_t grown_size = 256 * 1024;
  };

  explicit PipePool(Settings settings) : settings_(settings) {}
  PipePool(PipePool&&) = default;
  PipePool& operator=(PipePool&&) = default;

  // Settings for every worker's pool; set before the workers start.
  static void configure(Settings settings);
  static Settings configured();
  // This thread's pool, created with the configured settings on first use.
  static PipePool& this_thread();

  std::optional<SplicePipe> take();
  // Takes back a pipe holding no bytes.
  void give_back(SplicePipe pipe);
  // Closes a taken pipe that still holds bytes (its connection failed).
  void discard(SplicePipe pipe);
  // Grows a taken pipe of a bulk stream to grown_size if the budget allows; false if not.
  bool grow(SplicePipe& pipe);

  size_t in_use() const { return in_use_; }
  size_t idle() const { return idle_.size(); }
  size_t misses() const { return misses_; }
  size_t grown() const { return grown_; }

 private:
  std::optional<SplicePipe> open_pipe();

  Settings settings_;
  std::vector<SplicePipe> idle_;
  size_t in_use_ = 0;
  size_t misses_ = 0;
  size_t grown_ = 0;
  // After the kernel refused a pipe, no new one is tried until then (fd or page exhaustion
  // does not clear in microseconds; retrying on every chunk would cost a syscall each).
  std::chrono::steady_clock::time_point retry_after_{};
  bool warned_ = false;
};

}  // namespace strait::agent
