#include "agent/channel/ws.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstring>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include "agent/channel/tcp.h"
#include "agent/channel/tls.h"
#include "agent/channel/ws_stream.h"
#include "agent/protocol/websocket.h"
#include "common/metadata.h"
#include "common/strings.h"

namespace strait::agent {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
constexpr size_t kMaxHandshakeHead = 8 * 1024;
constexpr auto kDefaultPingInterval = std::chrono::seconds(15);

using Headers = std::vector<std::pair<std::string, std::string>>;

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

// What is left in `buffer` after the handshake's head: the peer's first frames.
std::string leftover(const beast::flat_buffer& buffer) {
  return std::string(static_cast<const char*>(buffer.data().data()), buffer.size());
}

class WsServerLayer final : public ServerLayer {
 public:
  WsServerLayer(std::string path, Headers headers) : path_(std::move(path)), headers_(std::move(headers)) {}

  asio::awaitable<Result<StreamPtr>> accept(StreamPtr below) const override {
    beast::flat_buffer buffer(kMaxHandshakeHead);
    http::request_parser<http::empty_body> parser;
    parser.header_limit(kMaxHandshakeHead);
    auto [read_error, n] = co_await http::async_read(*below, buffer, parser, kUseTuple);
    if (read_error) co_return read_error;
    auto request = parser.release();
    if (beast::websocket::is_upgrade(request) && request.target() != path_) {
      co_await refuse(*below, request.version(), http::status::not_found, "");
      co_return http::error::bad_target;
    }
    if (auto refusal = websocket::check_upgrade_request(request); refusal) {
      co_await refuse(*below, request.version(), http::status::bad_request, refusal.message());
      co_return refusal;
    }
    http::response<http::empty_body> response(http::status::switching_protocols, 11);
    response.set(http::field::upgrade, "websocket");
    response.set(http::field::connection, "Upgrade");
    response.set(http::field::sec_websocket_accept, websocket::accept_key(request[http::field::sec_websocket_key]));
    for (const auto& [name, value] : headers_) response.set(name, value);
    auto [write_error, written] = co_await http::async_write(*below, response, kUseTuple);
    if (write_error) co_return write_error;
    co_return make_ws_stream(std::move(below), {.role = websocket::Role::kServer, .prefetched = leftover(buffer)});
  }

 private:
  // An HTTP answer to a request that is not an upgrade to our path, saying why.
  static asio::awaitable<void> refuse(Stream& below, unsigned version, http::status status, std::string reason) {
    http::response<http::string_body> refusal(status, version);
    refusal.set(http::field::connection, "close");
    if (!reason.empty()) {
      refusal.set(http::field::content_type, "text/plain");
      refusal.body() = std::move(reason);
    }
    refusal.prepare_payload();
    co_await http::async_write(below, refusal, kUseTuple);
  }

  std::string path_;
  Headers headers_;
};

class WsClientLayer final : public ClientLayer {
 public:
  WsClientLayer(std::string path, std::string host, Headers headers, std::chrono::nanoseconds ping_interval)
      : path_(std::move(path)), host_(std::move(host)), headers_(std::move(headers)), ping_interval_(ping_interval) {}

  asio::awaitable<Result<StreamPtr>> connect(StreamPtr below, const std::string& address) const override {
    const std::string key = client_key();
    http::request<http::empty_body> request(http::verb::get, path_, 11);
    request.set(http::field::host, host_.empty() ? address : host_);
    request.set(http::field::upgrade, "websocket");
    request.set(http::field::connection, "Upgrade");
    request.set(http::field::sec_websocket_key, key);
    request.set(http::field::sec_websocket_version, "13");
    for (const auto& [name, value] : headers_) request.set(name, value);
    auto [write_error, written] = co_await http::async_write(*below, request, kUseTuple);
    if (write_error) co_return write_error;
    beast::flat_buffer buffer(kMaxHandshakeHead);
    http::response_parser<http::empty_body> parser;
    parser.header_limit(kMaxHandshakeHead);
    auto [read_error, n] = co_await http::async_read_header(*below, buffer, parser, kUseTuple);
    if (read_error) co_return read_error;
    if (auto refusal = websocket::check_upgrade_response(parser.get(), key); refusal) co_return refusal;
    co_return make_ws_stream(std::move(below), {.role = websocket::Role::kClient,
                                                .prefetched = leftover(buffer),
                                                .ping_interval = ping_interval_});
  }

 private:
  // A fresh 16-byte nonce, base64 (RFC 6455 §4.1).
  static std::string client_key() {
    unsigned char nonce[16];
    if (RAND_bytes(nonce, sizeof nonce) != 1) {
      uint64_t now = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
      std::memcpy(nonce, &now, sizeof now);
      std::memcpy(nonce + sizeof now, &now, sizeof now);
    }
    char encoded[25];
    int size = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(encoded), nonce, sizeof nonce);
    return std::string(encoded, static_cast<size_t>(size));
  }

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
