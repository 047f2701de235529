#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <span>
#include <string>

#include <boost/asio/experimental/channel.hpp>

#include "agent/chain/router.h"
#include "agent/channel/channel.h"
#include "common/address.h"

namespace strait::agent {

// The datagrams of one SOCKS5 UDP association (UDP ASSOCIATE or GOST's UDPTun). Each target
// gets its own datagram channel from the service's router, so an association works both
// directly and through a chain; answers wait in a bounded queue for the client side, and
// answers that find the queue full are dropped, as a congested UDP path would. At most
// `max_targets` channels stay open: a new target closes the one unused for longest, and a
// target silent both ways for `flow_ttl` is closed. The association ends by itself once
// nothing has passed for `idle_timeout`. Buffers are taken only while a datagram is read.
// Lives on one worker; the handler closes it when the association's TCP connection ends.
class UdpAssociation : public std::enable_shared_from_this<UdpAssociation> {
 public:
  struct Datagram {
    common::HostPort source;
    std::string payload;
  };
  struct Limits {
    // Largest answer datagram read from a target (GOST's udpBufferSize). GOST defaults to 4096
    // and silently cuts longer answers; a whole UDP datagram is the safer default.
    size_t buffer_size = 65535;
    size_t max_targets = 64;    // distinct targets per association
    size_t queue_size = 128;    // answers waiting for the client side
    std::chrono::nanoseconds flow_ttl = std::chrono::seconds(60);  // GOST's UDP conn pool TTL role
    std::chrono::nanoseconds idle_timeout = std::chrono::hours(1);
    size_t max_associations = 1000;  // open at once per service (udp.maxAssociations), 0: no limit
  };

  UdpAssociation(asio::any_io_executor executor, std::shared_ptr<const Router> router, std::string log_prefix,
                 Limits limits);

  // Sends one client datagram to `target`, opening the target's channel on first use.
  // Failures are logged and the datagram dropped; the association goes on.
  asio::awaitable<void> send(const common::HostPort& target, std::span<const uint8_t> payload);
  // The next answer for the client; an error once the association is closed.
  asio::awaitable<Result<Datagram>> receive();
  // Ends every target channel and wakes receive(); safe to call twice.
  void close();

  uint64_t bytes_from_client() const { return bytes_from_client_; }
  uint64_t bytes_to_client() const { return bytes_to_client_; }

 private:
  using Clock = std::chrono::steady_clock;
  struct Flow {
    StreamPtr stream;
    common::HostPort source;
    Clock::time_point last_used;
  };

  asio::awaitable<void> read_answers(std::shared_ptr<Flow> flow);
  asio::awaitable<void> expire_idle();
  void evict_least_recently_used();

  std::shared_ptr<const Router> router_;
  std::string log_prefix_;
  Limits limits_;
  asio::experimental::channel<void(error_code, Datagram)> answers_;
  std::map<std::string, std::shared_ptr<Flow>> flows_;
  bool closed_ = false;
  bool expiring_ = false;
  Clock::time_point last_activity_ = Clock::now();
  uint64_t bytes_from_client_ = 0;
  uint64_t bytes_to_client_ = 0;
};

}  // namespace strait::agent
