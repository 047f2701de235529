#include "agent/handler/relay_bind.h"

#include <memory>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "agent/channel/smux_session.h"
#include "agent/channel/tcp.h"
#include "agent/net/buffers.h"
#include "agent/observe/session_log.h"
#include "agent/protocol/relay.h"
#include "agent/protocol/socks5.h"
#include "agent/wire/message_io.h"
#include "agent/wire/udp_tun_frames.h"
#include "common/log_escape.h"
#include "common/prefixed_stream.h"
#include "common/strings.h"

namespace strait::agent {
namespace {

using namespace asio::experimental::awaitable_operators;
using asio::ip::tcp;
using asio::ip::udp;
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
constexpr int kListenBacklog = 128;

std::string response(uint8_t status, const std::optional<common::HostPort>& address = std::nullopt) {
  // An Addr feature of an IP literal always encodes.
  return *relay_wire::encode_response(relay_wire::Response{.status = status, .address = address});
}

// IPv4 peers of a dual-stack socket arrive as ::ffff:a.b.c.d; GOST names them as IPv4.
asio::ip::address unmapped(const asio::ip::address& address) {
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
  }
  return address;
}

common::HostPort host_port(const asio::ip::address& address, uint16_t port) {
  return {unmapped(address).to_string(), port};
}

// The address GOST's net.Listen would take: an IP literal, or every interface (IPv6 with IPv4
// mapped when the host has IPv6) for an empty host. A name is refused: the client would not
// know which of its addresses we took.
Result<asio::ip::address> bind_ip(const std::string& host) {
  if (host.empty()) return asio::ip::address(asio::ip::address_v6::any());
  error_code error;
  auto ip = asio::ip::make_address(host, error);
  if (error) return asio::error::invalid_argument;
  return ip;
}

template <typename Socket, typename Endpoint>
error_code open_and_bind(Socket& socket, Endpoint endpoint) {
  error_code error;
  socket.open(endpoint.protocol(), error);
  if (!error && endpoint.address().is_v6() && endpoint.address().is_unspecified()) {
    socket.set_option(asio::ip::v6_only(false), error);
  }
  if (error && endpoint.address().is_unspecified() && endpoint.address().is_v6()) {
    // No IPv6 on this host: every IPv4 interface instead.
    socket = Socket(socket.get_executor());
    endpoint.address(asio::ip::address_v4::any());
    socket.open(endpoint.protocol(), error);
  }
  if constexpr (std::is_same_v<Socket, tcp::acceptor>) {
    if (!error) socket.set_option(tcp::acceptor::reuse_address(true), error);
  }
  if (!error) socket.bind(endpoint, error);
  return error;
}

// One inbound connection on a bound port, carried on a new stream of the BIND's session.
// Holds what it needs by value: it may outlive the handler's coroutine by a moment.
asio::awaitable<void> carry_inbound(std::shared_ptr<SmuxSession> session, StreamPtr inbound, common::HostPort peer,
                                    std::string service, std::shared_ptr<ServiceStats> stats,
                                    RelayOptions relay_options, std::string target) {
  SessionLog log(service, stats.get(), *inbound);
  log.set_target(std::move(target));
  auto stream = co_await session->open_stream();
  if (!stream) {
    log.finish(stream.error());
    co_return;
  }
  // GOST's bind listener reads this response first: it names the inbound peer.
  const std::string header = response(relay_wire::status::kOk, peer);
  if (auto write_error = co_await write_message(**stream, header)) {
    log.finish(write_error);
    co_return;
  }
  log.finish(co_await relay(*inbound, **stream, relay_options));
}

asio::awaitable<void> accept_inbound(tcp::acceptor& acceptor, std::shared_ptr<SmuxSession> session,
                                     const HandlerContext& ctx, std::string target) {
  for (;;) {
    auto [error, socket] = co_await acceptor.async_accept(kUseTuple);
    if (error) {
      if (error == asio::error::operation_aborted) co_return;
      // Out of descriptors or similar: the next accept may work once some are given back.
      spdlog::warn("{}: {}: accept failed: {}", ctx.service, target, error.message());
      asio::steady_timer pause(acceptor.get_executor(), std::chrono::milliseconds(100));
      co_await pause.async_wait(kUseTuple);
      continue;
    }
    auto peer = socket.remote_endpoint(error);
    if (error) continue;  // gone already
    set_keepalive(socket.native_handle(), KeepAlive{});
    asio::co_spawn(acceptor.get_executor(),
                   carry_inbound(session, std::make_unique<TcpStream>(std::move(socket)),
                                 host_port(peer.address(), peer.port()), ctx.service, ctx.stats, ctx.relay, target),
                   asio::detached);
  }
}

// The client is the smux server of a BIND and has no reason to open streams: any it opens is
// closed. Returns once the session has ended.
asio::awaitable<void> refuse_client_streams(SmuxSession& session) {
  for (;;) {
    auto stream = co_await session.accept_stream();
    if (!stream) co_return;
    (*stream)->close();
  }
}

}  // namespace

