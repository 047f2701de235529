#include "agent/channel/h2.h"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "agent/channel/h2_listener.h"
#include "agent/channel/h2_pool.h"
#include "agent/channel/tcp.h"
#include "agent/channel/tls.h"
#include "agent/protocol/proxy_error.h"
#include "common/log_escape.h"
#include "common/metadata.h"
#include "common/strings.h"

namespace strait::agent {
namespace {

using common::str_cat;
constexpr int64_t kDefaultBacklog = 128;  // GOST's h2 listener backlog
// A pooled client connection with no stream for this long is closed, as Go's http.Transport
// (IdleConnTimeout) does for GOST's h2 dialer.
constexpr auto kClientIdleTimeout = std::chrono::seconds(90);

absl::StatusOr<h2::Fields> read_header_map(const common::Metadata& metadata) {
  h2::Fields fields;
  for (const auto& [key, value] : metadata.fields()) {
    if (!common::iequals(key, "header")) continue;
    if (!value.has_struct_value()) return absl::InvalidArgumentError(str_cat(key, ": expected a map of headers"));
    for (const auto& [name, text] : value.struct_value().fields()) {
      if (!text.has_string_value()) return absl::InvalidArgumentError(str_cat(key, ".", name, ": expected a string"));
      if (name.empty() || name.front() == ':') {
        return absl::InvalidArgumentError(str_cat(key, ".", name, ": not a header field name"));
      }
      fields.emplace_back(common::to_lower(name), text.string_value());
    }
  }
  return fields;
}

absl::StatusOr<std::string> read_path(const common::Metadata& metadata) {
  std::string path = common::metadata_string(metadata, "path").value_or("");
  if (!path.empty() && path.front() != '/') {
    return absl::InvalidArgumentError(str_cat("path \"", path, "\": must start with /"));
  }
  return path;
}

absl::StatusOr<std::unique_ptr<ListenerFactory>> listener(const config::v1::ServiceConfig& service,
                                                          const config::v1::Config& config, const char* type, bool tls,
                                                          bool tunnel) {
  const auto& metadata = service.listener().metadata();
  auto timeout = channel_handshake_timeout(metadata);
  if (!timeout.ok()) return timeout.status();
  auto path = read_path(metadata);
  if (!path.ok()) return path.status();
  auto backlog = common::metadata_int(metadata, "backlog");
  if (!backlog.ok()) return backlog.status();
  H2ListenerConfig h2;
  h2.name = str_cat(service.name(), ": ", type, " listener");
  h2.tls = tls;
  h2.tunnel = tunnel;
  h2.path = tunnel ? *path : "";
  h2.accept_upgrade = !tls;
  h2.backlog = static_cast<size_t>(backlog->value_or(kDefaultBacklog));
  h2.handshake_timeout = *timeout;
  h2.session.settings_timeout = *timeout;
  h2.session.name = h2.name;
  if (!tls) return make_h2_session_listener_factory(make_tcp_listener_factory(), std::move(h2));
  auto layer = make_tls_server_layer(service, config, kAlpnH2);
  if (!layer.ok()) return layer.status();
  return make_h2_session_listener_factory(
      make_layered_listener_factory(make_tcp_listener_factory(), {*std::move(layer)}, *timeout), std::move(h2));
}

struct PoolAndTimeout {
  std::shared_ptr<H2ClientPool> pool;
  std::chrono::nanoseconds timeout;
};

absl::StatusOr<PoolAndTimeout> client_pool(const config::v1::NodeConfig& node, const char* type, bool tls) {
  auto timeout = channel_handshake_timeout(node.dialer().metadata());
  if (!timeout.ok()) return timeout.status();
  std::unique_ptr<Dialer> transport = make_tcp_dialer();
  if (tls) {
    auto layer = make_tls_client_layer(node, kAlpnH2);
    if (!layer.ok()) return layer.status();
    transport = make_layered_dialer(std::move(transport), {*std::move(layer)}, *timeout);
  }
  H2SessionOptions options;
  options.settings_timeout = *timeout;
  options.idle_timeout = kClientIdleTimeout;
  options.name = str_cat(type, " dialer");
  return PoolAndTimeout{std::make_shared<H2ClientPool>(std::move(transport), tls, std::move(options)), *timeout};
}

// h2/h2c dialer: a tunnel stream per dial on the node's pooled connection.
class H2TunnelDialer final : public Dialer {
 public:
  H2TunnelDialer(PoolAndTimeout pool, h2::Head request, std::string host)
      : pool_(std::move(pool)), request_(std::move(request)), host_(std::move(host)) {}

  asio::awaitable<Result<StreamPtr>> dial(asio::any_io_executor executor, const std::string& address, Network network,
                                          const DialOptions& options) override {
    if (network != Network::kTcp) co_return ProxyError::kUnsupportedNetwork;
    auto session = co_await pool_.pool->session(executor, address, options);
    if (!session) co_return session.error();
    co_return co_await open(**session, address);
  }

  asio::awaitable<Result<StreamPtr>> handshake(StreamPtr stream, const std::string& address) override {
    auto session = co_await pool_.pool->session_over(std::move(stream), address);
    if (!session) co_return session.error();
    co_return co_await open(**session, address);
  }

