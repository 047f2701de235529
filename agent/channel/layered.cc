#include "agent/channel/layered.h"

#include <spdlog/spdlog.h>

#include "common/stream_deadline.h"

namespace strait::agent {
namespace {

// Runs `layers` over `stream`; the deadline closes the bottom stream, which fails whatever
// layer is waiting on it.
template <typename Layers, typename Step>
asio::awaitable<Result<StreamPtr>> run_layers(StreamPtr stream, const Layers& layers,
                                              std::chrono::nanoseconds timeout, Step step) {
  if (layers.empty()) co_return std::move(stream);
  common::StreamDeadline deadline(*stream);
  deadline.arm(timeout);
  for (const auto& layer : layers) {
    auto above = co_await step(*layer, std::move(stream));
    if (!above) co_return deadline.expired() ? asio::error::timed_out : above.error();
    stream = std::move(*above);
  }
  deadline.disarm();
  co_return std::move(stream);
}

class LayeredListener final : public Listener {
 public:
  LayeredListener(std::unique_ptr<Listener> base, std::shared_ptr<const ServerLayers> layers,
                  std::chrono::nanoseconds timeout)
      : base_(std::move(base)), layers_(std::move(layers)), timeout_(timeout) {}

  asio::awaitable<Result<StreamPtr>> accept() override { return base_->accept(); }
  asio::awaitable<Result<StreamPtr>> handshake(StreamPtr accepted) override {
    std::string peer = accepted->remote_address();
    auto below = co_await base_->handshake(std::move(accepted));
    if (!below) co_return below.error();
    auto opened = co_await run_layers(std::move(*below), *layers_, timeout_, [](const ServerLayer& layer, StreamPtr stream) {
      return layer.accept(std::move(stream));
    });
    // Only when it will be written: the listener's address costs a getsockname(2), and
    // failed handshakes are what a flood is made of.
    if (!opened && spdlog::should_log(spdlog::level::info)) {
      spdlog::info("listener {}: client {}: channel handshake failed: {}", base_->bound_address().to_string(), peer,
                   opened.error().message());
    }
    co_return opened;
  }
  std::vector<StreamPtr> take_pending() override { return base_->take_pending(); }
  void update(const ListenOptions& options) override { base_->update(options); }
  void close() override { base_->close(); }
  common::HostPort bound_address() const override { return base_->bound_address(); }
  int native_handle() override { return base_->native_handle(); }

 private:
  std::unique_ptr<Listener> base_;
  std::shared_ptr<const ServerLayers> layers_;
  std::chrono::nanoseconds timeout_;
};

class LayeredListenerFactory final : public ListenerFactory {
 public:
  LayeredListenerFactory(std::unique_ptr<ListenerFactory> base, ServerLayers layers, std::chrono::nanoseconds timeout)
      : base_(std::move(base)), layers_(std::make_shared<const ServerLayers>(std::move(layers))), timeout_(timeout) {}

  Result<std::unique_ptr<Listener>> listen(asio::any_io_executor executor, const ListenOptions& options) override {
    auto base = base_->listen(executor, options);
    if (!base) return base.error();
    return std::unique_ptr<Listener>(std::make_unique<LayeredListener>(std::move(*base), layers_, timeout_));
  }

 private:
  std::unique_ptr<ListenerFactory> base_;
  std::shared_ptr<const ServerLayers> layers_;
  std::chrono::nanoseconds timeout_;
};

class LayeredDialer final : public Dialer {
 public:
  LayeredDialer(std::unique_ptr<Dialer> base, ClientLayers layers, std::chrono::nanoseconds timeout)
      : base_(std::move(base)), layers_(std::move(layers)), timeout_(timeout) {}

  asio::awaitable<Result<StreamPtr>> dial(asio::any_io_executor executor, const std::string& address, Network network,
                                          const DialOptions& options) override {
    auto below = co_await base_->dial(executor, address, network, options);
    if (!below) co_return below.error();
    co_return co_await handshake(std::move(*below), address);
  }

  asio::awaitable<Result<StreamPtr>> handshake(StreamPtr stream, const std::string& address) override {
    co_return co_await run_layers(std::move(stream), layers_, timeout_,
                                  [&address](const ClientLayer& layer, StreamPtr below) {
                                    return layer.connect(std::move(below), address);
                                  });
  }

 private:
  std::unique_ptr<Dialer> base_;
  ClientLayers layers_;
  std::chrono::nanoseconds timeout_;
};

}  // namespace

std::unique_ptr<ListenerFactory> make_layered_listener_factory(std::unique_ptr<ListenerFactory> base,
                                                               ServerLayers layers,
                                                               std::chrono::nanoseconds handshake_timeout) {
  return std::make_unique<LayeredListenerFactory>(std::move(base), std::move(layers), handshake_timeout);
}

std::unique_ptr<Dialer> make_layered_dialer(std::unique_ptr<Dialer> base, ClientLayers layers,
                                            std::chrono::nanoseconds handshake_timeout) {
  return std::make_unique<LayeredDialer>(std::move(base), std::move(layers), handshake_timeout);
}

}  // namespace strait::agent
