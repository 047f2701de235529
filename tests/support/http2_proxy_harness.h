#pragma once

// The http2 handler served on a loopback HTTP/2 listener (cleartext, prior knowledge: the
// handler reads the same streams as behind TLS), for the http2 handler and connector tests.

#include <memory>
#include <set>

#include <boost/asio/co_spawn.hpp>

#include "agent/auth/auther.h"
#include "agent/channel/h2_listener.h"
#include "agent/channel/tcp.h"
#include "agent/handler/http2.h"
#include "support/proxy_harness.h"

namespace strait::testing {

// An auther that knows one user.
inline std::shared_ptr<const agent::Auther> one_user(const std::string& username, const std::string& password) {
  auto auther = std::make_shared<agent::Auther>();
  auther->add(username, password);
  return auther;
}

class Http2Proxy {
 public:
  Http2Proxy(asio::io_context& io, const agent::HandlerContext& context) : io_(io), context_(context) {
    config::v1::ServiceConfig service;
    auto handler = agent::make_http2_handler(service);
    EXPECT_TRUE(handler.ok()) << handler.status();
    handler_ = std::move(*handler);
    agent::H2ListenerConfig config;
    config.tunnel = false;
    auto factory = agent::make_h2_session_listener_factory(agent::make_tcp_listener_factory(), config);
    auto listener = factory->listen(io.get_executor(), {.address = common::HostPort{"127.0.0.1", 0}});
    EXPECT_TRUE(listener);
    listener_ = std::move(*listener);
  }
  ~Http2Proxy() {
    listener_->close();
    for (agent::Stream* stream : open_) stream->close();
    io_.restart();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (active_ > 0 && std::chrono::steady_clock::now() < deadline) io_.run_one_for(std::chrono::milliseconds(50));
  }

  // A new TCP connection to the proxy.
  asio::awaitable<agent::StreamPtr> connect() {
    asio::ip::tcp::socket socket(io_);
    co_await socket.async_connect({asio::ip::make_address("127.0.0.1"), listener_->bound_address().port},
                                  asio::use_awaitable);
    co_return std::make_unique<agent::TcpStream>(std::move(socket));
  }

  // Serves every stream with the handler until the listener closes; spawn it.
  asio::awaitable<void> serve() {
    for (;;) {
      auto accepted = co_await listener_->accept();
      if (!accepted) co_return;
      auto stream = co_await listener_->handshake(std::move(*accepted));
      if (!stream) continue;
      ++active_;
      asio::co_spawn(io_, serve_one(std::move(*stream)), [this](std::exception_ptr) { --active_; });
    }
  }

 private:
  asio::awaitable<void> serve_one(agent::StreamPtr stream) {
    agent::Stream* raw = stream.get();
    open_.insert(raw);
    co_await handler_->handle(std::move(stream), context_);
    open_.erase(raw);
  }

  asio::io_context& io_;
  const agent::HandlerContext& context_;
  std::unique_ptr<agent::Handler> handler_;
  std::unique_ptr<agent::Listener> listener_;
  std::set<agent::Stream*> open_;
  int active_ = 0;
};

}  // namespace strait::testing
