#include "agent/runtime/runtime.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "common/config_file.h"

namespace strait::agent {
namespace {

using namespace std::chrono_literals;

// A blocking loopback socket with 5 s timeouts; -1 when the connect fails.
int connect_to(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  timeval timeout{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// The first byte the peer sends, or '?' when none comes within the socket's timeout.
char first_byte(int fd) {
  char byte = '?';
  return ::recv(fd, &byte, 1, 0) == 1 ? byte : '?';
}

// A target that greets every connection with one byte (its tag) and holds it open until
// the other side closes: which target a connection reached, read by the client.
class TagServer {
 public:
  explicit TagServer(char tag) : tag_(tag), fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address);
    ::listen(fd_, 64);
    socklen_t size = sizeof address;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &size);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~TagServer() {
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
    for (auto& connection : connections_) connection.join();
  }
  uint16_t port() const { return port_; }

 private:
  void serve() {
    for (;;) {
      int client = ::accept(fd_, nullptr, nullptr);
      if (client < 0) return;
      connections_.emplace_back([this, client] {
        ::send(client, &tag_, 1, MSG_NOSIGNAL);
        char byte;
        while (::recv(client, &byte, 1, 0) > 0) {
        }
        ::close(client);
      });
    }
  }
  char tag_;
  int fd_;
  uint16_t port_ = 0;
  std::thread thread_;
  std::vector<std::thread> connections_;
};

uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t size = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size);
  ::close(fd);
  return ntohs(address.sin_port);
}

std::shared_ptr<const config::v1::Config> forward(uint16_t port, uint16_t target, const std::string& extra = "",
                                                  const std::string& service_metadata = "") {
  std::string yaml = "services:\n- name: entry\n  addr: \"127.0.0.1:" + std::to_string(port) +
                     "\"\n  handler: {type: tcp}\n  metadata: {" + service_metadata +
                     "}\n  forwarder: {nodes: [{name: t, addr: \"127.0.0.1:" + std::to_string(target) + "\"}]}\n" +
                     extra;
  auto loaded = common::parse_config_text(yaml, "test.yaml");
  EXPECT_TRUE(loaded.ok()) << loaded.status();
  return std::make_shared<const config::v1::Config>(loaded.ok() ? loaded->config : config::v1::Config());
}

class RuntimeApply : public ::testing::Test {
 protected:
  ~RuntimeApply() override {
    for (int fd : open_) ::close(fd);
    runtime_.shutdown(1s);
    workers_.stop();
  }
  int track(int fd) {
    if (fd >= 0) open_.push_back(fd);
    return fd;
  }
  ServiceReport entry() {
    auto reports = runtime_.report();
    EXPECT_EQ(reports.size(), 1u);
    return reports.empty() ? ServiceReport{} : reports[0];
  }
  // Polls `condition` for up to 5 s: the runtime is asynchronous to this thread.
  template <typename Condition>
  static bool within_5s(Condition condition) {
    for (auto deadline = std::chrono::steady_clock::now() + 5s; std::chrono::steady_clock::now() < deadline;) {
      if (condition()) return true;
      std::this_thread::sleep_for(5ms);
    }
    return false;
  }
  template <typename Predicate>
  bool eventually(Predicate predicate) {
    return within_5s([&] { return predicate(entry()); });
  }
  // Each worker closes its own socket of the old address when it gets to it.
  bool stops_listening(uint16_t port) {
    return within_5s([&] { return track(connect_to(port)) < 0; });
  }

  Workers workers_{2};  // two: the limits and generations are shared across workers
  Runtime runtime_{workers_, 10s, 1000};
  std::vector<int> open_;
  TagServer a_{'A'}, b_{'B'};
  uint16_t port_ = free_port();
};

