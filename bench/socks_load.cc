// socks_load: a SOCKS5 load generator for bench/socks5.py. It hosts its own target on
// loopback and drives one proxy at a time, so every proxy is measured by the same client.
//
//   socks_load connect    PROXY_PORT CONCURRENCY SECONDS   -> "<connections/s> <p50 ms> <p99 ms>"
//   socks_load throughput PROXY_PORT STREAMS SECONDS       -> "<Gbit/s>"
//
// connect: each worker loops greeting, CONNECT to the target, one byte each way, close.
// throughput: each stream CONNECTs once, then writes 64 KiB blocks until the time is up; the
// rate is what the target received. The target runs on a thread of its own, so that a single
// stream is not paced by one thread both writing and reading (which made the load generator,
// not the proxy, the bottleneck).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

struct Totals {
  uint64_t connections = 0;
  uint64_t failures = 0;
  uint64_t bytes_received = 0;
  std::vector<double> latencies_ms;
};

tcp::endpoint loopback(uint16_t port) { return {asio::ip::make_address("127.0.0.1"), port}; }

// Target side: answers one byte per connection (connect mode) or counts what arrives.
asio::awaitable<void> serve_target(tcp::acceptor& acceptor, bool count_only, Totals& totals) {
  for (;;) {
    auto [error, socket] = co_await acceptor.async_accept(kUseTuple);
    if (error) co_return;
    asio::co_spawn(
        acceptor.get_executor(),
        [&totals, count_only, socket = std::move(socket)]() mutable -> asio::awaitable<void> {
          std::vector<char> buffer(count_only ? 65536 : 1);
          for (;;) {
            auto [read_error, n] = co_await socket.async_read_some(asio::buffer(buffer), kUseTuple);
            if (read_error) co_return;
            if (count_only) {
              totals.bytes_received += n;
              continue;
            }
            co_await asio::async_write(socket, asio::buffer(buffer, n), kUseTuple);
            co_return;
          }
        },
        asio::detached);
  }
}

// Greeting (no auth) and CONNECT to 127.0.0.1:target; true when the proxy granted it.
asio::awaitable<bool> socks_connect(tcp::socket& socket, uint16_t target_port) {
  const unsigned char greeting[] = {5, 1, 0};
  auto [write_error, written] = co_await asio::async_write(socket, asio::buffer(greeting), kUseTuple);
  unsigned char selection[2];
  auto [read_error, read] = co_await asio::async_read(socket, asio::buffer(selection), kUseTuple);
  if (write_error || read_error || selection[1] != 0) co_return false;
  const unsigned char request[] = {5, 1, 0, 1, 127, 0, 0, 1, static_cast<unsigned char>(target_port >> 8),
                                   static_cast<unsigned char>(target_port & 0xFF)};
  std::tie(write_error, written) = co_await asio::async_write(socket, asio::buffer(request), kUseTuple);
  unsigned char reply[10];  // every tested proxy answers with an IPv4 bound address
  std::tie(read_error, read) = co_await asio::async_read(socket, asio::buffer(reply), kUseTuple);
  co_return !write_error && !read_error && reply[1] == 0;
}

asio::awaitable<void> connect_worker(uint16_t proxy_port, uint16_t target_port, Clock::time_point end,
                                     Totals& totals) {
  auto executor = co_await asio::this_coro::executor;
  while (Clock::now() < end) {
    auto started = Clock::now();
    tcp::socket socket(executor);
    auto [connect_error] = co_await socket.async_connect(loopback(proxy_port), kUseTuple);
    bool ok = !connect_error && co_await socks_connect(socket, target_port);
    if (ok) {
      char byte = 'x';
      auto [write_error, written] = co_await asio::async_write(socket, asio::buffer(&byte, 1), kUseTuple);
      auto [read_error, read] = co_await asio::async_read(socket, asio::buffer(&byte, 1), kUseTuple);
      ok = !write_error && !read_error;
    }
    if (!ok) {
      ++totals.failures;
      continue;
    }
    ++totals.connections;
    totals.latencies_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - started).count());
  }
}

asio::awaitable<void> throughput_stream(uint16_t proxy_port, uint16_t target_port, Clock::time_point end,
                                        Totals& totals) {
  tcp::socket socket(co_await asio::this_coro::executor);
  auto [connect_error] = co_await socket.async_connect(loopback(proxy_port), kUseTuple);
  if (connect_error || !co_await socks_connect(socket, target_port)) {
    ++totals.failures;
    co_return;
  }
  std::vector<char> block(65536, 'b');
  while (Clock::now() < end) {
    auto [error, n] = co_await asio::async_write(socket, asio::buffer(block), kUseTuple);
    if (error) {
      ++totals.failures;
      co_return;
    }
  }
}

double percentile(std::vector<double>& values, double p) {
  if (values.empty()) return 0;
  size_t index = std::min(values.size() - 1, static_cast<size_t>(p * static_cast<double>(values.size())));
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(index), values.end());
  return values[index];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s connect|throughput PROXY_PORT CONCURRENCY SECONDS\n", argv[0]);
    return 2;
  }
  const std::string mode = argv[1];
  const auto proxy_port = static_cast<uint16_t>(std::atoi(argv[2]));
  const int concurrency = std::atoi(argv[3]);
  const double seconds = std::atof(argv[4]);
  const bool throughput = mode == "throughput";

  asio::io_context io(1);
  asio::io_context target_io(1);
  tcp::acceptor target(throughput ? target_io : io, loopback(0));
  target.listen(4096);
  Totals totals;
  asio::co_spawn(target.get_executor(), serve_target(target, throughput, totals), asio::detached);
  auto start = Clock::now();
  auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  const uint16_t target_port = target.local_endpoint().port();
  for (int i = 0; i < concurrency; ++i) {
    if (throughput) {
      asio::co_spawn(io, throughput_stream(proxy_port, target_port, end, totals), asio::detached);
    } else {
      asio::co_spawn(io, connect_worker(proxy_port, target_port, end, totals), asio::detached);
    }
  }
  // The measurement ends at `end`; work still in flight then is not counted.
  asio::steady_timer stop(io, end);
  stop.async_wait([&io, &target_io](boost::system::error_code) {
    io.stop();
    target_io.stop();
  });
  auto work = asio::make_work_guard(target_io);
  std::thread target_thread([&target_io] { target_io.run(); });
  io.run();
  target_thread.join();
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  if (throughput) {
    std::printf("%.3f\n", static_cast<double>(totals.bytes_received) * 8 / elapsed / 1e9);
  } else {
    std::printf("%.0f %.3f %.3f\n", static_cast<double>(totals.connections) / elapsed,
                percentile(totals.latencies_ms, 0.5), percentile(totals.latencies_ms, 0.99));
  }
  if (totals.failures > 0) std::fprintf(stderr, "socks_load: %llu failures\n", static_cast<unsigned long long>(totals.failures));
  return 0;
}
