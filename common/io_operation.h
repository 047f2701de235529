#pragma once

#include <exception>
#include <tuple>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>

#include "common/stream.h"

namespace strait::common {

using IoResult = std::tuple<error_code, std::size_t>;

// Runs `operation` (a coroutine returning {error, bytes}) and completes a Stream's read or
// write `handler` with its result: how a stream implements an operation that takes several
// steps below it. Only an allocation can throw in there; it fails that operation alone.
inline void complete_with(asio::any_io_executor executor, asio::awaitable<IoResult> operation, IoHandler handler) {
  asio::co_spawn(executor, std::move(operation),
                 [handler = std::move(handler)](std::exception_ptr failure, IoResult result) mutable {
                   if (failure) result = IoResult{asio::error::no_memory, 0};
                   std::move(handler)(std::get<0>(result), std::get<1>(result));
                 });
}

}  // namespace strait::common
