#include "agent/handler/forward_target.h"

#include <gtest/gtest.h>

#include "agent/channel/tcp.h"
#include "agent/protocol/proxy_error.h"
#include "support/asio_test.h"

namespace strait::agent {
namespace {

using testing::run_for;

std::shared_ptr<HandlerContext> context_with(std::vector<std::string> targets, Strategy strategy) {
  auto context = std::make_shared<HandlerContext>();
  context->service = "service-0";
  context->router = std::make_shared<Router>(nullptr, 0, DialOptions{});
  auto forwarder = std::make_shared<Forwarder>();
  for (size_t i = 0; i < targets.size(); ++i) forwarder->names.push_back("target-" + std::to_string(i));
  forwarder->selector =
      std::make_unique<Selector>(SelectorOptions{strategy, 1, std::chrono::seconds(30)}, targets.size());
  forwarder->targets = std::move(targets);
  context->forwarder = forwarder;
  return context;
}

// Dials the context's targets for a client connected from `client_host`; the target's port.
asio::awaitable<Result<uint16_t>> dial_from(const HandlerContext& ctx, const std::string& client_host,
                                            uint16_t server_port) {
  auto executor = co_await asio::this_coro::executor;
  asio::ip::tcp::socket client(executor, {asio::ip::make_address(client_host), 0});
  co_await client.async_connect({asio::ip::make_address("127.0.0.1"), server_port}, asio::use_awaitable);
  TcpStream stream(std::move(client));
  SessionLog session(ctx.service, nullptr, stream);
  auto target = co_await dial_forward_target(stream, ctx, Network::kTcp, session);
  if (!target) co_return target.error();
  co_return common::parse_host_port((*target)->remote_address())->port;
}

TEST(ForwardTarget, FailedTargetIsMarkedAndTheNextOneServes) {
  asio::io_context io;
  auto live = testing::loopback_acceptor(io);
  auto listener = testing::loopback_acceptor(io);
  auto context = context_with({testing::closed_loopback_address(io), testing::address_of(live)}, Strategy::kFifo);
  run_for(io, [&]() -> asio::awaitable<void> {
    auto port = co_await dial_from(*context, "127.0.0.1", listener.local_endpoint().port());
    EXPECT_TRUE(port && *port == live.local_endpoint().port()) << "another target served";
  }());
  EXPECT_TRUE(context->forwarder->selector->excluded(0));
  EXPECT_FALSE(context->forwarder->selector->excluded(1));
}

TEST(ForwardTarget, NoTargetAnsweringIsAnErrorAndMarksEveryOne) {
  asio::io_context io;
  auto listener = testing::loopback_acceptor(io);
  auto context = context_with({testing::closed_loopback_address(io), testing::closed_loopback_address(io)},
                              Strategy::kRound);
  run_for(io, [&]() -> asio::awaitable<void> {
    auto port = co_await dial_from(*context, "127.0.0.1", listener.local_endpoint().port());
    EXPECT_FALSE(port) << "dialed a closed port";
  }());
  EXPECT_TRUE(context->forwarder->selector->excluded(0));
  EXPECT_TRUE(context->forwarder->selector->excluded(1));
}

// The hash strategy keys on the client's host, not its port: one client host keeps its
// target over many connections.
TEST(ForwardTarget, HashKeepsAClientHostOnOneTarget) {
  asio::io_context io;
  auto a = testing::loopback_acceptor(io);
  auto b = testing::loopback_acceptor(io);
  auto c = testing::loopback_acceptor(io);
  auto listener = testing::loopback_acceptor(io);
  auto context = context_with({testing::address_of(a), testing::address_of(b), testing::address_of(c)}, Strategy::kHash);
  run_for(io, [&]() -> asio::awaitable<void> {
    for (const char* host : {"127.0.0.1", "127.0.0.2", "127.0.0.3"}) {
      auto first = co_await dial_from(*context, host, listener.local_endpoint().port());
      EXPECT_TRUE(first);
      for (int i = 0; i < 4 && first; ++i) {
        auto again = co_await dial_from(*context, host, listener.local_endpoint().port());
        EXPECT_TRUE(again && *again == *first) << host << " moved to another target";
      }
    }
  }());
}

}  // namespace
}  // namespace strait::agent
