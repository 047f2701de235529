#include "agent/channel/tls.h"

#include "agent/channel/tcp.h"
#include "agent/channel/tls_stream.h"
#include "common/address.h"
#include "common/metadata.h"

namespace strait::agent {
namespace {

constexpr auto kDefaultHandshakeTimeout = std::chrono::seconds(10);

class TlsServerLayer final : public ServerLayer {
 public:
  explicit TlsServerLayer(SslContext context) : context_(std::move(context)) {}

  asio::awaitable<Result<StreamPtr>> accept(StreamPtr below) const override {
    SSL* ssl = SSL_new(context_.get());
    if (ssl == nullptr) co_return asio::error::no_memory;
    SSL_set_accept_state(ssl);
    auto stream = std::make_unique<TlsStream>(std::move(below), ssl);
    if (auto ec = co_await stream->handshake(); ec) co_return ec;
    co_return StreamPtr(std::move(stream));
  }

 private:
  SslContext context_;
};

class TlsClientLayer final : public ClientLayer {
 public:
  TlsClientLayer(SslContext context, std::string server_name, bool verify)
      : context_(std::move(context)), server_name_(std::move(server_name)), verify_(verify) {}

  asio::awaitable<Result<StreamPtr>> connect(StreamPtr below, const std::string& address) const override {
    std::string name = server_name_;
    if (name.empty()) {
      if (auto parsed = common::parse_host_port(address); parsed.ok()) name = parsed->host;
    }
    SSL* ssl = SSL_new(context_.get());
    if (ssl == nullptr) co_return asio::error::no_memory;
    SSL_set_connect_state(ssl);
    error_code not_ip;
    asio::ip::make_address(name, not_ip);
    // RFC 6066 §3: no SNI for an IP literal.
    if (!name.empty() && not_ip) SSL_set_tlsext_host_name(ssl, name.c_str());
    if (verify_ && !name.empty()) SSL_set1_host(ssl, name.c_str());
    auto stream = std::make_unique<TlsStream>(std::move(below), ssl);
    if (auto ec = co_await stream->handshake(); ec) co_return ec;
    co_return StreamPtr(std::move(stream));
  }

 private:
  SslContext context_;
  std::string server_name_;
  bool verify_;
};

const config::v1::TLSConfig& node_tls(const config::v1::NodeConfig& node) {
  return node.dialer().has_tls() ? node.dialer().tls() : node.tls();
}

}  // namespace

absl::StatusOr<std::chrono::nanoseconds> channel_handshake_timeout(const google::protobuf::Struct& metadata) {
  for (const char* key : {"handshakeTimeout", "ws.handshakeTimeout"}) {
    auto value = common::metadata_duration(metadata, key);
    if (!value.ok()) return value.status();
    if (*value && (*value)->count() > 0) return **value;
  }
  return kDefaultHandshakeTimeout;
}

absl::StatusOr<std::shared_ptr<const ServerLayer>> make_tls_server_layer(const config::v1::ServiceConfig& service,
                                                                         const config::v1::Config& config,
                                                                         const std::string& alpn) {
  auto context = make_server_context(service.listener().tls(), config.tls(), alpn);
  if (!context.ok()) return context.status();
  return std::make_shared<const TlsServerLayer>(*std::move(context));
}

absl::StatusOr<std::shared_ptr<const ClientLayer>> make_tls_client_layer(const config::v1::NodeConfig& node,
                                                                         const std::string& alpn) {
  const auto& tls = node_tls(node);
  auto context = make_client_context(tls, alpn);
  if (!context.ok()) return context.status();
  return std::make_shared<const TlsClientLayer>(*std::move(context), tls.server_name(), verifies_server(tls));
}

absl::StatusOr<std::unique_ptr<ListenerFactory>> make_tls_listener_factory(const config::v1::ServiceConfig& service,
                                                                           const config::v1::Config& config) {
  auto timeout = channel_handshake_timeout(service.listener().metadata());
  if (!timeout.ok()) return timeout.status();
  auto layer = make_tls_server_layer(service, config);
  if (!layer.ok()) return layer.status();
  return make_layered_listener_factory(make_tcp_listener_factory(), {*std::move(layer)}, *timeout);
}

absl::StatusOr<std::unique_ptr<Dialer>> make_tls_dialer(const config::v1::NodeConfig& node) {
  auto timeout = channel_handshake_timeout(node.dialer().metadata());
  if (!timeout.ok()) return timeout.status();
  auto layer = make_tls_client_layer(node);
  if (!layer.ok()) return layer.status();
  return make_layered_dialer(make_tcp_dialer(), {*std::move(layer)}, *timeout);
}

}  // namespace strait::agent
