#include "agent/channel/h2_pool.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "agent/channel/tls_stream.h"
#include "common/strings.h"

namespace strait::agent {
namespace {

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

}  // namespace

bool tls_negotiated_h2(Stream& stream) {
  auto* tls = dynamic_cast<TlsStream*>(&stream);
  if (tls == nullptr) return false;
  const unsigned char* protocol = nullptr;
  unsigned int size = 0;
  SSL_get0_alpn_selected(tls->ssl(), &protocol, &size);
  return size == 2 && protocol[0] == 'h' && protocol[1] == '2';
}

H2ClientPool::Attempt::Attempt(asio::any_io_executor executor)
    : done(std::move(executor), asio::steady_timer::clock_type::time_point::max()) {}

H2ClientPool::Slot::~Slot() {
  for (auto& [address, entry] : entries) {
    if (!entry.session) continue;
    asio::post(entry.session->get_executor(), [session = entry.session] { session->close(); });
  }
}

H2ClientPool::H2ClientPool(std::unique_ptr<Dialer> transport, bool require_h2_alpn, H2SessionOptions options)
    : transport_(std::move(transport)), require_h2_alpn_(require_h2_alpn), options_(std::move(options)) {}

Result<std::shared_ptr<H2Session>> H2ClientPool::start(StreamPtr stream, const std::string& address,
                                                       bool single_use) const {
  if (require_h2_alpn_ && !tls_negotiated_h2(*stream)) {
    spdlog::warn("{} {}: the TLS server did not agree to HTTP/2 (ALPN h2)", options_.name, address);
    stream->close();
    return asio::error::no_protocol_option;
  }
  H2SessionOptions options = options_;
  options.single_use = single_use;
  options.name = common::str_cat(options_.name, " ", address);
  return H2Session::start_client(std::move(stream), std::move(options));
}

asio::awaitable<Result<std::shared_ptr<H2Session>>> H2ClientPool::session(asio::any_io_executor executor,
                                                                          const std::string& address,
                                                                          const DialOptions& options) {
  // Entries are looked up again after every wait: other dials of this worker change the map.
  auto& entries = slots_.get().entries;
  if (auto it = entries.find(address); it != entries.end()) {
    Entry& entry = it->second;
    if (entry.session && entry.session->can_open()) co_return entry.session;
    if (auto attempt = entry.attempt) {
      co_await attempt->done.async_wait(kUseTuple);
      if (!attempt->finished) co_return asio::error::operation_aborted;  // this dial was cancelled
      co_return attempt->result;
    }
  }
  auto attempt = std::make_shared<Attempt>(executor);
  entries[address] = Entry{nullptr, attempt};
  auto opened = co_await transport_->dial(executor, address, Network::kTcp, options);
  Result<std::shared_ptr<H2Session>> result =
      opened ? start(std::move(*opened), address, false) : Result<std::shared_ptr<H2Session>>(opened.error());
  if (auto it = entries.find(address); it != entries.end() && it->second.attempt == attempt) {
    it->second = Entry{result ? *result : nullptr, nullptr};
    if (!result) entries.erase(it);
  }
  attempt->result = result;
  attempt->finished = true;
  attempt->done.cancel();
  co_return result;
}

asio::awaitable<Result<std::shared_ptr<H2Session>>> H2ClientPool::session_over(StreamPtr stream,
                                                                               const std::string& address) {
  auto opened = co_await transport_->handshake(std::move(stream), address);
  if (!opened) co_return opened.error();
  co_return start(std::move(*opened), address, true);
}

}  // namespace strait::agent