asio::awaitable<void> serve_relay_bind_tcp(StreamPtr client, common::HostPort address, std::string early,
                                           smux::Config mux, const HandlerContext& ctx) {
  const std::string peer = client->remote_address();
  SessionLog log(ctx.service, ctx.stats.get(), *client);
  log.set_target(common::str_cat("BIND tcp ", address.to_string()));
  auto ip = bind_ip(address.host);
  if (!ip) {
    spdlog::warn("{}: {}: relay: refused BIND on \"{}\": not an IP address", ctx.service, peer,
                 common::text_escaped(address.host));
    co_await write_message(*client, response(relay_wire::status::kBadRequest));
    log.finish(ip.error());
    co_return;
  }
  tcp::acceptor acceptor(client->get_executor());
  auto error = open_and_bind(acceptor, tcp::endpoint(*ip, address.port));
  if (!error) acceptor.listen(kListenBacklog, error);
  if (error) {
    spdlog::warn("{}: {}: relay: BIND on {} failed: {}", ctx.service, peer, address.to_string(), error.message());
    co_await write_message(*client, response(relay_wire::status::kServiceUnavailable));
    log.finish(error);
    co_return;
  }
  auto bound = acceptor.local_endpoint(error);
  const common::HostPort bound_address = host_port(bound.address(), bound.port());
  const std::string target = common::str_cat("BIND tcp ", bound_address.to_string());
  log.set_target(target);
  const std::string ok = response(relay_wire::status::kOk, bound_address);
  if (auto write_error = co_await write_message(*client, ok)) {
    log.finish(write_error);
    co_return;
  }
  spdlog::info("{}: {}: relay: listening on {} for the client", ctx.service, peer, bound_address.to_string());
  auto session = SmuxSession::start(common::with_prefix(std::move(client), std::move(early)), /*client=*/true, mux);
  co_await (accept_inbound(acceptor, session, ctx, common::str_cat(target, " for ", peer)) ||
            refuse_client_streams(*session));
  session->close();
  // The inbound connections have lines of their own; this one says when the bind ended.
  log.finish(RelayResult{});
}

namespace {

// Both directions of a UDP BIND, sharing the socket and the idle clock.
class UdpBind {
 public:
  UdpBind(Stream& client, udp::socket socket, std::string log_prefix, std::chrono::nanoseconds idle_timeout)
      : client_(client),
        socket_(std::move(socket)),
        log_prefix_(std::move(log_prefix)),
        idle_timeout_(idle_timeout),
        idle_timer_(socket_.get_executor()) {}

  asio::awaitable<RelayResult> run(std::string received) {
    if (idle_timeout_.count() > 0) {
      co_await (uplink(std::move(received)) || downlink() || watch_idle());
    } else {
      co_await (uplink(std::move(received)) || downlink());
    }
    if (dropped_ > 1) spdlog::info("{}: {} frames dropped in all", log_prefix_, dropped_);
    co_return result_;
  }

 private:
  // Frames from the client go out of the bound socket.
  asio::awaitable<void> uplink(std::string received) {
    auto end = co_await read_udp_tun_frames(client_, received,
                                            [this](const common::HostPort& target, std::span<const uint8_t> payload) {
                                              return send(target, payload);
                                            });
    if (!end.reason.empty()) {
      spdlog::warn("{}: bad frame, closing: {}", log_prefix_, end.reason);
      result_.error = asio::error::invalid_argument;
    } else if (end.error != asio::error::eof) {
      result_.error = end.error;
    }
  }

  asio::awaitable<void> send(const common::HostPort& target, std::span<const uint8_t> payload) {
    error_code error;
    auto ip = asio::ip::make_address(target.host, error);
    if (error) {
      note_drop(common::str_cat("dropped a datagram for \"", common::text_escaped(target.host),
                                "\": a UDP BIND sends to IP addresses only"));
      co_return;
    }
    if (socket_.local_endpoint(error).protocol() == udp::v6() && ip.is_v4()) {
      ip = asio::ip::make_address_v6(asio::ip::v4_mapped, ip.to_v4());
    }
    auto [send_error, n] = co_await socket_.async_send_to(asio::buffer(payload.data(), payload.size()),
                                                           udp::endpoint(ip, target.port), kUseTuple);
    if (send_error) {
      note_drop(common::str_cat("sending to ", target.to_string(), " failed: ", send_error.message()));
      co_return;
    }
    result_.bytes_from_client += n;
    last_activity_ = std::chrono::steady_clock::now();
  }

