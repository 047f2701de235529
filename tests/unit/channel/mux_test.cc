#include "agent/channel/mux.h"

#include <gtest/gtest.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "support/asio_test.h"

namespace strait::agent {
namespace {

using namespace asio::experimental::awaitable_operators;
using testing::kUseTuple;
using testing::run_for;

google::protobuf::Struct metadata(std::initializer_list<std::pair<const char*, const char*>> values) {
  google::protobuf::Struct result;
  for (const auto& [key, value] : values) (*result.mutable_fields())[key].set_string_value(value);
  return result;
}

TEST(MuxOptions, DefaultsAreSmuxDefaults) {
  auto config = parse_mux_config(metadata({}));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->version, 1);
  EXPECT_EQ(config->keepalive_interval, std::chrono::seconds(10));
  EXPECT_EQ(config->keepalive_timeout, std::chrono::seconds(30));
  EXPECT_EQ(config->max_frame_size, 32768u);
  EXPECT_EQ(config->max_receive_buffer, 4194304u);
  EXPECT_EQ(config->max_stream_buffer, 65536u);
  auto set = parse_mux_config(metadata({{"mux.version", "2"}, {"mux.maxStreams", "8"}, {"mux.maxFrameSize", "65535"}}));
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->version, 2);
  EXPECT_EQ(set->max_streams, 8u);
  EXPECT_EQ(set->max_frame_size, 65535u);
}

TEST(MuxOptions, BadValuesAreConfigErrorsNamingTheKey) {
  for (auto [key, value] : {std::pair{"mux.version", "3"}, std::pair{"mux.maxFrameSize", "70000"},
                            std::pair{"mux.maxStreams", "0"}, std::pair{"mux.keepaliveDisabled", "maybe"},
                            std::pair{"mux.keepaliveTimeout", "soon"}, std::pair{"mux.maxReceiveBuffer", "-1"}}) {
    auto config = parse_mux_config(metadata({{key, value}}));
    ASSERT_FALSE(config.ok()) << key << "=" << value << " was taken";
    EXPECT_NE(config.status().message().find(key), std::string::npos) << config.status();
  }
  auto inverted = parse_mux_config(metadata({{"mux.keepaliveInterval", "20s"}, {"mux.keepaliveTimeout", "10s"}}));
  ASSERT_FALSE(inverted.ok());
  EXPECT_NE(inverted.status().message().find("mux.keepaliveTimeout"), std::string::npos) << inverted.status();
}

// mtcp: every dial of one worker to one node opens a stream on the same TCP connection.
TEST(MuxChannel, DialsShareOneSessionPerNode) {
  asio::io_context io;
  config::v1::ServiceConfig service;
  service.set_name("svc");
  service.mutable_listener()->set_type("mtcp");
  auto factory = make_mtcp_listener_factory(service, config::v1::Config{});
  ASSERT_TRUE(factory.ok()) << factory.status();
  auto listener = (*factory)->listen(io.get_executor(), {.address = common::HostPort{"127.0.0.1", 0}});
  ASSERT_TRUE(listener);
  config::v1::NodeConfig node;
  node.mutable_dialer()->set_type("mtcp");
  auto dialer = make_mtcp_dialer(node);
  ASSERT_TRUE(dialer.ok()) << dialer.status();
  run_for(io, [&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    const std::string address = (*listener)->bound_address().to_string();
    const DialOptions options;
    constexpr int kDials = 3;
    std::vector<StreamPtr> clients;
    std::vector<StreamPtr> servers;
    for (int i = 0; i < kDials; ++i) {
      auto serve = [&]() -> asio::awaitable<StreamPtr> {
        auto accepted = co_await (*listener)->accept();
        if (!accepted) co_return nullptr;
        auto stream = co_await (*listener)->handshake(std::move(*accepted));
        co_return stream ? std::move(*stream) : nullptr;
      };
      auto dial = [&]() -> asio::awaitable<StreamPtr> {
        auto stream = co_await (*dialer)->dial(executor, address, Network::kTcp, options);
        co_return stream ? std::move(*stream) : nullptr;
      };
      auto [client, server] = co_await (dial() && serve());
      EXPECT_TRUE(client && server);
      if (!client || !server) co_return;
      clients.push_back(std::move(client));
      servers.push_back(std::move(server));
    }
    // One TCP connection: every stream names the same client address.
    for (int i = 1; i < kDials; ++i) EXPECT_EQ(servers[i]->remote_address(), servers[0]->remote_address());
    // And the streams keep their bytes apart.
    for (int i = 0; i < kDials; ++i) {
      std::string message = "stream " + std::to_string(i);
      co_await asio::async_write(*clients[i], asio::buffer(message), kUseTuple);
    }
    for (int i = 0; i < kDials; ++i) {
      std::string expected = "stream " + std::to_string(i);
      std::string received(expected.size(), '\0');
      co_await asio::async_read(*servers[i], asio::buffer(received), kUseTuple);
      EXPECT_EQ(received, expected);
    }
  }());
}

}  // namespace
}  // namespace strait::agent
