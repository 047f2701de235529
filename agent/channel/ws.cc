#include <array>

#include <boost/beast/core/role.hpp>

#include "agent/channel/tls_stream.h"
#include "common/stream.h"

namespace strait::agent::ws_below {

// The stream under a WebSocket as Beast sees it. Reads go to the Stream. A write of several
// buffers (a frame's header, then its payload) goes out in one system call where the stream
// allows it: gathered into one sendmsg(2) on a plain socket, into one flush of TLS records
// on a TLS stream. Through the Stream interface, which takes the first buffer only, each
// frame cost two writes, two TLS records and two system calls.
class Below {
 public:
  using executor_type = common::Stream::executor_type;

  explicit Below(common::Stream& stream)
      : stream_(&stream), socket_(stream.plain_tcp_socket()), tls_(dynamic_cast<TlsStream*>(&stream)) {}

  executor_type get_executor() { return stream_->get_executor(); }
  common::Stream& stream() { return *stream_; }

  template <typename MutableBuffers, typename Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return stream_->async_read_some(buffers, std::forward<Token>(token));
  }

  template <typename ConstBuffers, typename Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return asio::async_initiate<Token, void(error_code, std::size_t)>(
        [this](auto handler, const ConstBuffers& some) {
          if (socket_ != nullptr) return socket_->async_write_some(some, std::move(handler));
          if (tls_ == nullptr) return stream_->async_write_some(some, std::move(handler));
          std::array<asio::const_buffer, 4> first;
          size_t count = 0;
          for (auto it = asio::buffer_sequence_begin(some); it != asio::buffer_sequence_end(some) && count < first.size();
               ++it) {
            if (asio::buffer_size(*it) > 0) first[count++] = *it;
          }
          tls_->write_some_gathered(std::span<const asio::const_buffer>(first.data(), count), std::move(handler));
        },
        token, buffers);
  }

 private:
  common::Stream* stream_;
  asio::ip::tcp::socket* socket_;  // set when the stream is a plain socket
  TlsStream* tls_;                 // set when the stream is TLS
};

// Beast closes a WebSocket's next layer through these, found by argument-dependent lookup;
// teardown is a half close for a Strait stream (its owner closes it for good).
inline void beast_close_socket(Below& below) { below.stream().close(); }

inline void teardown(boost::beast::role_type, Below& below, error_code& ec) {
  below.stream().shutdown_send();
  ec = {};
}

template <typename Handler>
void async_teardown(boost::beast::role_type, Below& below, Handler&& handler) {
  below.stream().shutdown_send();
  asio::post(below.get_executor(), [handler = std::forward<Handler>(handler)]() mutable { handler(error_code{}); });
}

}  // namespace strait::agent::ws_below

#include "agent/channel/ws.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <spdlog/spdlog.h>

#include "agent/channel/tcp.h"
#include "agent/channel/tls.h"
#include "common/metadata.h"
#include "common/strings.h"

namespace strait::agent {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
constexpr size_t kMaxRequestHead = 8 * 1024;
// A closing WebSocket waits this long for the peer's close frame before dropping the socket.
constexpr auto kCloseGrace = std::chrono::seconds(1);
constexpr auto kDefaultPingInterval = std::chrono::seconds(15);
constexpr size_t kWriteBufferBytes = 16 * 1024;

using Headers = std::vector<std::pair<std::string, std::string>>;

struct WsCore {
  explicit WsCore(StreamPtr below_stream) : below(std::move(below_stream)), ws(*below) {
    ws.binary(true);
    // Reads are partial, so a large message costs no memory: no limit, as gorilla (GOST).
    ws.read_message_max(0);
    // A client masks each frame through this buffer: at Beast's 4 KiB default a 16 KiB write
    // became four frames, four TLS records and four syscalls.
    ws.write_buffer_bytes(kWriteBufferBytes);
  }
  StreamPtr below;
  websocket::stream<ws_below::Below> ws;
};

class WsStream final : public Stream {
 public:
  explicit WsStream(std::shared_ptr<WsCore> core) : core_(std::move(core)) {}
  ~WsStream() override { close(); }

