#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "absl/status/statusor.h"

namespace strait::controller {

// Plain-HTTP operational endpoints on their own thread: GET /metrics (Prometheus text),
// /healthz (the process answers) and /readyz (`ready()` is true: store open, gRPC serving).
class HttpEndpoints {
 public:
  using Metrics = std::function<std::string()>;
  using Ready = std::function<bool()>;

  // Binds `address` ("host:port"); the port is taken (0 = any) before this returns.
  static absl::StatusOr<std::unique_ptr<HttpEndpoints>> start(const std::string& address, Metrics metrics, Ready ready);
  ~HttpEndpoints();

  uint16_t port() const { return port_; }

 private:
  HttpEndpoints(Metrics metrics, Ready ready);

  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  Metrics metrics_;
  Ready ready_;
  uint16_t port_ = 0;
  std::thread thread_;
};

}  // namespace strait::controller