TEST_F(RuntimeApply, AnEditElsewhereRestartsNothing) {
  ASSERT_TRUE(runtime_.apply(forward(port_, a_.port())).ok());
  int connection = track(connect_to(port_));
  ASSERT_EQ(first_byte(connection), 'A');
  ASSERT_TRUE(eventually([](const ServiceReport& r) { return r.active_connections == 1; }));
  // A new auther that the service does not use, and a new chain.
  ASSERT_TRUE(runtime_
                  .apply(forward(port_, a_.port(),
                                 "authers: [{name: other, auths: [{username: u, password: p}]}]\n"
                                 "chains: [{name: c, hops: [{name: h, nodes: [{name: n, addr: \"127.0.0.1:1\"}]}]}]\n"))
                  .ok());
  auto report = entry();
  EXPECT_EQ(report.active_connections, 1u);
  EXPECT_EQ(report.draining_connections, 0u) << "the service did not restart";
}

TEST_F(RuntimeApply, AChangedServiceKeepsItsSocketAndDrainsItsOldConnections) {
  ASSERT_TRUE(runtime_.apply(forward(port_, a_.port())).ok());
  int old_connection = track(connect_to(port_));
  ASSERT_EQ(first_byte(old_connection), 'A');
  ASSERT_TRUE(runtime_.apply(forward(port_, b_.port())).ok());
  EXPECT_EQ(entry().address, "127.0.0.1:" + std::to_string(port_));
  int new_connection = track(connect_to(port_));
  EXPECT_EQ(first_byte(new_connection), 'B') << "new connections get the new config";
  EXPECT_TRUE(eventually([](const ServiceReport& r) { return r.draining_connections == 1 && r.active_connections == 1; }));
  // The old connection still works on the old config until it ends.
  ::close(old_connection);
  open_.erase(std::find(open_.begin(), open_.end(), old_connection));
  EXPECT_TRUE(eventually([this](const ServiceReport& r) {
    runtime_.reap_draining();
    return r.draining_connections == 0;
  }));
}

TEST_F(RuntimeApply, ASocketChangeServesWhatTheOldSocketHadQueued) {
  // One connection at a time: the second waits in the old socket's listen queue.
  ASSERT_TRUE(runtime_.apply(forward(port_, a_.port(), "", "maxConnections: 1")).ok());
  int first = track(connect_to(port_));
  ASSERT_EQ(first_byte(first), 'A');
  int queued = track(connect_to(port_));
  ASSERT_GE(queued, 0);
  uint16_t new_port = free_port();
  ASSERT_TRUE(runtime_.apply(forward(new_port, b_.port(), "", "maxConnections: 1")).ok());
  EXPECT_EQ(first_byte(queued), 'A') << "the queued client was served by the config it came for";
  EXPECT_TRUE(stops_listening(port_)) << "the old address no longer listens";
  EXPECT_EQ(entry().address, "127.0.0.1:" + std::to_string(new_port));
}

TEST_F(RuntimeApply, ConnectionsBeyondTheLimitWaitInTheListenQueue) {
  ASSERT_TRUE(runtime_.apply(forward(port_, a_.port(), "", "maxConnections: 2")).ok());
  int one = track(connect_to(port_));
  int two = track(connect_to(port_));
  ASSERT_EQ(first_byte(one), 'A');
  ASSERT_EQ(first_byte(two), 'A');
  int three = track(connect_to(port_));
  ASSERT_GE(three, 0) << "the kernel completes the handshake";
  timeval short_wait{0, 300'000};
  ::setsockopt(three, SOL_SOCKET, SO_RCVTIMEO, &short_wait, sizeof short_wait);
  EXPECT_EQ(first_byte(three), '?') << "but the service does not take a third connection";
  ::close(one);
  open_.erase(std::find(open_.begin(), open_.end(), one));
  timeval long_wait{5, 0};
  ::setsockopt(three, SOL_SOCKET, SO_RCVTIMEO, &long_wait, sizeof long_wait);
  EXPECT_EQ(first_byte(three), 'A') << "until one ends";
}

TEST_F(RuntimeApply, ABadValueChangesNothing) {
  ASSERT_TRUE(runtime_.apply(forward(port_, a_.port())).ok());
  auto refused = runtime_.apply(forward(port_, b_.port(), "", "idleTimeout: \"" + std::string(400, '9') + "s\""));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.message().find("service entry: metadata: metadata idleTimeout"), std::string::npos) << refused;
  EXPECT_EQ(first_byte(track(connect_to(port_))), 'A');
}

}  // namespace
}  // namespace strait::agent
