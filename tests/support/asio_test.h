#pragma once

// Helpers for in-process tests that drive coroutines over real loopback sockets.

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace strait::testing {

namespace asio = boost::asio;
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

// Runs `body` to completion on `io`, failing (throwing) if it takes longer than `limit`.
template <typename T>
T run_for(asio::io_context& io, asio::awaitable<T> body, std::chrono::seconds limit = std::chrono::seconds(10)) {
  std::optional<T> result;
  std::exception_ptr failure;
  asio::co_spawn(io, std::move(body), [&](std::exception_ptr e, T value) {
    failure = e;
    if (!e) result = std::move(value);
    io.stop();  // listeners and timers left behind must not keep the test running
  });
  io.restart();
  io.run_for(limit);
  if (failure) std::rethrow_exception(failure);
  if (!result) throw std::runtime_error("test coroutine did not finish in time");
  return std::move(*result);
}

inline void run_for(asio::io_context& io, asio::awaitable<void> body, std::chrono::seconds limit = std::chrono::seconds(10)) {
  bool done = false;
  std::exception_ptr failure;
  asio::co_spawn(io, std::move(body), [&](std::exception_ptr e) {
    failure = e;
    done = true;
    io.stop();  // listeners and timers left behind must not keep the test running
  });
  io.restart();
  io.run_for(limit);
  if (failure) std::rethrow_exception(failure);
  if (!done) throw std::runtime_error("test coroutine did not finish in time");
}

// A loopback acceptor on a kernel-chosen port.
inline asio::ip::tcp::acceptor loopback_acceptor(asio::io_context& io) {
  return asio::ip::tcp::acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
}

inline std::string address_of(const asio::ip::tcp::acceptor& acceptor) {
  return "127.0.0.1:" + std::to_string(acceptor.local_endpoint().port());
}

// A loopback address nothing listens on (bound once by the kernel, then closed).
inline std::string closed_loopback_address(asio::io_context& io) {
  auto acceptor = loopback_acceptor(io);
  return address_of(acceptor);
}

// Deterministic pseudo-random payload of `size` bytes.
inline std::string payload(size_t size, unsigned seed = 1) {
  std::string out(size, '\0');
  unsigned state = seed;
  for (auto& c : out) {
    state = state * 1103515245u + 12345u;
    c = static_cast<char>(state >> 16);
  }
  return out;
}

}  // namespace strait::testing

namespace strait::testing {

// Two connected loopback TCP sockets.
inline asio::awaitable<std::pair<asio::ip::tcp::socket, asio::ip::tcp::socket>> tcp_pair() {
  auto executor = co_await asio::this_coro::executor;
  asio::ip::tcp::acceptor acceptor(executor, {asio::ip::make_address("127.0.0.1"), 0});
  asio::ip::tcp::socket client(executor);
  co_await client.async_connect(acceptor.local_endpoint(), asio::use_awaitable);
  auto server = co_await acceptor.async_accept(asio::use_awaitable);
  co_return std::make_pair(std::move(client), std::move(server));
}

}  // namespace strait::testing