 private:
  asio::awaitable<Result<StreamPtr>> open(H2Session& session, const std::string& address) {
    h2::Head request = request_;
    request.authority = host_.empty() ? address : host_;
    auto stream = co_await session.open(request, pool_.timeout);
    if (!stream) co_return stream.error();
    if (int status = (*stream)->head().status; status != 200) {
      spdlog::info("{}: {} {} {} answered {}", request_.scheme == "https" ? "h2 dialer" : "h2c dialer", address,
                   request.method, common::text_escaped(request.path.empty() ? request.authority : request.path),
                   status);
      co_return ProxyError::kRejected;
    }
    co_return StreamPtr(std::move(*stream));
  }

  PoolAndTimeout pool_;
  const h2::Head request_;
  const std::string host_;
};

absl::StatusOr<std::unique_ptr<Dialer>> tunnel_dialer(const config::v1::NodeConfig& node, bool tls) {
  const auto& metadata = node.dialer().metadata();
  auto pool = client_pool(node, tls ? "h2" : "h2c", tls);
  if (!pool.ok()) return pool.status();
  auto path = read_path(metadata);
  if (!path.ok()) return path.status();
  auto fields = read_header_map(metadata);
  if (!fields.ok()) return fields.status();
  h2::Head request;
  request.method = path->empty() ? "CONNECT" : "GET";
  request.scheme = tls ? "https" : "http";
  request.path = *path;
  request.fields = *std::move(fields);
  std::string host = common::metadata_string(metadata, "host").value_or("");
  return std::make_unique<H2TunnelDialer>(*std::move(pool), std::move(request), std::move(host));
}

// http2 dialer: the pooled connection itself, for the http2 connector.
class Http2Dialer final : public Dialer {
 public:
  explicit Http2Dialer(PoolAndTimeout pool) : pool_(std::move(pool)) {}

  asio::awaitable<Result<StreamPtr>> dial(asio::any_io_executor executor, const std::string& address, Network network,
                                          const DialOptions& options) override {
    if (network != Network::kTcp) co_return ProxyError::kUnsupportedNetwork;
    auto session = co_await pool_.pool->session(executor, address, options);
    if (!session) co_return session.error();
    co_return StreamPtr(std::make_unique<H2ClientConnection>(std::move(*session), true));
  }

  asio::awaitable<Result<StreamPtr>> handshake(StreamPtr stream, const std::string& address) override {
    auto session = co_await pool_.pool->session_over(std::move(stream), address);
    if (!session) co_return session.error();
    co_return StreamPtr(std::make_unique<H2ClientConnection>(std::move(*session), false));
  }

 private:
  PoolAndTimeout pool_;
};

}  // namespace

H2ClientConnection::H2ClientConnection(std::shared_ptr<H2Session> session, bool pooled)
    : session_(std::move(session)), pooled_(pooled) {}

H2ClientConnection::~H2ClientConnection() { close(); }

void H2ClientConnection::close() {
  // An unpooled session ends by itself after its last stream; one that never had a stream
  // ends here.
  if (!pooled_ && session_->stream_count() == 0) session_->close();
}

void H2ClientConnection::do_read_some(asio::mutable_buffer, common::IoHandler handler) {
  asio::post(get_executor(), [handler = std::move(handler)]() mutable {
    std::move(handler)(asio::error::operation_not_supported, 0);
  });
}

void H2ClientConnection::do_write_some(asio::const_buffer, common::IoHandler handler) {
  asio::post(get_executor(), [handler = std::move(handler)]() mutable {
    std::move(handler)(asio::error::operation_not_supported, 0);
  });
}

absl::StatusOr<std::unique_ptr<ListenerFactory>> make_h2_listener_factory(const config::v1::ServiceConfig& service,
                                                                          const config::v1::Config& config) {
  return listener(service, config, "h2", true, true);
}
absl::StatusOr<std::unique_ptr<ListenerFactory>> make_h2c_listener_factory(const config::v1::ServiceConfig& service,
                                                                           const config::v1::Config& config) {
  return listener(service, config, "h2c", false, true);
}
absl::StatusOr<std::unique_ptr<ListenerFactory>> make_http2_listener_factory(const config::v1::ServiceConfig& service,
                                                                             const config::v1::Config& config) {
  return listener(service, config, "http2", true, false);
}

absl::StatusOr<std::unique_ptr<Dialer>> make_h2_dialer(const config::v1::NodeConfig& node) {
  return tunnel_dialer(node, true);
}
absl::StatusOr<std::unique_ptr<Dialer>> make_h2c_dialer(const config::v1::NodeConfig& node) {
  return tunnel_dialer(node, false);
}
absl::StatusOr<std::unique_ptr<Dialer>> make_http2_dialer(const config::v1::NodeConfig& node) {
  auto pool = client_pool(node, "http2", true);
  if (!pool.ok()) return pool.status();
  return std::make_unique<Http2Dialer>(*std::move(pool));
}

}  // namespace strait::agent
