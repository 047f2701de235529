#include "agent/channel/layered.h"

#include <gtest/gtest.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "agent/channel/tcp.h"
#include "support/asio_test.h"

namespace strait::agent {
namespace {

using namespace asio::experimental::awaitable_operators;
using namespace std::chrono_literals;
using testing::kUseTuple;
using testing::run_for;

// A layer whose handshake is one tag byte from client to server: the order in which the
// bytes arrive is the order in which the layers ran.
class TagLayer final : public ServerLayer, public ClientLayer {
 public:
  explicit TagLayer(char tag) : tag_(tag) {}
  asio::awaitable<Result<StreamPtr>> accept(StreamPtr below) const override {
    char byte = 0;
    auto [error, n] = co_await asio::async_read(*below, asio::buffer(&byte, 1), kUseTuple);
    if (error) co_return error;
    if (byte != tag_) co_return asio::error::invalid_argument;
    co_return std::move(below);
  }
  asio::awaitable<Result<StreamPtr>> connect(StreamPtr below, const std::string&) const override {
    auto [error, n] = co_await asio::async_write(*below, asio::buffer(&tag_, 1), kUseTuple);
    if (error) co_return error;
    co_return std::move(below);
  }

 private:
  char tag_;
};

std::unique_ptr<Listener> layered_listener(asio::io_context& io, ServerLayers layers,
                                           std::chrono::nanoseconds timeout = 5s) {
  auto factory = make_layered_listener_factory(make_tcp_listener_factory(), std::move(layers), timeout);
  auto listener = factory->listen(io.get_executor(), {.address = common::HostPort{"127.0.0.1", 0}});
  EXPECT_TRUE(listener);
  return std::move(*listener);
}

TEST(Layered, ClientAndServerRunTheLayersBottomUp) {
  asio::io_context io;
  auto first = std::make_shared<TagLayer>('a');
  auto second = std::make_shared<TagLayer>('b');
  auto listener = layered_listener(io, {first, second});
  auto dialer = make_layered_dialer(make_tcp_dialer(), {first, second}, 5s);
  run_for(io, [&]() -> asio::awaitable<void> {
    const std::string address = listener->bound_address().to_string();
    const DialOptions options;
    auto serve = [&]() -> asio::awaitable<bool> {
      auto accepted = co_await listener->accept();
      if (!accepted) co_return false;
      auto stream = co_await listener->handshake(std::move(*accepted));
      co_return static_cast<bool>(stream);
    };
    auto dial = [&]() -> asio::awaitable<bool> {
      auto stream = co_await dialer->dial(co_await asio::this_coro::executor, address, Network::kTcp, options);
      co_return static_cast<bool>(stream);
    };
    auto [dialed, served] = co_await (dial() && serve());
    EXPECT_TRUE(dialed);
    EXPECT_TRUE(served) << "the server's layers saw the tags in another order";
  }());
}

TEST(Layered, WrongOrderFailsTheServerHandshake) {
  asio::io_context io;
  auto listener = layered_listener(io, {std::make_shared<TagLayer>('a'), std::make_shared<TagLayer>('b')});
  auto dialer = make_layered_dialer(make_tcp_dialer(), {std::make_shared<TagLayer>('b'), std::make_shared<TagLayer>('a')}, 5s);
  run_for(io, [&]() -> asio::awaitable<void> {
    const std::string address = listener->bound_address().to_string();
    const DialOptions options;
    auto serve = [&]() -> asio::awaitable<bool> {
      auto accepted = co_await listener->accept();
      if (!accepted) co_return true;
      auto stream = co_await listener->handshake(std::move(*accepted));
      co_return static_cast<bool>(stream);
    };
    auto dial = [&]() -> asio::awaitable<void> {
      co_await dialer->dial(co_await asio::this_coro::executor, address, Network::kTcp, options);
    };
    auto served = co_await (serve() && dial());
    EXPECT_FALSE(served);
  }());
}

// A client that never completes its handshake is dropped after the handshake timeout.
TEST(Layered, SilentClientTimesOut) {
  asio::io_context io;
  auto listener = layered_listener(io, {std::make_shared<TagLayer>('a')}, 200ms);
  run_for(io, [&]() -> asio::awaitable<void> {
    asio::ip::tcp::socket silent(io);
    co_await silent.async_connect({asio::ip::make_address("127.0.0.1"), listener->bound_address().port},
                                  asio::use_awaitable);
    auto accepted = co_await listener->accept();
    EXPECT_TRUE(accepted);
    if (!accepted) co_return;
    auto started = std::chrono::steady_clock::now();
    auto stream = co_await listener->handshake(std::move(*accepted));
    EXPECT_FALSE(stream);
    EXPECT_LT(std::chrono::steady_clock::now() - started, 3s);
    char byte;
    auto [error, n] = co_await silent.async_read_some(asio::buffer(&byte, 1), kUseTuple);
    EXPECT_TRUE(error) << "the silent client's connection is still open";
  }());
}

// Over a stream a previous hop opened, the dialer runs its layers alone.
TEST(Layered, DialerHandshakeRunsTheLayersOverAGivenStream) {
  asio::io_context io;
  auto dialer = make_layered_dialer(make_tcp_dialer(), {std::make_shared<TagLayer>('x')}, 5s);
  run_for(io, [&]() -> asio::awaitable<void> {
    auto [near, far] = co_await testing::tcp_pair();
    auto stream = co_await dialer->handshake(std::make_unique<TcpStream>(std::move(near)), "hop:1");
    EXPECT_TRUE(stream);
    char byte = 0;
    co_await asio::async_read(far, asio::buffer(&byte, 1), kUseTuple);
    EXPECT_EQ(byte, 'x');
  }());
}

}  // namespace
}  // namespace strait::agent
