#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/system/result.hpp>

namespace strait::agent {

namespace asio = boost::asio;

// Name lookups for every dial. getaddrinfo(3) blocks, so lookups run on a pool of threads
// shared by the workers: lookups run side by side (a slow name never delays another), the
// same name asked twice at once is looked up once, answers are cached for `ttl` (failures
// for `negative_ttl`), and every caller waits no longer than its own deadline. A lookup
// whose callers all gave up before a thread took it is dropped unrun. Keeping getaddrinfo
// keeps the host's own rules (nsswitch, /etc/hosts, search domains), as GOST's resolver does.
struct ResolverOptions {
  size_t max_threads = 32;    // lookups in progress at once
  size_t max_pending = 4096;  // lookups waiting for a thread; beyond, a dial fails at once
  std::chrono::nanoseconds ttl = std::chrono::seconds(30);
  std::chrono::nanoseconds negative_ttl = std::chrono::seconds(5);
  size_t max_cached = 10000;  // names remembered
};

enum class AddressFamily { kAny, kIpv4 };

class Resolver {
 public:
  using Addresses = std::vector<asio::ip::address>;
  using Clock = std::chrono::steady_clock;

  explicit Resolver(ResolverOptions options);
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // The process's resolver; configure() before the first lookup to change its options.
  static Resolver& shared();
  static void configure(ResolverOptions options);

  // The addresses of `host` (an IP literal is returned as is), or timed_out once `deadline`
  // passes, host_not_found / host_not_found_try_again / no_buffer_space (pool saturated).
  asio::awaitable<boost::system::result<Addresses>> resolve(std::string host, AddressFamily family,
                                                            Clock::time_point deadline);

  struct Stats {
    uint64_t lookups = 0;      // getaddrinfo calls made
    uint64_t cache_hits = 0;
    uint64_t joined = 0;       // callers that shared a lookup already in flight
    uint64_t dropped = 0;      // lookups dropped because every caller had given up
    uint64_t refused = 0;      // callers refused because the queue was full
  };
  Stats stats() const;

 private:
  class Pool;
  std::shared_ptr<Pool> pool_;
};

}  // namespace strait::agent
