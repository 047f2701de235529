#include "agent/chain/router.h"

#include <gtest/gtest.h>

#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>

#include <boost/asio/experimental/awaitable_operators.hpp>

#include "support/asio_test.h"

namespace strait::agent {
namespace {

using namespace asio::experimental::awaitable_operators;
using testing::kUseTuple;
using testing::run_for;

config::v1::Config chain_config(const std::vector<std::vector<std::string>>& hops) {
  config::v1::Config config;
  auto& chain = *config.add_chains();
  chain.set_name("chain-0");
  for (size_t h = 0; h < hops.size(); ++h) {
    auto& hop = *chain.add_hops();
    hop.set_name("hop-" + std::to_string(h));
    for (size_t n = 0; n < hops[h].size(); ++n) {
      auto& node = *hop.add_nodes();
      node.set_name("node-" + std::to_string(n));
      node.set_addr(hops[h][n]);
      node.mutable_connector()->set_type("http");
      node.mutable_dialer()->set_type("tcp");
    }
  }
  return config;
}

// A one-shot HTTP CONNECT proxy that records the target it was asked for and answers 200.
asio::awaitable<std::string> accept_connect(asio::ip::tcp::acceptor& acceptor) {
  auto socket = co_await acceptor.async_accept(asio::use_awaitable);
  std::string head;
  co_await asio::async_read_until(socket, asio::dynamic_buffer(head), "\r\n\r\n", kUseTuple);
  co_await asio::async_write(socket, asio::buffer(std::string("HTTP/1.1 200 OK\r\n\r\n")), kUseTuple);
  co_return head.substr(8, head.find(' ', 8) - 8);
}

TEST(Router, DialsDirectlyWithoutChain) {
  asio::io_context io;
  auto target = testing::loopback_acceptor(io);
  Router router(nullptr, 0, {});
  run_for(io, [&]() -> asio::awaitable<void> {
    auto stream = co_await router.dial(io.get_executor(), Network::kTcp, testing::address_of(target), "");
    EXPECT_TRUE(stream);
  }());
}

TEST(Router, FailedNodeGivesWayToTheNextNodeOfTheHop) {
  asio::io_context io;
  std::string dead_address = testing::closed_loopback_address(io);
  auto proxy = testing::loopback_acceptor(io);
  auto config = chain_config({{dead_address, testing::address_of(proxy)}});
  auto chain = build_chain(config.chains(0), config);
  ASSERT_TRUE(chain.ok()) << chain.status();
  Router router(*chain, 0, {});
  run_for(io, [&]() -> asio::awaitable<void> {
    auto [stream, asked] =
        co_await (router.dial(io.get_executor(), Network::kTcp, "target.example:80", "") && accept_connect(proxy));
    EXPECT_TRUE(stream);
    EXPECT_EQ(asked, "target.example:80");
  }());
  EXPECT_TRUE((*chain)->hops[0].selector->excluded(0));
  EXPECT_FALSE((*chain)->hops[0].selector->excluded(1));
}

TEST(Router, WalksHopsInOrder) {
  asio::io_context io;
  auto first = testing::loopback_acceptor(io);
  auto config = chain_config({{testing::address_of(first)}, {"second.example:8080"}});
  auto chain = build_chain(config.chains(0), config);
  ASSERT_TRUE(chain.ok());
  Router router(*chain, 0, {});
  run_for(io, [&]() -> asio::awaitable<void> {
    // Hop 0 is asked to connect to hop 1's node; hop 1 then gets the CONNECT for the target.
    auto hop_zero = [&]() -> asio::awaitable<std::pair<std::string, std::string>> {
      auto socket = co_await first.async_accept(asio::use_awaitable);
      std::string head;
      co_await asio::async_read_until(socket, asio::dynamic_buffer(head), "\r\n\r\n", kUseTuple);
      co_await asio::async_write(socket, asio::buffer(std::string("HTTP/1.1 200 OK\r\n\r\n")), kUseTuple);
      std::string second_head;
      co_await asio::async_read_until(socket, asio::dynamic_buffer(second_head), "\r\n\r\n", kUseTuple);
      co_await asio::async_write(socket, asio::buffer(std::string("HTTP/1.1 200 OK\r\n\r\n")), kUseTuple);
      co_return std::make_pair(head.substr(0, head.find('\r')), second_head.substr(0, second_head.find('\r')));
    };
    auto [stream, heads] =
        co_await (router.dial(io.get_executor(), Network::kTcp, "final.example:443", "") && hop_zero());
    EXPECT_TRUE(stream);
    auto [to_second, to_target] = heads;
    EXPECT_EQ(to_second, "CONNECT second.example:8080 HTTP/1.1");
    EXPECT_EQ(to_target, "CONNECT final.example:443 HTTP/1.1");
  }());
}

TEST(Router, RejectsUdpThroughHttpHop) {
  asio::io_context io;
  auto proxy = testing::loopback_acceptor(io);
  auto config = chain_config({{testing::address_of(proxy)}});
  auto chain = build_chain(config.chains(0), config);
  ASSERT_TRUE(chain.ok());
  Router router(*chain, 0, {});
  run_for(io, [&]() -> asio::awaitable<void> {
    auto accept_one = [&]() -> asio::awaitable<void> { co_await proxy.async_accept(asio::use_awaitable); };
    auto stream = co_await (router.dial(io.get_executor(), Network::kUdp, "dns.example:53", "") && accept_one());
    EXPECT_FALSE(stream);
  }());
}

TEST(BuildChain, RejectsBadNodesAndUnknownTypes) {
  auto config = chain_config({{"no-port"}});
  EXPECT_FALSE(build_chain(config.chains(0), config).ok());
  config = chain_config({{"a:1"}});
  config.mutable_chains(0)->mutable_hops(0)->mutable_nodes(0)->mutable_connector()->set_type("carrier-pigeon");
  auto status = build_chain(config.chains(0), config).status();
  EXPECT_NE(status.message().find("known: forward, http"), std::string::npos);
}

}  // namespace
}  // namespace strait::agent
