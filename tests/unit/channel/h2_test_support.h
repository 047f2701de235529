#pragma once

// Shared by the HTTP/2 channel tests: configs, requests, a listener on loopback, and peers
// that echo, answer or read raw frames.

#include <algorithm>
#include <set>

#include <gtest/gtest.h>

#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "agent/channel/h2.h"
#include "agent/channel/h2_session.h"
#include "agent/channel/h2_stream.h"
#include "agent/channel/tcp.h"
#include "agent/channel/tls.h"
#include "agent/protocol/proxy_error.h"
#include "support/asio_test.h"
#include "support/stream_io.h"

namespace strait::agent::h2_test {

using namespace asio::experimental::awaitable_operators;
using testing::kUseTuple;
using testing::run_for;
using testing::send_and_receive;

inline void set_meta(google::protobuf::Struct& metadata, const std::string& key, const std::string& value) {
  (*metadata.mutable_fields())[key].set_string_value(value);
}

inline config::v1::ServiceConfig service(const std::string& type, const std::string& path = "") {
  config::v1::ServiceConfig config;
  config.set_name("svc");
  config.mutable_listener()->set_type(type);
  if (!path.empty()) set_meta(*config.mutable_listener()->mutable_metadata(), "path", path);
  return config;
}

inline config::v1::NodeConfig node(const std::string& type, const std::string& path = "") {
  config::v1::NodeConfig config;
  config.set_name("node");
  config.mutable_dialer()->set_type(type);
  if (!path.empty()) set_meta(*config.mutable_dialer()->mutable_metadata(), "path", path);
  return config;
}

inline h2::Head head(std::string method, std::string authority, std::string path = "") {
  h2::Head request;
  request.method = std::move(method);
  request.scheme = "http";
  request.authority = std::move(authority);
  request.path = std::move(path);
  return request;
}

inline std::unique_ptr<Listener> listen(asio::io_context& io,
                                 const absl::StatusOr<std::unique_ptr<ListenerFactory>>& factory) {
  EXPECT_TRUE(factory.ok()) << factory.status();
  auto listener = (*factory)->listen(io.get_executor(), {.address = common::HostPort{"127.0.0.1", 0}});
  EXPECT_TRUE(listener);
  return std::move(*listener);
}

// Sends back what it reads until EOF, then ends its side.
inline asio::awaitable<void> echo(StreamPtr stream) {
  char chunk[4096];
  for (;;) {
    auto [error, n] = co_await stream->async_read_some(asio::buffer(chunk), kUseTuple);
    if (n > 0) co_await asio::async_write(*stream, asio::buffer(chunk, n), kUseTuple);
    if (error) break;
  }
  stream->shutdown_send();
  // Held until the peer has read everything and closed.
  co_await stream->async_wait_readable(kUseTuple);
}

// A server session over one end of a TCP pair whose requests are answered 200 and kept.
struct ServerPeer {
  std::vector<std::unique_ptr<H2Stream>> streams;
  std::shared_ptr<H2Session> session;
};

// Reads HTTP/2 frames until EOF and returns their types (RFC 9113 §4.1 frame header).
inline asio::awaitable<std::vector<int>> frame_types_until_eof(asio::ip::tcp::socket& socket) {
  std::string bytes;
  char chunk[4096];
  for (;;) {
    auto [error, n] = co_await socket.async_read_some(asio::buffer(chunk), kUseTuple);
    bytes.append(chunk, n);
    if (error) break;
  }
  std::vector<int> types;
  for (size_t at = 0; at + 9 <= bytes.size();) {
    size_t length = (uint8_t(bytes[at]) << 16) | (uint8_t(bytes[at + 1]) << 8) | uint8_t(bytes[at + 2]);
    types.push_back(uint8_t(bytes[at + 3]));
    at += 9 + length;
  }
  co_return types;
}

// Opens a stream with `request` on a new client connection to `address`; returns its status.
inline asio::awaitable<int> status_of(asio::io_context& io, const std::string& address, h2::Head request) {
  auto socket = co_await connect_tcp(io.get_executor(), address, {});
  EXPECT_TRUE(socket);
  if (!socket) co_return 0;
  auto client = H2Session::start_client(std::make_unique<TcpStream>(std::move(*socket)), {});
  auto stream = co_await client->open(request, std::chrono::seconds(5));
  client->close();
  EXPECT_TRUE(stream) << (stream ? "" : stream.error().message());
  co_return stream ? (*stream)->head().status : -1;
}

}  // namespace strait::agent::h2_test
