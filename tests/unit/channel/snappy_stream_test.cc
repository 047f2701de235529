#include "agent/channel/snappy_stream.h"

#include <gtest/gtest.h>

#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>

#include "agent/channel/tcp.h"
#include "agent/protocol/snappy_frames.h"
#include "support/asio_test.h"

namespace strait::agent {
namespace {

using namespace asio::experimental::awaitable_operators;
using testing::kUseTuple;
using testing::run_for;

TEST(SnappyStream, CarriesBytesBothWaysCompressed) {
  asio::io_context io;
  run_for(io, [&]() -> asio::awaitable<void> {
    auto [a, b] = co_await testing::tcp_pair();
    auto left = make_snappy_stream(std::make_unique<TcpStream>(std::move(a)));
    auto right = make_snappy_stream(std::make_unique<TcpStream>(std::move(b)));
    const std::string random = testing::payload(1 << 20, 9);
    const std::string text(1 << 20, 'z');
    std::string got_random(random.size(), '\0');
    std::string got_text(text.size(), '\0');
    co_await (asio::async_write(*left, asio::buffer(random), kUseTuple) &&
              asio::async_read(*right, asio::buffer(got_random), kUseTuple) &&
              asio::async_write(*right, asio::buffer(text), kUseTuple) &&
              asio::async_read(*left, asio::buffer(got_text), kUseTuple));
    EXPECT_TRUE(got_random == random);
    EXPECT_TRUE(got_text == text);
  }());
}

TEST(SnappyStream, WritesTheFramingFormat) {
  asio::io_context io;
  run_for(io, [&]() -> asio::awaitable<void> {
    auto [a, b] = co_await testing::tcp_pair();
    auto writer = make_snappy_stream(std::make_unique<TcpStream>(std::move(a)));
    const std::string text(1000, 'a');
    co_await asio::async_write(*writer, asio::buffer(text), kUseTuple);
    writer->close();
    std::string wire;
    co_await asio::async_read(b, asio::dynamic_buffer(wire), kUseTuple);
    EXPECT_GT(wire.size(), sizeof(kcp::kSnappyStreamIdentifier));
    if (wire.size() <= sizeof(kcp::kSnappyStreamIdentifier)) co_return;
    EXPECT_EQ(wire.substr(0, sizeof(kcp::kSnappyStreamIdentifier)),
              std::string(reinterpret_cast<const char*>(kcp::kSnappyStreamIdentifier),
                          sizeof(kcp::kSnappyStreamIdentifier)));
    EXPECT_LT(wire.size(), 100u);  // 1000 equal bytes compress
    std::vector<uint8_t> decoded;
    kcp::SnappyFrameDecoder decoder;
    EXPECT_TRUE(decoder.feed(std::span(reinterpret_cast<const uint8_t*>(wire.data()), wire.size()), decoded).ok());
    EXPECT_EQ(decoded.size(), 1000u);
  }());
}

TEST(SnappyStream, CorruptInputEndsReadsWithAnError) {
  asio::io_context io;
  run_for(io, [&]() -> asio::awaitable<void> {
    auto [a, b] = co_await testing::tcp_pair();
    auto reader = make_snappy_stream(std::make_unique<TcpStream>(std::move(b)));
    const std::string junk = "not snappy at all";
    co_await asio::async_write(a, asio::buffer(junk), kUseTuple);
    char byte = 0;
    auto [error, n] = co_await reader->async_read_some(asio::buffer(&byte, 1), kUseTuple);
    EXPECT_EQ(error, asio::error::invalid_argument);
    EXPECT_EQ(n, 0u);
  }());
}

}  // namespace
}  // namespace strait::agent
