#pragma once

// A single-member etcd on loopback ports for store tests: started from Debian's etcd-server
// binary in a temporary data dir, stopped and started again on the same ports and data, killed
// at the end. Tests skip when the binary is missing.

#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace strait::test {

class EtcdProcess {
 public:
  static constexpr const char* kBinary = "/usr/bin/etcd";

  static bool available() { return ::access(kBinary, X_OK) == 0; }

  EtcdProcess()
      : dir_(std::filesystem::temp_directory_path() / ("strait-etcd-" + std::to_string(::getpid()) + "-" +
                                                        std::to_string(counter()++))),
        client_port_(free_port()),
        peer_port_(free_port()) {
    std::filesystem::create_directories(dir_);
  }

  ~EtcdProcess() {
    stop();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(client_port_); }

  // Starts etcd and waits (bounded) until its client port accepts connections.
  bool start() {
    std::string client = "http://127.0.0.1:" + std::to_string(client_port_);
    std::string peer = "http://127.0.0.1:" + std::to_string(peer_port_);
    std::vector<std::string> argv = {kBinary,
                                     "--name=test",
                                     "--data-dir=" + (dir_ / "data").string(),
                                     "--listen-client-urls=" + client,
                                     "--advertise-client-urls=" + client,
                                     "--listen-peer-urls=" + peer,
                                     "--initial-advertise-peer-urls=" + peer,
                                     "--initial-cluster=test=" + peer,
                                     "--logger=zap",
                                     "--log-outputs=" + (dir_ / "etcd.log").string(),
                                     "--log-level=error"};
    std::vector<char*> raw;
    for (auto& arg : argv) raw.push_back(arg.data());
    raw.push_back(nullptr);
    if (posix_spawn(&pid_, kBinary, nullptr, nullptr, raw.data(), environ) != 0) return false;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      if (accepts(client_port_)) return true;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = 0;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = 0;
  }

 private:
  static int& counter() {
    static int value = 0;
    return value;
  }

  static int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
    socklen_t size = sizeof(address);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size);
    ::close(fd);
    return ntohs(address.sin_port);
  }

  static bool accepts(int port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(static_cast<uint16_t>(port));
    bool connected = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
    ::close(fd);
    return connected;
  }

  std::filesystem::path dir_;
  int client_port_;
  int peer_port_;
  pid_t pid_ = 0;
};

}  // namespace strait::test
