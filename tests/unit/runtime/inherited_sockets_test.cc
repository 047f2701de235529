#include "agent/runtime/inherited_sockets.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace strait::agent {
namespace {

// A socket bound to 127.0.0.1 (or any) on a kernel-chosen port; listening when TCP.
int bound(int type, bool any, uint16_t& port) {
  int fd = ::socket(AF_INET, type, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(any ? INADDR_ANY : INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  if (type == SOCK_STREAM) ::listen(fd, 8);
  socklen_t size = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size);
  port = ntohs(address.sin_port);
  return fd;
}

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

TEST(InheritedSockets, MatchesByProtocolPortAndAddress) {
  InheritedSockets sockets;
  uint16_t tcp_port = 0, udp_port = 0, any_port = 0;
  int tcp = bound(SOCK_STREAM, false, tcp_port);
  int udp = bound(SOCK_DGRAM, false, udp_port);
  int any = bound(SOCK_STREAM, true, any_port);
  ASSERT_TRUE(sockets.add(tcp));
  ASSERT_TRUE(sockets.add(udp));
  ASSERT_TRUE(sockets.add(any));
  EXPECT_TRUE(sockets.take("udp", {"127.0.0.1", tcp_port}).empty()) << "a TCP socket is not a UDP listener";
  EXPECT_TRUE(sockets.take("tcp", {"127.0.0.2", tcp_port}).empty());
  EXPECT_EQ(sockets.take("tcp", {"127.0.0.1", tcp_port}), std::vector<int>{tcp});
  EXPECT_EQ(sockets.take("udp", {"127.0.0.1", udp_port}), std::vector<int>{udp});
  EXPECT_EQ(sockets.take("tcp", {"", any_port}), std::vector<int>{any}) << "an empty host is any address";
  EXPECT_EQ(sockets.size(), 0u);
  for (int fd : {tcp, udp, any}) ::close(fd);
}

TEST(InheritedSockets, RefusesWhatIsNotAListenerAndClosesWhatNobodyTook) {
  InheritedSockets sockets;
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  EXPECT_FALSE(sockets.add(pipe_fds[0]));
  EXPECT_FALSE(is_open(pipe_fds[0]));
  ::close(pipe_fds[1]);
  int unbound_tcp = ::socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_FALSE(sockets.add(unbound_tcp)) << "a TCP socket that does not listen";
  uint16_t port = 0;
  int kept = bound(SOCK_STREAM, false, port);
  ASSERT_TRUE(sockets.add(kept));
  sockets.close_rest();
  EXPECT_FALSE(is_open(kept));
}

}  // namespace
}  // namespace strait::agent
