#include "agent/runtime/inherited_sockets.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>

namespace strait::agent {
namespace {

constexpr int kSystemdFirstFd = 3;  // SD_LISTEN_FDS_START

int int_option(int fd, int level, int name) {
  int value = 0;
  socklen_t size = sizeof value;
  return ::getsockopt(fd, level, name, &value, &size) == 0 ? value : -1;
}

bool unspecified(const sockaddr_storage& address) {
  if (address.ss_family == AF_INET) {
    return reinterpret_cast<const sockaddr_in&>(address).sin_addr.s_addr == htonl(INADDR_ANY);
  }
  const auto& v6 = reinterpret_cast<const sockaddr_in6&>(address).sin6_addr;
  return std::memcmp(&v6, &in6addr_any, sizeof v6) == 0;
}

std::string host_of(const sockaddr_storage& address) {
  char text[INET6_ADDRSTRLEN] = {};
  if (address.ss_family == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(address).sin_addr, text, sizeof text);
  } else {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(address).sin6_addr, text, sizeof text);
  }
  return text;
}

uint16_t port_of(const sockaddr_storage& address) {
  return ntohs(address.ss_family == AF_INET ? reinterpret_cast<const sockaddr_in&>(address).sin_port
                                            : reinterpret_cast<const sockaddr_in6&>(address).sin6_port);
}

}  // namespace

bool InheritedSockets::add(int fd) {
  sockaddr_storage address{};
  socklen_t size = sizeof address;
  int type = int_option(fd, SOL_SOCKET, SO_TYPE);
  bool ok = ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) == 0 &&
            (address.ss_family == AF_INET || address.ss_family == AF_INET6) &&
            ((type == SOCK_STREAM && int_option(fd, SOL_SOCKET, SO_ACCEPTCONN) == 1) || type == SOCK_DGRAM);
  if (!ok) {
    ::close(fd);
    return false;
  }
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  sockets_.push_back(
      {fd, type == SOCK_STREAM ? "tcp" : "udp", unspecified(address) ? "" : host_of(address), port_of(address)});
  return true;
}

std::vector<int> InheritedSockets::take(std::string_view network, const common::HostPort& address) {
  std::vector<int> taken;
  bool any = address.host.empty() || address.host == "0.0.0.0" || address.host == "::";
  std::erase_if(sockets_, [&](const Socket& socket) {
    bool match = socket.network == network && socket.port == address.port &&
                 (any ? socket.host.empty() : socket.host == address.host);
    if (match) taken.push_back(socket.fd);
    return match;
  });
  return taken;
}

void InheritedSockets::close_rest() {
  for (const auto& socket : sockets_) ::close(socket.fd);
  sockets_.clear();
}

size_t add_systemd_sockets(InheritedSockets& sockets) {
  const char* pid_text = std::getenv("LISTEN_PID");
  const char* count_text = std::getenv("LISTEN_FDS");
  if (pid_text == nullptr || count_text == nullptr) return 0;
  long pid = 0;
  int count = 0;
  std::from_chars(pid_text, pid_text + std::strlen(pid_text), pid);
  std::from_chars(count_text, count_text + std::strlen(count_text), count);
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_FDNAMES");
  if (pid != ::getpid() || count <= 0) return 0;
  size_t added = 0;
  for (int fd = kSystemdFirstFd; fd < kSystemdFirstFd + std::min(count, 4096); ++fd) added += sockets.add(fd) ? 1 : 0;
  return added;
}

}  // namespace strait::agent