  executor_type get_executor() override { return core_->below->get_executor(); }
  // WebSocket has no half close: the end of our data is told with the close frame, which
  // ends the peer's sending too once it has answered (GOST ends the whole connection at the
  // first end of stream). Without it the far end would never learn that the client is done.
  void shutdown_send() override { close(); }
  // The closing handshake, then the socket: at once if the peer answers, else after a grace.
  // Reads go on until the peer's close frame. Dropping the socket at once instead would
  // leave the peer a reset rather than an end.
  void close() override {
    if (closing_) return;
    closing_ = true;
    asio::co_spawn(
        get_executor(),
        [](std::shared_ptr<WsCore> core) -> asio::awaitable<void> {
          asio::steady_timer grace(core->below->get_executor(), kCloseGrace);
          grace.async_wait([core](error_code ec) {
            if (!ec) core->below->close();
          });
          co_await core->ws.async_close(websocket::close_code::normal, kUseTuple);
          grace.cancel();
          core->below->close();
        }(core_),
        [](std::exception_ptr e) {
          if (e) spdlog::error("ws: closing handshake ended by an unexpected exception");
        });
  }
  std::string remote_address() const override { return core_->below->remote_address(); }
  std::string local_address() const override { return core_->below->local_address(); }

 protected:
  void do_read_some(asio::mutable_buffer buffer, common::IoHandler handler) override {
    // Bound to the stream's executor: Beast needs one it can post to, which a type-erased
    // handler's is not.
    core_->ws.async_read_some(
        buffer, asio::bind_executor(get_executor(), [handler = std::move(handler)](error_code ec, size_t n) mutable {
          // The peer's close frame is the end of its stream.
          if (ec == websocket::error::closed) ec = asio::error::eof;
          std::move(handler)(ec, n);
        }));
  }
  void do_write_some(asio::const_buffer buffer, common::IoHandler handler) override {
    core_->ws.async_write(buffer, asio::bind_executor(get_executor(), [handler = std::move(handler)](
                                                                          error_code ec, size_t n) mutable {
                            std::move(handler)(ec, n);
                          }));
  }

 private:
  std::shared_ptr<WsCore> core_;
  bool closing_ = false;
};

absl::StatusOr<Headers> read_headers(const google::protobuf::Struct& metadata) {
  Headers headers;
  for (const auto& [key, value] : metadata.fields()) {
    if (!common::iequals(key, "header") && !common::iequals(key, "ws.header")) continue;
    if (!value.has_struct_value()) return absl::InvalidArgumentError(common::str_cat(key, ": expected a map of headers"));
    for (const auto& [name, text] : value.struct_value().fields()) {
      if (!text.has_string_value()) {
        return absl::InvalidArgumentError(common::str_cat(key, ".", name, ": expected a string"));
      }
      headers.emplace_back(name, text.string_value());
    }
  }
  return headers;
}

absl::StatusOr<std::string> read_path(const google::protobuf::Struct& metadata) {
  for (const char* key : {"path", "ws.path"}) {
    if (auto path = common::metadata_string(metadata, key); path && !path->empty()) {
      if (path->front() != '/') return absl::InvalidArgumentError(common::str_cat(key, " \"", *path, "\": must start with /"));
      return *path;
    }
  }
  return std::string("/ws");
}

class WsServerLayer final : public ServerLayer {
 public:
  WsServerLayer(std::string path, Headers headers) : path_(std::move(path)), headers_(std::move(headers)) {}

  asio::awaitable<Result<StreamPtr>> accept(StreamPtr below) const override {
    beast::flat_buffer buffer(kMaxRequestHead);
    http::request_parser<http::empty_body> parser;
    parser.header_limit(kMaxRequestHead);
    auto [read_error, n] = co_await http::async_read(*below, buffer, parser, kUseTuple);
    if (read_error) co_return read_error;
    auto request = parser.release();
    if (websocket::is_upgrade(request) && request.target() != path_) {
      http::response<http::empty_body> refusal(http::status::not_found, request.version());
      refusal.set(http::field::connection, "close");
      co_await http::async_write(*below, refusal, kUseTuple);
      co_return http::error::bad_target;
    }
    auto core = std::make_shared<WsCore>(std::move(below));
    core->ws.set_option(websocket::stream_base::decorator([headers = headers_](websocket::response_type& response) {
      for (const auto& [name, value] : headers) response.set(name, value);
    }));
    // Beast answers a request that is not a valid upgrade with 400 and says why.
    auto [accept_error] = co_await core->ws.async_accept(request, kUseTuple);
    if (accept_error) co_return accept_error;
    co_return StreamPtr(std::make_unique<WsStream>(std::move(core)));
  }

 private:
  std::string path_;
  Headers headers_;
};

class WsClientLayer final : public ClientLayer {
 public:
  WsClientLayer(std::string path, std::string host, Headers headers, std::chrono::nanoseconds ping_interval)
      : path_(std::move(path)), host_(std::move(host)), headers_(std::move(headers)), ping_interval_(ping_interval) {}

