#include "agent/runtime/takeover.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include "common/strings.h"

namespace strait::agent {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using local = asio::local::stream_protocol;
constexpr size_t kFdsPerMessage = 64;
constexpr char kAskSockets = 'S';
constexpr char kSockets = 'F';
constexpr char kEnd = 'E';
constexpr char kDrain = 'D';
constexpr char kAgreed = 'A';
// How long the old agent waits for the new one to say it serves (it may be applying a
// large config or waiting for its controller).
constexpr auto kServeWait = std::chrono::seconds(120);
constexpr auto kAskWait = std::chrono::seconds(5);

absl::Status errno_status(std::string_view what) {
  return absl::UnavailableError(common::str_cat(what, ": ", std::strerror(errno)));
}

// Waits until `fd` can take or give data (for sockets asio made non-blocking).
bool wait_for(int fd, short events, int timeout_ms) {
  pollfd entry{fd, events, 0};
  return ::poll(&entry, 1, timeout_ms) == 1;
}

bool send_with_fds(int fd, char tag, const int* fds, size_t count) {
  msghdr message{};
  iovec part{&tag, 1};
  message.msg_iov = &part;
  message.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kFdsPerMessage)] = {};
  if (count > 0) {
    message.msg_control = control;
    message.msg_controllen = CMSG_SPACE(sizeof(int) * count);
    cmsghdr* header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int) * count);
    std::memcpy(CMSG_DATA(header), fds, sizeof(int) * count);
  }
  for (;;) {
    if (::sendmsg(fd, &message, MSG_NOSIGNAL) == 1) return true;
    if (errno != EAGAIN && errno != EINTR) return false;
    if (!wait_for(fd, POLLOUT, 2000)) return false;
  }
}

// Receives one message: its tag, and the descriptors it carried into `sockets`.
absl::StatusOr<char> receive_with_fds(int fd, InheritedSockets& sockets) {
  char tag = 0;
  iovec part{&tag, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kFdsPerMessage)] = {};
  msghdr message{};
  message.msg_iov = &part;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof control;
  ssize_t got = ::recvmsg(fd, &message, MSG_CMSG_CLOEXEC);
  if (got < 0) return errno_status("takeover: reading the old agent's answer");
  if (got == 0) return absl::UnavailableError("takeover: the old agent closed the connection");
  for (cmsghdr* header = CMSG_FIRSTHDR(&message); header != nullptr; header = CMSG_NXTHDR(&message, header)) {
    if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    std::array<int, kFdsPerMessage> fds{};
    std::memcpy(fds.data(), CMSG_DATA(header), sizeof(int) * std::min(count, kFdsPerMessage));
    for (size_t i = 0; i < std::min(count, kFdsPerMessage); ++i) sockets.add(fds[i]);
  }
  if ((message.msg_flags & MSG_CTRUNC) != 0) return absl::DataLossError("takeover: descriptors were cut off");
  return tag;
}

bool same_user(int fd) {
  ucred peer{};
  socklen_t size = sizeof peer;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &size) != 0) return false;
  return peer.uid == ::getuid() || peer.uid == 0;
}

}  // namespace

Handover::~Handover() { ::close(connection_); }

absl::Status Handover::tell_old_agent_to_drain() {
  char drain = kDrain;
  if (::send(connection_, &drain, 1, MSG_NOSIGNAL) != 1) return errno_status("takeover: telling the old agent to drain");
  char answer = 0;
  if (::recv(connection_, &answer, 1, 0) != 1 || answer != kAgreed) {
    return absl::UnavailableError("takeover: the old agent did not agree to drain");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Handover>> take_over(const std::string& path, InheritedSockets& sockets,
                                                    std::chrono::seconds timeout) {
  sockaddr_un address{};
  if (path.size() >= sizeof address.sun_path) return absl::InvalidArgumentError("--takeover: the path is too long");
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.data(), path.size());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno_status("takeover: socket");
  auto handover = std::make_unique<Handover>(fd);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    // Nobody there: this is the first agent, not an upgrade.
    if (errno == ENOENT || errno == ECONNREFUSED) return std::unique_ptr<Handover>();
    return errno_status(common::str_cat("takeover: connecting to ", path));
  }
  timeval wait{static_cast<time_t>(timeout.count()), 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &wait, sizeof wait);
  char ask = kAskSockets;
  if (::send(fd, &ask, 1, MSG_NOSIGNAL) != 1) return errno_status("takeover: asking for the sockets");
  for (;;) {
    auto tag = receive_with_fds(fd, sockets);
    if (!tag.ok()) return tag.status();
    if (*tag == kEnd) break;
    if (*tag != kSockets) return absl::DataLossError("takeover: an answer this agent does not understand");
  }
  // Telling the old agent to drain may come much later (after the config applied).
  timeval no_limit{0, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &no_limit, sizeof no_limit);
  return handover;
}

