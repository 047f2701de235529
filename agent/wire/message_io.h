#pragma once

#include <span>
#include <string>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "agent/channel/channel.h"
#include "agent/protocol/parse_result.h"

namespace strait::agent {

// Reads from `stream` into `buffer` until `parse` (bytes -> Parsed<T>) decodes a whole message
// or refuses the bytes, then removes the message from the front of `buffer`; bytes that came
// after it (a pipelining client) stay there. An I/O error, or EOF before a whole message, is
// returned as the error. Every parser used here refuses a prefix longer than its protocol
// allows, so the buffer stays bounded (by that plus one chunk) whatever the peer sends.
template <typename Parse>
asio::awaitable<Result<decltype(std::declval<Parse>()(std::span<const uint8_t>{}))>> read_message(
    Stream& stream, std::string& buffer, Parse parse) {
  using Message = decltype(parse(std::span<const uint8_t>{}));
  char chunk[1024];
  for (;;) {
    auto bytes = std::span(reinterpret_cast<const uint8_t*>(buffer.data()), buffer.size());
    Message message = parse(bytes);
    if (message.state == ParseState::kComplete) {
      buffer.erase(0, message.size);
      co_return message;
    }
    if (message.state == ParseState::kInvalid) co_return message;
    auto [error, n] = co_await stream.async_read_some(asio::buffer(chunk), asio::as_tuple(asio::use_awaitable));
    if (error) co_return error;
    buffer.append(chunk, n);
  }
}

// Writes all of `bytes`; the error, if any.
inline asio::awaitable<error_code> write_message(Stream& stream, std::string_view bytes) {
  auto [error, unused] = co_await asio::async_write(stream, asio::buffer(bytes), asio::as_tuple(asio::use_awaitable));
  co_return error;
}

}  // namespace strait::agent
