#include "agent/handler/socks5_udp.h"

#include <optional>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "agent/net/buffers.h"
#include "agent/wire/message_io.h"
#include "agent/wire/udp_tun_frames.h"
#include "common/strings.h"

namespace strait::agent {
namespace {

using namespace asio::experimental::awaitable_operators;
using asio::ip::udp;
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

std::span<const uint8_t> bytes_of(const std::string& text) {
  return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

asio::ip::address ip_or_any(std::string_view host) {
  error_code ec;
  auto address = asio::ip::make_address(host, ec);
  return ec ? asio::ip::address(asio::ip::address_v4::any()) : address;
}

RelayResult totals(const UdpAssociation& association) {
  RelayResult result;
  result.bytes_from_client = association.bytes_from_client();
  result.bytes_to_client = association.bytes_to_client();
  return result;
}

// The client side of one UDP ASSOCIATE: its relay socket and what it has learnt.
class AssociateRelay {
 public:
  AssociateRelay(Stream& client, udp::socket socket, udp::endpoint expected, std::shared_ptr<UdpAssociation> association,
                 std::string log_prefix)
      : client_(client),
        socket_(std::move(socket)),
        expected_(expected),
        association_(std::move(association)),
        log_prefix_(std::move(log_prefix)) {}

  asio::awaitable<void> run() { co_await (watch_control() && uplink() && downlink()); }
  size_t dropped() const { return dropped_; }

 private:
  // The association lives as long as its TCP connection (RFC 1928 §7).
  asio::awaitable<void> watch_control() {
    char chunk[512];
    for (;;) {
      auto [error, n] = co_await client_.async_read_some(asio::buffer(chunk), kUseTuple);
      if (error) break;
    }
    error_code ignored;
    socket_.close(ignored);
    association_->close();
  }

  asio::awaitable<void> uplink() {
    for (;;) {
      // A buffer only while a datagram is there: an idle association holds none.
      auto [wait_error] = co_await socket_.async_wait(udp::socket::wait_read, kUseTuple);
      if (wait_error) break;
      auto& buffers = DatagramBuffers::this_thread();
      auto datagram = buffers.take();
      bool more = co_await take_one(datagram.get());
      buffers.give_back(std::move(datagram));
      if (!more) break;
    }
    client_.close();
    association_->close();
  }

  // Reads one datagram from the client and sends it on; false once the socket is closed.
  asio::awaitable<bool> take_one(uint8_t* datagram) {
    {
      udp::endpoint from;
      auto [error, n] =
          co_await socket_.async_receive_from(asio::buffer(datagram, DatagramBuffers::kBufferSize), from, kUseTuple);
      if (error) co_return false;
      if (from.address() != expected_.address() || (expected_.port() != 0 && from.port() != expected_.port())) {
        co_return true;
      }
      auto header = socks5::parse_udp_header(std::span(datagram, n));
      if (header.state != ParseState::kComplete) {
        note_drop(common::str_cat("malformed datagram from ", from.address().to_string(), ":", from.port(), ": ",
                                  header.reason));
        co_return true;
      }
      if (header.value.fragment != 0) {
        note_drop(common::str_cat("fragmented datagram (FRAG ", int{header.value.fragment},
                                  ") dropped: fragmentation is not supported"));
        co_return true;
      }
      client_endpoint_ = from;
      co_await association_->send(header.value.address, std::span(datagram + header.size, n - header.size));
      co_return true;
    }
  }

  asio::awaitable<void> downlink() {
    for (;;) {
      auto answer = co_await association_->receive();
      if (!answer) break;
      if (!client_endpoint_) continue;
      auto header = socks5::encode_udp_header(answer->source);
      if (!header.ok()) continue;
      std::array<asio::const_buffer, 2> datagram = {asio::buffer(*header), asio::buffer(answer->payload)};
      co_await socket_.async_send_to(datagram, *client_endpoint_, kUseTuple);
    }
    // The association ended (idle, or closed): so does its control connection.
    client_.close();
  }

  // The first bad datagram of an association is logged; later ones only counted, so a
  // flood cannot flood the log.
  void note_drop(const std::string& reason) {
    if (dropped_++ == 0) spdlog::warn("{}: {}", log_prefix_, reason);
  }

  Stream& client_;
  udp::socket socket_;
  udp::endpoint expected_;
  std::shared_ptr<UdpAssociation> association_;
  std::string log_prefix_;
  std::optional<udp::endpoint> client_endpoint_;
  size_t dropped_ = 0;
};

// One of the service's open associations, given back when it ends. Holding none (the
// limit reached) means the request is refused.
class AssociationSlot {
 public:
  AssociationSlot(const HandlerContext& ctx, size_t limit) : stats_(ctx.stats.get()) {
    if (stats_ == nullptr || limit == 0) return;
    if (stats_->udp_associations.fetch_add(1, std::memory_order_relaxed) >= limit) {
      stats_->udp_associations.fetch_sub(1, std::memory_order_relaxed);
      stats_ = nullptr;
      refused_ = true;
    }
  }
  ~AssociationSlot() {
    if (stats_ != nullptr) stats_->udp_associations.fetch_sub(1, std::memory_order_relaxed);
  }
  AssociationSlot(const AssociationSlot&) = delete;
  AssociationSlot& operator=(const AssociationSlot&) = delete;
  bool refused() const { return refused_; }

 private:
  ServiceStats* stats_;
  bool refused_ = false;
};

asio::awaitable<bool> refuse_when_full(const AssociationSlot& slot, Stream& client, const HandlerContext& ctx,
                                       const UdpAssociation::Limits& limits, SessionLog& session) {
  if (!slot.refused()) co_return false;
  spdlog::warn("{}: {}: socks5: refused UDP relay: {} associations open, the limit (udp.maxAssociations)", ctx.service,
               client.remote_address(), limits.max_associations);
  co_await write_message(client, socks5::encode_reply(socks5::reply::kGeneralFailure));
  session.finish(asio::error::no_buffer_space);
  co_return true;
}

}  // namespace

asio::awaitable<void> serve_udp_associate(StreamPtr client, const socks5::Request& request,
                                          const HandlerContext& ctx, UdpAssociation::Limits limits,
                                          SessionLog& session) {
  AssociationSlot slot(ctx, limits.max_associations);
  if (co_await refuse_when_full(slot, *client, ctx, limits, session)) co_return;
  limits.idle_timeout = ctx.relay.idle_timeout;
  auto executor = client->get_executor();
  const std::string peer = client->remote_address();
  auto local_ip = ip_or_any(socks5::host_port_or_any(client->local_address()).host);
  udp::socket socket(executor);
  error_code error;
  socket.open(local_ip.is_v4() ? udp::v4() : udp::v6(), error);
  if (!error) socket.bind(udp::endpoint(local_ip, 0), error);
  if (error) {
    co_await write_message(*client, socks5::encode_reply(socks5::reply::kGeneralFailure));
    session.finish(error);
    co_return;
  }
  common::HostPort relay_address{local_ip.to_string(), socket.local_endpoint(error).port()};
  session.set_target(common::str_cat("UDP ASSOCIATE ", relay_address.to_string()));
  if (auto write_error = co_await write_message(*client, socks5::encode_reply(socks5::reply::kSucceeded, relay_address))) {
    session.finish(write_error);
    co_return;
  }
  // Datagrams are taken from the client's IP only; from its announced port when it gave one.
  udp::endpoint expected(ip_or_any(socks5::host_port_or_any(peer).host), request.address.port);
  std::string log_prefix = common::str_cat(ctx.service, ": ", peer, ": UDP ASSOCIATE");
  auto association = std::make_shared<UdpAssociation>(executor, ctx.router, log_prefix, limits);
  AssociateRelay relay(*client, std::move(socket), expected, association, log_prefix);
  co_await relay.run();
  if (relay.dropped() > 1) spdlog::info("{}: {} datagrams dropped in all", log_prefix, relay.dropped());
  session.finish(totals(*association));
}

namespace {

asio::awaitable<void> tun_uplink(Stream& client, std::string& received, UdpAssociation& association,
                                 const std::string& log_prefix) {
  auto end = co_await read_udp_tun_frames(
      client, received, [&](const common::HostPort& target, std::span<const uint8_t> payload) {
        return association.send(target, payload);
      });
  if (!end.reason.empty()) spdlog::warn("{}: bad frame, closing: {}", log_prefix, end.reason);
  association.close();
}

asio::awaitable<void> tun_downlink(Stream& client, UdpAssociation& association) {
  for (;;) {
    auto answer = co_await association.receive();
    if (!answer) break;
    auto frame = socks5::encode_udp_tun_frame(answer->source, bytes_of(answer->payload));
    if (!frame.ok()) continue;  // an empty datagram cannot be framed
    if (co_await write_message(client, *frame)) break;
  }
  client.close();
}

}  // namespace

asio::awaitable<void> serve_udp_tun(StreamPtr client, std::string buffered, const HandlerContext& ctx,
                                    UdpAssociation::Limits limits, SessionLog& session) {
  AssociationSlot slot(ctx, limits.max_associations);
  if (co_await refuse_when_full(slot, *client, ctx, limits, session)) co_return;
  limits.idle_timeout = ctx.relay.idle_timeout;
  const std::string peer = client->remote_address();
  session.set_target("UDP tunnel");
  // GOST clients ignore the address of a relay-mode reply; this host's address is honest.
  common::HostPort local{socks5::host_port_or_any(client->local_address()).host, 0};
  if (auto write_error = co_await write_message(*client, socks5::encode_reply(socks5::reply::kSucceeded, local))) {
    session.finish(write_error);
    co_return;
  }
  std::string log_prefix = common::str_cat(ctx.service, ": ", peer, ": UDP tunnel");
  auto association = std::make_shared<UdpAssociation>(client->get_executor(), ctx.router, log_prefix, limits);
  co_await (tun_uplink(*client, buffered, *association, log_prefix) && tun_downlink(*client, *association));
  session.finish(totals(*association));
}

}  // namespace strait::agent
