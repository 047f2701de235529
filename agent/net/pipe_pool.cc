#include "agent/net/pipe_pool.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include <spdlog/spdlog.h>

namespace strait::agent {
namespace {

// The kernel's default pipe capacity (pipe(7)); a pipe created past the user's
// pipe-user-pages-soft gets a single page instead.
constexpr size_t kDefaultPipeCapacity = 64 * 1024;
constexpr auto kRetryAfterRefusal = std::chrono::seconds(1);

PipePool::Settings& settings_store() {
  static PipePool::Settings settings;
  return settings;
}

}  // namespace

SplicePipe& SplicePipe::operator=(SplicePipe&& other) noexcept {
  if (this != &other) {
    this->~SplicePipe();
    fds_[0] = other.fds_[0];
    fds_[1] = other.fds_[1];
    other.fds_[0] = other.fds_[1] = -1;
  }
  return *this;
}

SplicePipe::~SplicePipe() {
  if (fds_[0] >= 0) ::close(fds_[0]);
  if (fds_[1] >= 0) ::close(fds_[1]);
}

void PipePool::configure(Settings settings) { settings_store() = settings; }
PipePool::Settings PipePool::configured() { return settings_store(); }

PipePool& PipePool::this_thread() {
  thread_local PipePool pool(settings_store());
  return pool;
}

std::optional<SplicePipe> PipePool::take() {
  if (!idle_.empty()) {
    SplicePipe pipe = std::move(idle_.back());
    idle_.pop_back();
    ++in_use_;
    return pipe;
  }
  if (in_use_ >= settings_.max_pipes || std::chrono::steady_clock::now() < retry_after_) {
    ++misses_;
    return std::nullopt;
  }
  auto pipe = open_pipe();
  if (!pipe) {
    ++misses_;
    retry_after_ = std::chrono::steady_clock::now() + kRetryAfterRefusal;
    return std::nullopt;
  }
  ++in_use_;
  return pipe;
}

void PipePool::give_back(SplicePipe pipe) {
  if (in_use_ > 0) --in_use_;
  if (in_use_ + idle_.size() < settings_.max_pipes) {
    idle_.push_back(std::move(pipe));
  } else if (pipe.capacity() > kDefaultPipeCapacity && grown_ > 0) {
    --grown_;  // closed as it goes out of scope
  }
}

void PipePool::discard(SplicePipe pipe) {
  if (in_use_ > 0) --in_use_;
  if (pipe.capacity() > kDefaultPipeCapacity && grown_ > 0) --grown_;
}

bool PipePool::grow(SplicePipe& pipe) {
  if (settings_.pipe_size > 0 || grown_ >= settings_.max_grown || pipe.capacity() >= settings_.grown_size) {
    return false;
  }
  // The kernel may refuse (the user's pipe pages) or round up: trust what it reports.
  if (::fcntl(pipe.write_end(), F_SETPIPE_SZ, static_cast<int>(settings_.grown_size)) < 0) return false;
  int capacity = ::fcntl(pipe.write_end(), F_GETPIPE_SZ);
  if (capacity <= 0) return false;
  pipe.capacity_ = static_cast<size_t>(capacity);
  ++grown_;
  return true;
}

std::optional<SplicePipe> PipePool::open_pipe() {
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
    if (!warned_) spdlog::warn("splice: cannot create a pipe ({}); copying through user space", std::strerror(errno));
    warned_ = true;
    return std::nullopt;
  }
  SplicePipe pipe(fds[0], fds[1], kDefaultPipeCapacity);
  int wanted = static_cast<int>(settings_.pipe_size > 0 ? settings_.pipe_size : kDefaultPipeCapacity);
  if (settings_.pipe_size > 0 && ::fcntl(pipe.write_end(), F_SETPIPE_SZ, wanted) < 0 && !warned_) {
    spdlog::warn("splice: cannot size a pipe to {} bytes ({}); keeping the kernel's size", wanted, std::strerror(errno));
    warned_ = true;
  }
  // Past the user's pipe-page budget the kernel hands out one-page pipes, which would run a
  // stream at a fraction of its speed: the copy path is faster than that.
  int capacity = ::fcntl(pipe.write_end(), F_GETPIPE_SZ);
  if (capacity > 0) pipe.capacity_ = static_cast<size_t>(capacity);
  if (capacity > 0 && capacity < std::min(wanted, static_cast<int>(kDefaultPipeCapacity))) {
    if (!warned_) {
      spdlog::warn("splice: the kernel gave a {}-byte pipe (this user's pipe-user-pages-soft is spent); copying "
                   "through user space instead",
                   capacity);
    }
    warned_ = true;
    return std::nullopt;
  }
  return pipe;
}

}  // namespace strait::agent
