#include "agent/channel/tcp.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "absl/strings/str_cat.h"
#include "agent/net/resolver.h"

namespace strait::agent {
namespace {

using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

std::string address_or_unknown(const tcp::socket& socket, bool remote) {
  error_code ec;
  auto endpoint = remote ? socket.remote_endpoint(ec) : socket.local_endpoint(ec);
  return ec ? std::string("?") : endpoint_to_string(endpoint);
}

bool out_of_resources(const error_code& ec) {
  return ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space || ec == asio::error::no_memory ||
         ec == error_code(ENFILE, boost::system::system_category()) ||
         ec == error_code(ENOMEM, boost::system::system_category());
}

// TCP_NODELAY and the keepalive settings go on the listening socket: Linux copies them to
// every connection it accepts, which spares five setsockopt(2) per connection.
void set_accepted_options(tcp::acceptor& acceptor, const KeepAlive& keepalive) {
  error_code ignored;
  acceptor.set_option(tcp::no_delay(true), ignored);
  set_keepalive(acceptor.native_handle(), keepalive);
}

class TcpListener final : public Listener {
 public:
  TcpListener(tcp::acceptor acceptor, KeepAlive keepalive) : acceptor_(std::move(acceptor)) {
    set_accepted_options(acceptor_, keepalive);
  }

  asio::awaitable<Result<StreamPtr>> accept() override {
    for (;;) {
      tcp::endpoint peer;
      auto [ec, socket] = co_await acceptor_.async_accept(peer, kUseTuple);
      if (!ec) co_return StreamPtr(std::make_unique<TcpStream>(std::move(socket), peer));
      // Out of descriptors or memory: the service backs off and says so. A client that
      // reset before accept concerns that client only.
      if (ec == asio::error::operation_aborted || !acceptor_.is_open() || out_of_resources(ec)) co_return ec;
    }
  }

  std::vector<StreamPtr> take_pending() override {
    std::vector<StreamPtr> pending;
    error_code ec;
    acceptor_.non_blocking(true, ec);
    while (!ec) {
      tcp::socket socket(acceptor_.get_executor());
      tcp::endpoint peer;
      acceptor_.accept(socket, peer, ec);
      if (ec) break;
      pending.push_back(std::make_unique<TcpStream>(std::move(socket), peer));
      ec = {};
    }
    return pending;
  }

  void update(const ListenOptions& options) override {
    set_accepted_options(acceptor_, options.keepalive);
    // listen(2) on a listening socket changes its backlog and keeps its queue.
    error_code ignored;
    acceptor_.listen(options.backlog, ignored);
  }

  void close() override {
    error_code ignored;
    acceptor_.close(ignored);
  }

  common::HostPort bound_address() const override {
    error_code ec;
    auto endpoint = acceptor_.local_endpoint(ec);
    return {endpoint.address().to_string(), endpoint.port()};
  }

  int native_handle() override { return acceptor_.is_open() ? acceptor_.native_handle() : -1; }

