#include "agent/handler/socks_commands.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "agent/channel/tcp.h"
#include "agent/handler/handler_options.h"
#include "agent/wire/message_io.h"
#include "agent/protocol/socks5.h"
#include "common/strings.h"

namespace strait::agent {
namespace {

using namespace asio::experimental::awaitable_operators;
using asio::ip::tcp;
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
// Replies without an address. Named, because GCC 12 may destroy a braced aggregate
// temporary in a co_await expression twice.
const common::HostPort kNoAddress{"0.0.0.0", 0};
// Bytes a client may send for the peer before the peer connects.
constexpr size_t kMaxEarlyBytes = 64 * 1024;

std::optional<asio::ip::address> ip_of(std::string_view text) {
  auto parsed = common::parse_host_port(text, true);
  if (!parsed.ok()) return std::nullopt;
  error_code ec;
  auto address = asio::ip::make_address(parsed->host, ec);
  if (ec) return std::nullopt;
  return address;
}

// Reads the control connection while the peer is awaited: it ends when the client goes away
// or sends more than a peer could be owed.
asio::awaitable<error_code> watch_control(Stream& client, std::string& early) {
  char chunk[4096];
  for (;;) {
    auto [error, n] = co_await client.async_read_some(asio::buffer(chunk), kUseTuple);
    if (error) co_return error;
    early.append(chunk, n);
    if (early.size() > kMaxEarlyBytes) co_return asio::error::message_size;
  }
}

asio::awaitable<error_code> write_early(Stream& target, const std::string& early) {
  if (early.empty()) co_return error_code{};
  co_return co_await write_message(target, early);
}

}  // namespace

absl::StatusOr<SocksOptions> parse_socks_options(const common::Metadata& metadata) {
  SocksOptions options;
  auto timeout = handler_read_timeout(metadata);
  if (!timeout.ok()) return timeout.status();
  options.read_timeout = *timeout;
  auto bind = handler_flag(metadata, "bind");
  if (!bind.ok()) return bind.status();
  options.bind = *bind;
  return options;
}

asio::awaitable<void> serve_connect(StreamPtr client, const common::HostPort& target, std::string early,
                                    SocksReplyEncoder encode_reply, const HandlerContext& ctx, SessionLog& session) {
  auto upstream = co_await ctx.router->dial(client->get_executor(), Network::kTcp, target.to_string(), target.host);
  if (!upstream) {
    co_await write_message(*client, encode_reply(upstream.error(), kNoAddress));
    session.finish(upstream.error());
    co_return;
  }
  auto bound = socks5::host_port_or_any((*upstream)->local_address());
  if (auto error = co_await write_message(*client, encode_reply({}, bound))) {
    session.finish(error);
    co_return;
  }
  if (auto error = co_await write_early(**upstream, early)) {
    session.finish(error);
    co_return;
  }
  relay_then_log(std::move(client), std::move(*upstream), ctx.relay, std::move(session));
}

asio::awaitable<void> serve_bind(StreamPtr client, std::string early, const common::HostPort& expected_peer,
                                 SocksReplyEncoder encode_reply, const HandlerContext& ctx, SessionLog& session) {
  auto executor = client->get_executor();
  auto local_ip = ip_of(client->local_address()).value_or(asio::ip::address_v4::any());
  tcp::acceptor acceptor(executor);
  error_code error;
  tcp::endpoint endpoint(local_ip, 0);
  acceptor.open(endpoint.protocol(), error);
  if (!error) acceptor.bind(endpoint, error);
  if (!error) acceptor.listen(1, error);
  if (error) {
    co_await write_message(*client, encode_reply(error, kNoAddress));
    session.finish(error);
    co_return;
  }
  auto bound = acceptor.local_endpoint(error);
  common::HostPort bound_address{local_ip.to_string(), bound.port()};
  session.set_target(common::str_cat("BIND ", bound_address.to_string()));
  if (auto write_error = co_await write_message(*client, encode_reply({}, bound_address))) {
    session.finish(write_error);
    co_return;
  }

  error_code expected_error;
  auto expected_ip = asio::ip::make_address(expected_peer.host, expected_error);
  bool check_peer = !expected_error && !expected_ip.is_unspecified();
  asio::steady_timer timer(executor, kBindAcceptTimeout);
  std::optional<tcp::socket> peer;
  while (!peer) {
    auto outcome = co_await (acceptor.async_accept(kUseTuple) || watch_control(*client, early) ||
                             timer.async_wait(kUseTuple));
    if (outcome.index() == 1) {
      session.finish(std::get<1>(outcome));
      co_return;
    }
    if (outcome.index() == 2) {
      spdlog::info("{}: {}: BIND on {}: no peer connected within {}s", ctx.service, client->remote_address(),
                   bound_address.to_string(), kBindAcceptTimeout.count());
      co_await write_message(*client, encode_reply(asio::error::timed_out, bound_address));
      session.finish(asio::error::timed_out);
      co_return;
    }
    auto [accept_error, socket] = std::get<0>(std::move(outcome));
    if (accept_error) {
      co_await write_message(*client, encode_reply(accept_error, bound_address));
      session.finish(accept_error);
      co_return;
    }
    auto remote = socket.remote_endpoint(accept_error);
    if (check_peer && (accept_error || remote.address() != expected_ip)) {
      spdlog::warn("{}: {}: BIND on {}: refused a connection from {}, expected {}", ctx.service,
                   client->remote_address(), bound_address.to_string(), endpoint_to_string(remote),
                   expected_ip.to_string());
      continue;
    }
    peer.emplace(std::move(socket));
  }
  acceptor.close(error);
  auto peer_endpoint = peer->remote_endpoint(error);
  common::HostPort peer_address{peer_endpoint.address().to_string(), peer_endpoint.port()};
  TcpStream peer_stream(std::move(*peer));
  if (auto write_error = co_await write_message(*client, encode_reply({}, peer_address))) {
    session.finish(write_error);
    co_return;
  }
  if (auto write_error = co_await write_early(peer_stream, early)) {
    session.finish(write_error);
    co_return;
  }
  session.finish(co_await relay(*client, peer_stream, ctx.relay));
}

}  // namespace strait::agent
