#pragma once

// Byte exchanges over any agent Stream, for channel tests.

#include <string>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include "common/stream.h"
#include "support/asio_test.h"

namespace strait::testing {

// Writes `data` and half-closes, while reading everything the peer sends until its EOF.
inline asio::awaitable<std::string> send_and_receive(common::Stream& stream, const std::string& data) {
  using namespace asio::experimental::awaitable_operators;
  auto send = [&]() -> asio::awaitable<void> {
    auto [error, n] = co_await asio::async_write(stream, asio::buffer(data), kUseTuple);
    EXPECT_FALSE(error) << error.message();
    EXPECT_EQ(n, data.size());
    stream.shutdown_send();
  };
  auto receive = [&]() -> asio::awaitable<std::string> {
    std::string received;
    char chunk[16384];
    for (;;) {
      auto [error, n] = co_await stream.async_read_some(asio::buffer(chunk), kUseTuple);
      received.append(chunk, n);
      if (error) {
        EXPECT_EQ(error, asio::error::eof) << error.message();
        co_return received;
      }
    }
  };
  co_return co_await (send() && receive());
}

// Exactly `size` bytes (fewer only when the stream ends first, which fails the test).
inline asio::awaitable<std::string> read_exactly(common::Stream& stream, size_t size) {
  std::string bytes(size, '\0');
  auto [error, n] = co_await asio::async_read(stream, asio::buffer(bytes), kUseTuple);
  EXPECT_FALSE(error) << error.message();
  bytes.resize(n);
  co_return bytes;
}

}  // namespace strait::testing