TakeoverServer::TakeoverServer(asio::io_context& io, std::string path, ListeningSockets sockets, Drain drain)
    : acceptor_(io), path_(std::move(path)), sockets_(std::move(sockets)), drain_(std::move(drain)) {}

TakeoverServer::~TakeoverServer() {
  error_code ignored;
  acceptor_.close(ignored);
  for (auto& waiting : waiting_) {
    if (auto connection = waiting.lock()) connection->close(ignored);
  }
}

absl::StatusOr<std::unique_ptr<TakeoverServer>> TakeoverServer::listen(asio::io_context& io, const std::string& path,
                                                                       ListeningSockets sockets, Drain drain) {
  std::unique_ptr<TakeoverServer> server(new TakeoverServer(io, path, std::move(sockets), std::move(drain)));
  // The previous agent's socket file, if any: that agent has handed over and is draining.
  ::unlink(path.c_str());
  error_code ec;
  mode_t previous = ::umask(0177);
  server->acceptor_.open(local(), ec);
  if (!ec) server->acceptor_.bind(local::endpoint(path), ec);
  ::umask(previous);
  if (!ec) server->acceptor_.listen(4, ec);
  if (ec) return absl::UnavailableError(common::str_cat("--takeover ", path, ": ", ec.message()));
  server->accept_next();
  return server;
}

void TakeoverServer::accept_next() {
  acceptor_.async_accept([this](const error_code& ec, local::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) {
      error_code ignored;
      int fd = socket.release(ignored);
      if (fd >= 0) serve(fd);
    }
    accept_next();
  });
}

void TakeoverServer::serve(int fd) {
  if (!same_user(fd)) {
    spdlog::warn("takeover: refused a connection from another user");
    ::close(fd);
    return;
  }
  // Both waits are bounded: a client that says nothing costs this thread little.
  char ask = 0;
  if (!wait_for(fd, POLLIN, static_cast<int>(kAskWait.count() * 1000)) || ::recv(fd, &ask, 1, 0) != 1 ||
      ask != kAskSockets) {
    ::close(fd);
    return;
  }
  auto fds = sockets_();
  bool sent = true;
  for (size_t offset = 0; sent && offset < fds.size(); offset += kFdsPerMessage) {
    sent = send_with_fds(fd, kSockets, fds.data() + offset, std::min(kFdsPerMessage, fds.size() - offset));
  }
  if (!sent || !send_with_fds(fd, kEnd, nullptr, 0)) {
    spdlog::warn("takeover: could not hand over the listening sockets: {}", std::strerror(errno));
    ::close(fd);
    return;
  }
  spdlog::info("takeover: handed {} listening sockets to a new agent; serving until it is ready", fds.size());
  // The new agent says when it serves; wait for that off this thread's critical path.
  auto connection = std::make_shared<local::socket>(acceptor_.get_executor());
  error_code ec;
  connection->assign(local(), fd, ec);
  if (ec) {
    ::close(fd);
    return;
  }
  std::erase_if(waiting_, [](const auto& waiting) { return waiting.expired(); });
  waiting_.push_back(connection);
  auto timer = std::make_shared<asio::steady_timer>(acceptor_.get_executor(), kServeWait);
  auto byte = std::make_shared<char>(0);
  // The timer holds the connection only weakly, so closing the connection ends both waits.
  timer->async_wait([weak = std::weak_ptr(connection)](const error_code& timer_error) {
    if (auto open = weak.lock(); open && !timer_error) open->close();
  });
  asio::async_read(*connection, asio::buffer(byte.get(), 1),
                   [this, connection, timer, byte](const error_code& read_error, size_t) {
                     timer->cancel();
                     if (read_error || *byte != kDrain) {
                       spdlog::warn("takeover: the new agent went away before serving; still serving here");
                       return;
                     }
                     char agreed = kAgreed;
                     error_code ignored;
                     asio::write(*connection, asio::buffer(&agreed, 1), ignored);
                     spdlog::info("takeover: the new agent serves; draining and exiting");
                     drain_();
                   });
}

}  // namespace strait::agent