  // Datagrams from anywhere come back to the client, framed with their source.
  asio::awaitable<void> downlink() {
    for (;;) {
      // A buffer only while a datagram is there: an idle bind holds none.
      auto [wait_error] = co_await socket_.async_wait(udp::socket::wait_read, kUseTuple);
      if (wait_error) co_return;
      auto& buffers = DatagramBuffers::this_thread();
      auto datagram = buffers.take();
      udp::endpoint source;
      auto [error, n] = co_await socket_.async_receive_from(asio::buffer(datagram.get(), DatagramBuffers::kBufferSize),
                                                            source, kUseTuple);
      absl::StatusOr<std::string> frame = absl::InternalError("unread");
      if (!error) {
        // An empty datagram cannot be framed (a zero length means "to the end").
        frame = socks5::encode_udp_tun_frame(host_port(source.address(), source.port()), std::span(datagram.get(), n));
      }
      buffers.give_back(std::move(datagram));
      if (error) {
        // A port unreachable from an earlier send: the socket still works.
        if (error == asio::error::connection_refused) continue;
        result_.error = error;
        co_return;
      }
      if (!frame.ok()) continue;
      if (auto write_error = co_await write_message(client_, *frame)) {
        result_.error = write_error;
        co_return;
      }
      result_.bytes_to_client += n;
      last_activity_ = std::chrono::steady_clock::now();
    }
  }

  asio::awaitable<void> watch_idle() {
    for (;;) {
      idle_timer_.expires_at(last_activity_ + idle_timeout_);
      co_await idle_timer_.async_wait(kUseTuple);
      if (std::chrono::steady_clock::now() - last_activity_ >= idle_timeout_) {
        result_.idle_timeout = true;
        co_return;
      }
    }
  }

  // The first bad frame of a bind is logged; later ones only counted.
  void note_drop(const std::string& reason) {
    if (dropped_++ == 0) spdlog::warn("{}: {}", log_prefix_, reason);
  }

  Stream& client_;
  udp::socket socket_;
  std::string log_prefix_;
  std::chrono::nanoseconds idle_timeout_;
  asio::steady_timer idle_timer_;
  std::chrono::steady_clock::time_point last_activity_ = std::chrono::steady_clock::now();
  RelayResult result_;
  size_t dropped_ = 0;
};

}  // namespace

asio::awaitable<void> serve_relay_bind_udp(StreamPtr client, common::HostPort address, std::string early,
                                           const HandlerContext& ctx) {
  const std::string peer = client->remote_address();
  SessionLog log(ctx.service, ctx.stats.get(), *client);
  log.set_target(common::str_cat("BIND udp ", address.to_string()));
  auto ip = bind_ip(address.host);
  if (!ip) {
    spdlog::warn("{}: {}: relay: refused UDP BIND on \"{}\": not an IP address", ctx.service, peer,
                 common::text_escaped(address.host));
    co_await write_message(*client, response(relay_wire::status::kBadRequest));
    log.finish(ip.error());
    co_return;
  }
  udp::socket socket(client->get_executor());
  auto error = open_and_bind(socket, udp::endpoint(*ip, address.port));
  if (error) {
    spdlog::warn("{}: {}: relay: UDP BIND on {} failed: {}", ctx.service, peer, address.to_string(), error.message());
    co_await write_message(*client, response(relay_wire::status::kServiceUnavailable));
    log.finish(error);
    co_return;
  }
  auto bound = socket.local_endpoint(error);
  const common::HostPort bound_address = host_port(bound.address(), bound.port());
  log.set_target(common::str_cat("BIND udp ", bound_address.to_string()));
  const std::string ok = response(relay_wire::status::kOk, bound_address);
  if (auto write_error = co_await write_message(*client, ok)) {
    log.finish(write_error);
    co_return;
  }
  UdpBind bind(*client, std::move(socket), common::str_cat(ctx.service, ": ", peer, ": UDP BIND ", bound_address.to_string()),
               ctx.relay.idle_timeout);
  log.finish(co_await bind.run(std::move(early)));
}

}  // namespace strait::agent
