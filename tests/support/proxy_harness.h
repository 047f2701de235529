#pragma once

// In-process proxy tests: a handler served on a loopback port, echo targets (TCP and UDP),
// and a raw client socket, all on one io_context and bounded by run_for.

#include <memory>
#include <set>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "agent/channel/tcp.h"
#include "agent/handler/handler.h"
#include "support/asio_test.h"

namespace strait::testing {

// A handler served on a loopback port. Its connections are tracked so that finish() can
// close them and let every handler coroutine end before the io_context goes away (a relay
// left in flight would otherwise be destroyed mid-operation and reported as a leak).
class ServedHandler {
 public:
  ServedHandler(asio::io_context& io, const agent::Handler& handler, const agent::HandlerContext& context)
      : io_(io), acceptor_(loopback_acceptor(io)), handler_(handler), context_(context) {}
  ~ServedHandler() { finish(); }

  uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  // Accepts and serves until finish(); spawn it on the io_context.
  asio::awaitable<void> serve() {
    for (;;) {
      auto [error, socket] = co_await acceptor_.async_accept(kUseTuple);
      if (error) co_return;
      ++active_;
      asio::co_spawn(io_, serve_one(std::make_unique<agent::TcpStream>(std::move(socket))),
                     [this](std::exception_ptr) { --active_; });
    }
  }

  // Closes the listener and every open connection, then runs the io_context until their
  // handlers have returned (at most a few seconds).
  void finish() {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    for (agent::Stream* stream : open_) stream->close();
    io_.restart();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (active_ > 0 && std::chrono::steady_clock::now() < deadline) io_.run_one_for(std::chrono::milliseconds(50));
  }

 private:
  asio::awaitable<void> serve_one(agent::StreamPtr stream) {
    agent::Stream* raw = stream.get();
    open_.insert(raw);
    co_await handler_.handle(std::move(stream), context_);
    open_.erase(raw);
  }

  asio::io_context& io_;
  asio::ip::tcp::acceptor acceptor_;
  const uint16_t port_ = acceptor_.local_endpoint().port();
  const agent::Handler& handler_;
  const agent::HandlerContext& context_;
  std::set<agent::Stream*> open_;
  int active_ = 0;
};

// Echoes each accepted connection's bytes until its EOF; counts connections.
inline asio::awaitable<void> echo(asio::ip::tcp::acceptor& acceptor, int& accepted) {
  for (;;) {
    auto [error, socket] = co_await acceptor.async_accept(kUseTuple);
    if (error) co_return;
    ++accepted;
    asio::co_spawn(
        acceptor.get_executor(),
        [socket = std::move(socket)]() mutable -> asio::awaitable<void> {
          char buffer[4096];
          for (;;) {
            auto [read_error, n] = co_await socket.async_read_some(asio::buffer(buffer), kUseTuple);
            if (read_error) break;
            co_await asio::async_write(socket, asio::buffer(buffer, n), kUseTuple);
          }
          boost::system::error_code ignored;
          socket.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
        },
        asio::detached);
  }
}

// Sends every datagram back to its sender.
inline asio::awaitable<void> udp_echo(asio::ip::udp::socket& socket) {
  char buffer[65536];
  for (;;) {
    asio::ip::udp::endpoint from;
    auto [error, n] = co_await socket.async_receive_from(asio::buffer(buffer), from, kUseTuple);
    if (error == asio::error::operation_aborted) co_return;
    if (error) continue;
    co_await socket.async_send_to(asio::buffer(buffer, n), from, kUseTuple);
  }
}

inline asio::ip::udp::socket loopback_udp(asio::io_context& io) {
  return asio::ip::udp::socket(io, {asio::ip::make_address("127.0.0.1"), 0});
}

inline std::string address_of(const asio::ip::udp::socket& socket) {
  return "127.0.0.1:" + std::to_string(socket.local_endpoint().port());
}

// A context whose router dials directly from this host.
inline std::shared_ptr<agent::HandlerContext> direct_context() {
  auto context = std::make_shared<agent::HandlerContext>();
  context->service = "service-0";
  context->router = std::make_shared<agent::Router>(nullptr, 0, agent::DialOptions{});
  return context;
}

// bytes(5, 1, 0) == "\x05\x01\x00". Variadic rather than an initializer list, which GCC 12
// miscompiles inside coroutines ("array used as initializer").
template <typename... Values>
std::string bytes(Values... values) {
  return std::string{static_cast<char>(values)...};
}

// Writes `request` on a fresh connection to `port` and reads exactly `reply_size` bytes back
// (fewer if the server closes first).
inline asio::awaitable<std::string> exchange_raw(uint16_t port, std::string request, size_t reply_size) {
  auto executor = co_await asio::this_coro::executor;
  asio::ip::tcp::socket socket(executor);
  co_await socket.async_connect({asio::ip::make_address("127.0.0.1"), port}, asio::use_awaitable);
  co_await asio::async_write(socket, asio::buffer(request), kUseTuple);
  std::string reply(reply_size, '\0');
  auto [error, n] = co_await asio::async_read(socket, asio::buffer(reply), kUseTuple);
  reply.resize(n);
  co_return reply;
}

}  // namespace strait::testing