  asio::awaitable<Result<StreamPtr>> connect(StreamPtr below, const std::string& address) const override {
    auto core = std::make_shared<WsCore>(std::move(below));
    core->ws.set_option(websocket::stream_base::decorator([headers = headers_](websocket::request_type& request) {
      for (const auto& [name, value] : headers) request.set(name, value);
    }));
    if (ping_interval_.count() > 0) {
      // Beast pings after half the idle time; a peer silent for the whole of it is gone.
      websocket::stream_base::timeout timeout{websocket::stream_base::none(),
                                              std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                                  ping_interval_ * 2),
                                              true};
      core->ws.set_option(timeout);
    }
    auto [ec] = co_await core->ws.async_handshake(host_.empty() ? address : host_, path_, kUseTuple);
    if (ec) co_return ec;
    co_return StreamPtr(std::make_unique<WsStream>(std::move(core)));
  }

 private:
  std::string path_;
  std::string host_;
  Headers headers_;
  std::chrono::nanoseconds ping_interval_;
};

absl::StatusOr<std::unique_ptr<ListenerFactory>> ws_listener(const config::v1::ServiceConfig& service,
                                                             const config::v1::Config& config, bool tls) {
  const auto& metadata = service.listener().metadata();
  auto timeout = channel_handshake_timeout(metadata);
  if (!timeout.ok()) return timeout.status();
  auto ws = make_ws_server_layer(service);
  if (!ws.ok()) return ws.status();
  ServerLayers layers;
  if (tls) {
    auto tls_layer = make_tls_server_layer(service, config);
    if (!tls_layer.ok()) return tls_layer.status();
    layers.push_back(*std::move(tls_layer));
  }
  layers.push_back(*std::move(ws));
  return make_layered_listener_factory(make_tcp_listener_factory(), std::move(layers), *timeout);
}

absl::StatusOr<std::unique_ptr<Dialer>> ws_dialer(const config::v1::NodeConfig& node, bool tls) {
  auto timeout = channel_handshake_timeout(node.dialer().metadata());
  if (!timeout.ok()) return timeout.status();
  auto ws = make_ws_client_layer(node);
  if (!ws.ok()) return ws.status();
  ClientLayers layers;
  if (tls) {
    auto tls_layer = make_tls_client_layer(node);
    if (!tls_layer.ok()) return tls_layer.status();
    layers.push_back(*std::move(tls_layer));
  }
  layers.push_back(*std::move(ws));
  return make_layered_dialer(make_tcp_dialer(), std::move(layers), *timeout);
}

}  // namespace

absl::StatusOr<std::shared_ptr<const ServerLayer>> make_ws_server_layer(const config::v1::ServiceConfig& service) {
  const auto& metadata = service.listener().metadata();
  auto path = read_path(metadata);
  if (!path.ok()) return path.status();
  auto headers = read_headers(metadata);
  if (!headers.ok()) return headers.status();
  return std::make_shared<const WsServerLayer>(*std::move(path), *std::move(headers));
}

absl::StatusOr<std::shared_ptr<const ClientLayer>> make_ws_client_layer(const config::v1::NodeConfig& node) {
  const auto& metadata = node.dialer().metadata();
  auto path = read_path(metadata);
  if (!path.ok()) return path.status();
  auto headers = read_headers(metadata);
  if (!headers.ok()) return headers.status();
  std::string host = common::metadata_string(metadata, "host").value_or(common::metadata_string(metadata, "ws.host").value_or(""));
  std::chrono::nanoseconds ping_interval{0};
  auto keepalive = common::metadata_bool(metadata, "ws.keepalive");
  if (!keepalive.ok()) return keepalive.status();
  if (keepalive->value_or(false)) {
    auto interval = common::metadata_duration(metadata, "ws.keepalive.interval");
    if (!interval.ok()) return interval.status();
    ping_interval = interval->value_or(kDefaultPingInterval);
  }
  return std::make_shared<const WsClientLayer>(*std::move(path), std::move(host), *std::move(headers), ping_interval);
}

absl::StatusOr<std::unique_ptr<ListenerFactory>> make_ws_listener_factory(const config::v1::ServiceConfig& service,
                                                                          const config::v1::Config& config) {
  return ws_listener(service, config, false);
}
absl::StatusOr<std::unique_ptr<ListenerFactory>> make_wss_listener_factory(const config::v1::ServiceConfig& service,
                                                                           const config::v1::Config& config) {
  return ws_listener(service, config, true);
}
absl::StatusOr<std::unique_ptr<Dialer>> make_ws_dialer(const config::v1::NodeConfig& node) { return ws_dialer(node, false); }
absl::StatusOr<std::unique_ptr<Dialer>> make_wss_dialer(const config::v1::NodeConfig& node) { return ws_dialer(node, true); }

}  // namespace strait::agent
