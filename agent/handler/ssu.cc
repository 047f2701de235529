#include "agent/handler/ssu.h"

#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "agent/connector/ss_options.h"
#include "agent/handler/udp_association.h"
#include "agent/net/buffers.h"
#include "agent/observe/session_log.h"
#include "agent/protocol/socks5.h"
#include "common/strings.h"

namespace strait::agent {
namespace {

using namespace asio::experimental::awaitable_operators;
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
// GOST's ssu default udpConnTTL (go-gost/x handler/ss/udp/metadata.go).
constexpr std::chrono::nanoseconds kDefaultTtl = std::chrono::seconds(30);

struct SsuHandlerOptions {
  SsKey key;
  UdpAssociation::Limits limits;
};

class SsuHandler final : public Handler {
 public:
  explicit SsuHandler(SsuHandlerOptions options) : options_(std::move(options)) {}

  asio::awaitable<void> handle(StreamPtr client, const HandlerContext& ctx) const override {
    const std::string peer = client->remote_address();
    if (!client->is_datagram()) {
      spdlog::warn("{}: {}: ssu: needs a datagram channel (udp listener); UDP over a stream is not supported",
                   ctx.service, peer);
      co_return;
    }
    SessionLog session(ctx.service, ctx.stats.get(), *client);
    session.set_target("UDP relay");
    std::string log_prefix = common::str_cat(ctx.service, ": ", peer, ": ssu");
    auto association = std::make_shared<UdpAssociation>(client->get_executor(), ctx.router, log_prefix, options_.limits);
    // One codec per client address (SIP022 keeps its sessions there); both directions run on
    // this coroutine's executor, one at a time.
    auto codec = make_ss_packet_codec(options_.key, true);
    co_await (uplink(*client, *association, *codec, log_prefix) && downlink(*client, *association, *codec));
    RelayResult totals;
    totals.bytes_from_client = association->bytes_from_client();
    totals.bytes_to_client = association->bytes_to_client();
    session.finish(totals);
  }

 private:
  asio::awaitable<void> uplink(Stream& client, UdpAssociation& association, ss_wire::PacketCodec& codec,
                               const std::string& log_prefix) const {
    size_t dropped = 0;
    for (;;) {
      // A buffer only while a datagram is there: an idle session holds none.
      auto [wait_error] = co_await client.async_wait_readable(kUseTuple);
      if (wait_error) break;
      auto& buffers = DatagramBuffers::this_thread();
      auto buffer = buffers.take();
      auto [error, n] = co_await client.async_read_some(asio::buffer(buffer.get(), DatagramBuffers::kBufferSize), kUseTuple);
      std::optional<std::string> plain;
      if (!error) plain = codec.open(std::span(buffer.get(), n));
      buffers.give_back(std::move(buffer));
      if (error) break;
      auto bytes = plain ? std::span(reinterpret_cast<const uint8_t*>(plain->data()), plain->size())
                         : std::span<const uint8_t>();
      auto address = socks5::parse_address(bytes);
      if (!plain || address.state != ParseState::kComplete) {
        // Wrong key, replayed, stale or not ours: no answer. The first is logged, the rest counted.
        if (dropped++ == 0) {
          spdlog::debug("{}: dropped a packet that is not ours ({})", log_prefix,
                        plain ? "bad target address" : "failed authentication, replayed or stale");
        }
        continue;
      }
      co_await association.send(address.value, bytes.subspan(address.size));
    }
    if (dropped > 1) spdlog::debug("{}: {} packets dropped in all", log_prefix, dropped);
    association.close();
  }

  asio::awaitable<void> downlink(Stream& client, UdpAssociation& association, ss_wire::PacketCodec& codec) const {
    for (;;) {
      auto answer = co_await association.receive();
      if (!answer) break;
      auto header = socks5::encode_address(answer->source);
      if (!header.ok()) continue;
      std::string plain = *std::move(header);
      plain += answer->payload;
      std::string packet = codec.seal(std::span(reinterpret_cast<const uint8_t*>(plain.data()), plain.size()));
      if (packet.empty()) continue;
      auto [error, unused] = co_await client.async_write_some(asio::buffer(packet), kUseTuple);
      if (error) break;
    }
    // The association ended (idle for the TTL, or closed): so does the client's session.
    client.close();
  }

  SsuHandlerOptions options_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Handler>> make_ssu_handler(const config::v1::ServiceConfig& service) {
  const auto& metadata = service.handler().metadata();
  auto key = parse_ss_key("ssu handler", service.handler().auth(), metadata);
  if (!key.ok()) return key.status();
  if (auto refused = check_ssu_key("ssu handler", *key); !refused.ok()) return refused;
  if (!key->identity_keys.empty()) {
    return absl::InvalidArgumentError("ssu handler: the password is one base64 PSK (the iPSK when users are set)");
  }
  SsuHandlerOptions options{*std::move(key), {}};
  options.limits.flow_ttl = kDefaultTtl;
  for (const char* name : {"udpConnTTL", "udp.connTTL"}) {
    auto ttl = common::metadata_duration(metadata, name);
    if (!ttl.ok()) return ttl.status();
    if (*ttl && (*ttl)->count() > 0) {
      options.limits.flow_ttl = **ttl;
      break;
    }
  }
  options.limits.idle_timeout = options.limits.flow_ttl;
  for (const char* name : {"udpBufferSize", "udp.bufferSize"}) {
    auto size = common::metadata_int(metadata, name);
    if (!size.ok()) return size.status();
    if (*size) {
      options.limits.buffer_size = static_cast<size_t>(std::clamp<int64_t>(**size, 512, 65535));
      break;
    }
  }
  return std::make_unique<SsuHandler>(std::move(options));
}

}  // namespace strait::agent