 private:
  tcp::acceptor acceptor_;
};

// Resolves a listen host to an endpoint; an empty host listens on every interface, IPv6
// and IPv4 both where the kernel allows.
Result<tcp::endpoint> listen_endpoint(const common::HostPort& address) {
  if (address.host.empty()) return tcp::endpoint(tcp::v6(), address.port);
  error_code ec;
  auto ip = asio::ip::make_address(address.host, ec);
  if (!ec) return tcp::endpoint(ip, address.port);
  asio::io_context io;
  tcp::resolver resolver(io);
  auto results = resolver.resolve(address.host, std::to_string(address.port), tcp::resolver::passive, ec);
  if (ec) return ec;
  return results.begin()->endpoint();
}

class TcpListenerFactory final : public ListenerFactory {
 public:
  Result<std::unique_ptr<Listener>> listen(asio::any_io_executor executor, const ListenOptions& options) override {
    if (options.inherited_fd >= 0) {
      auto v6 = is_ipv6_socket(options.inherited_fd);
      if (!v6) return v6.error();
      error_code ec;
      tcp::acceptor acceptor(executor);
      acceptor.assign(*v6 ? tcp::v6() : tcp::v4(), options.inherited_fd, ec);
      if (ec) return ec;
      acceptor.listen(options.backlog, ec);  // the same socket, this service's backlog
      if (ec) return ec;
      return std::unique_ptr<Listener>(std::make_unique<TcpListener>(std::move(acceptor), options.keepalive));
    }
    auto endpoint = listen_endpoint(options.address);
    if (!endpoint) return endpoint.error();
    tcp::acceptor acceptor(executor);
    error_code ec;
    bool any_v6 = options.address.host.empty();
    acceptor.open(endpoint->protocol(), ec);
    if (ec && any_v6) {  // no IPv6 on this host: fall back to IPv4 any
      *endpoint = tcp::endpoint(tcp::v4(), options.address.port);
      acceptor.open(endpoint->protocol(), ec);
    }
    if (ec) return ec;
    if (endpoint->protocol() == tcp::v6() && any_v6) acceptor.set_option(asio::ip::v6_only(false), ec);
    acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    int one = 1;
    if (::setsockopt(acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
      return error_code(errno, boost::system::system_category());
    }
    acceptor.bind(*endpoint, ec);
    if (ec) return ec;
    acceptor.listen(options.backlog, ec);
    if (ec) return ec;
    return std::unique_ptr<Listener>(std::make_unique<TcpListener>(std::move(acceptor), options.keepalive));
  }
};

class TcpDialer final : public Dialer {
 public:
  asio::awaitable<Result<StreamPtr>> dial(asio::any_io_executor executor, const std::string& address, Network network,
                                          const DialOptions& options) override {
    if (network != Network::kTcp) co_return asio::error::operation_not_supported;
    auto socket = co_await connect_tcp(executor, address, options);
    if (!socket) co_return socket.error();
    co_return StreamPtr(std::make_unique<TcpStream>(std::move(*socket)));
  }
};

}  // namespace

TcpStream::TcpStream(tcp::socket socket, std::optional<tcp::endpoint> remote)
    : socket_(std::move(socket)), remote_(remote) {}

void TcpStream::shutdown_send() {
  error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_send, ignored);
}

void TcpStream::close() {
  error_code ignored;
  socket_.close(ignored);
}

std::string TcpStream::remote_address() const {
  return remote_ ? endpoint_to_string(*remote_) : address_or_unknown(socket_, true);
}
std::string TcpStream::local_address() const { return address_or_unknown(socket_, false); }

void TcpStream::do_read_some(asio::mutable_buffer buffer, common::IoHandler handler) {
  socket_.async_read_some(buffer, std::move(handler));
}

void TcpStream::do_write_some(asio::const_buffer buffer, common::IoHandler handler) {
  socket_.async_write_some(buffer, std::move(handler));
}

void TcpStream::do_wait_readable(common::WaitHandler handler) {
  socket_.async_wait(tcp::socket::wait_read, std::move(handler));
}

std::string endpoint_to_string(const tcp::endpoint& endpoint) {
  auto ip = endpoint.address();
  if (ip.is_v6() && ip.to_v6().is_v4_mapped()) ip = asio::ip::make_address_v4(asio::ip::v4_mapped, ip.to_v6());
  return common::HostPort{ip.to_string(), endpoint.port()}.to_string();
}

Result<bool> is_ipv6_socket(int fd) {
  sockaddr_storage address{};
  socklen_t size = sizeof address;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) != 0) {
    return Result<bool>(boost::system::in_place_error, errno, boost::system::system_category());
  }
  return address.ss_family == AF_INET6;
}

void set_keepalive(int fd, const KeepAlive& keepalive) {
  int on = keepalive.enabled ? 1 : 0;
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  if (!keepalive.enabled) return;
  int idle = static_cast<int>(keepalive.idle.count());
  int interval = static_cast<int>(keepalive.interval.count());
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &keepalive.count, sizeof keepalive.count);
}

asio::awaitable<Result<tcp::socket>> connect_tcp(asio::any_io_executor executor, const std::string& address,
                                                 const DialOptions& options) {
  const auto timeout = options.timeout;
  auto target = common::parse_host_port(address);
  if (!target.ok()) co_return asio::error::invalid_argument;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto addresses = co_await Resolver::shared().resolve(target->host, AddressFamily::kAny, deadline);
  if (!addresses) co_return addresses.error();
  std::vector<tcp::endpoint> endpoints;
  for (const auto& ip : *addresses) endpoints.emplace_back(ip, target->port);
  tcp::socket socket(executor);
  asio::steady_timer timer(executor, deadline);
  auto connected = co_await (asio::async_connect(socket, endpoints, kUseTuple) || timer.async_wait(kUseTuple));
  if (connected.index() == 1) co_return asio::error::timed_out;
  error_code ec = std::get<0>(std::get<0>(connected));
  if (ec) co_return ec;
  socket.set_option(tcp::no_delay(true), ec);
  set_keepalive(socket.native_handle(), options.keepalive);
  co_return std::move(socket);
}

std::unique_ptr<ListenerFactory> make_tcp_listener_factory() { return std::make_unique<TcpListenerFactory>(); }
std::unique_ptr<Dialer> make_tcp_dialer() { return std::make_unique<TcpDialer>(); }

}  // namespace strait::agent
