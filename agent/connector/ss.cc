#include "agent/connector/ss.h"

#include "agent/connector/connector_options.h"
#include "agent/connector/ss_options.h"
#include "agent/protocol/proxy_error.h"
#include "agent/protocol/shadowsocks2022.h"
#include "agent/protocol/socks5.h"
#include "agent/wire/message_io.h"
#include "agent/wire/ss_stream.h"

namespace strait::agent {
namespace {

// How long the target header waits for the first payload before it goes alone.
constexpr std::chrono::nanoseconds kHeaderWait = std::chrono::milliseconds(50);

class SsConnector final : public Connector {
 public:
  SsConnector(SsKey key, bool nodelay) : key_(std::move(key)), nodelay_(nodelay) {}

  asio::awaitable<Result<StreamPtr>> connect(StreamPtr tunnel, Network network, const std::string& target) override {
    if (network != Network::kTcp) co_return ProxyError::kUnsupportedNetwork;
    auto address = common::parse_host_port(target);
    // ":0" is a forward service without targets of its own; ss always names one.
    if (!address.ok() || address->host.empty()) co_return ProxyError::kNoTarget;
    auto header = socks5::encode_address(*address);
    if (!header.ok()) co_return asio::error::invalid_argument;
    SsStreamParts parts{ss_wire::StreamEncryptor(key_.method, key_.master_key),
                        ss_wire::StreamDecryptor(key_.method, key_.master_key)};
    if (key_.method.edition_2022) {
      // The target goes in the request's variable header, sealed by the first write (or
      // alone with padding): the plaintext `header` stays empty.
      std::string salt(parts.encryptor.salt());
      std::string identity = ss2022::identity_headers(
          key_.method, key_.key_chain(), std::span(reinterpret_cast<const uint8_t*>(salt.data()), salt.size()));
      parts.encryptor.set_opening(ss_wire::Opening2022{true, std::move(identity), *std::move(header), {}});
      parts.decryptor.expect_response_to(std::move(salt));
      header = std::string();
    }
    if (nodelay_) {
      std::string sealed;
      parts.encryptor.seal(std::span(reinterpret_cast<const uint8_t*>(header->data()), header->size()), sealed);
      if (auto error = co_await write_message(*tunnel, sealed)) co_return error;
    } else {
      parts.header = *std::move(header);
      parts.header_wait = kHeaderWait;
    }
    co_return make_ss_stream(std::move(tunnel), std::move(parts));
  }

 private:
  SsKey key_;
  bool nodelay_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Connector>> make_ss_connector(const config::v1::NodeConfig& node) {
  const auto& metadata = node.connector().metadata();
  auto key = parse_ss_key("ss connector", connector_auth(node), metadata);
  if (!key.ok()) return key.status();
  auto nodelay = common::metadata_bool(metadata, "nodelay");
  if (!nodelay.ok()) return nodelay.status();
  return std::make_unique<SsConnector>(*std::move(key), nodelay->value_or(false));
}

}  // namespace strait::agent
