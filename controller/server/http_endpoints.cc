#include "controller/server/http_endpoints.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include "common/address.h"
#include "common/strings.h"

namespace strait::controller {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using asio::ip::tcp;
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

asio::awaitable<void> serve_one(tcp::socket socket, const HttpEndpoints::Metrics& metrics,
                                const HttpEndpoints::Ready& ready) {
  boost::beast::tcp_stream stream(std::move(socket));
  // A scraper gets 10 s for its request and our answer; a stalled client is dropped.
  stream.expires_after(std::chrono::seconds(10));
  boost::beast::flat_buffer buffer;
  http::request<http::empty_body> request;
  auto [read_error, unused] = co_await http::async_read(stream, buffer, request, kUseTuple);
  if (read_error) co_return;
  http::response<http::string_body> response;
  response.version(request.version());
  response.keep_alive(false);
  std::string_view path = common::to_std_view(request.target());
  path = path.substr(0, path.find('?'));
  if (request.method() != http::verb::get && request.method() != http::verb::head) {
    response.result(http::status::method_not_allowed);
    response.body() = "only GET\n";
  } else if (path == "/metrics") {
    response.set(http::field::content_type, "text/plain; version=0.0.4");
    response.body() = metrics();
  } else if (path == "/healthz") {
    response.body() = "ok\n";
  } else if (path == "/readyz") {
    bool is_ready = ready();
    response.result(is_ready ? http::status::ok : http::status::service_unavailable);
    response.body() = is_ready ? "ready\n" : "not ready\n";
  } else {
    response.result(http::status::not_found);
    response.body() = "not found: try /metrics, /healthz or /readyz\n";
  }
  response.prepare_payload();
  co_await http::async_write(stream, response, kUseTuple);
}

}  // namespace

HttpEndpoints::HttpEndpoints(Metrics metrics, Ready ready)
    : io_(1), acceptor_(io_), metrics_(std::move(metrics)), ready_(std::move(ready)) {}

absl::StatusOr<std::unique_ptr<HttpEndpoints>> HttpEndpoints::start(const std::string& address, Metrics metrics,
                                                                    Ready ready) {
  auto parsed = common::parse_host_port(address, true);
  if (!parsed.ok()) return parsed.status();
  std::unique_ptr<HttpEndpoints> endpoints(new HttpEndpoints(std::move(metrics), std::move(ready)));
  boost::system::error_code ec;
  auto ip = asio::ip::make_address(parsed->host.empty() ? "0.0.0.0" : parsed->host, ec);
  if (ec) return absl::InvalidArgumentError(common::str_cat("--listen-http: \"", address, "\" needs an IP address"));
  tcp::endpoint endpoint(ip, parsed->port);
  auto& acceptor = endpoints->acceptor_;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(64, ec);
  if (ec) return absl::UnavailableError(common::str_cat("cannot listen on ", address, ": ", ec.message()));
  endpoints->port_ = acceptor.local_endpoint().port();
  auto* self = endpoints.get();
  asio::co_spawn(
      self->io_,
      [self]() -> asio::awaitable<void> {
        for (;;) {
          auto [error, socket] = co_await self->acceptor_.async_accept(kUseTuple);
          if (error == asio::error::operation_aborted) co_return;
          if (error) continue;
          asio::co_spawn(self->io_, serve_one(std::move(socket), self->metrics_, self->ready_), asio::detached);
        }
      },
      asio::detached);
  self->thread_ = std::thread([self] { self->io_.run(); });
  return endpoints;
}

HttpEndpoints::~HttpEndpoints() {
  io_.stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace strait::controller
