#include "agent/service/service.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>
#include "common/strings.h"


namespace strait::agent {

Service::Service(std::string name, std::shared_ptr<const Handler> handler, std::shared_ptr<const HandlerContext> context)
    : name_(std::move(name)), handler_(std::move(handler)), context_(std::move(context)) {}

absl::StatusOr<std::shared_ptr<Service>> Service::bind(std::string name, const ListenOptions& options,
                                                       ListenerFactory& factory, std::shared_ptr<const Handler> handler,
                                                       std::shared_ptr<const HandlerContext> context, Workers& workers) {
  std::shared_ptr<Service> service(new Service(std::move(name), std::move(handler), std::move(context)));
  ListenOptions worker_options = options;
  for (size_t i = 0; i < workers.size(); ++i) {
    auto slot = std::make_unique<WorkerSlot>();
    slot->executor = workers.executor(i);
    auto listener = factory.listen(slot->executor, worker_options);
    if (!listener) {
      for (auto& opened : service->slots_) opened->listener->close();
      return absl::UnavailableError(common::str_cat("service ", service->name_, ": cannot listen on ",
                                                 options.address.to_string(), ": ", listener.error().message()));
    }
    slot->listener = std::move(*listener);
    if (i == 0) {
      service->bound_ = slot->listener->bound_address();
      // Port 0 asks the kernel once; the other workers join that port.
      worker_options.address.port = service->bound_.port;
    }
    service->slots_.push_back(std::move(slot));
  }
  return service;
}

void Service::start() {
  for (size_t i = 0; i < slots_.size(); ++i) {
    asio::co_spawn(slots_[i]->executor, accept_loop(shared_from_this(), i), [name = name_](std::exception_ptr e) {
      if (e) spdlog::error("{}: accept loop ended by an unexpected exception", name);
    });
  }
}

void Service::stop_accepting() {
  accepting_ = false;
  for (auto& slot : slots_) {
    asio::post(slot->executor, [self = shared_from_this(), raw = slot.get()] { raw->listener->close(); });
  }
}

void Service::close_connections() {
  for (auto& slot : slots_) {
    asio::post(slot->executor, [self = shared_from_this(), raw = slot.get()] {
      auto open = raw->open;  // close() may end handlers that erase themselves
      for (Stream* stream : open) stream->close();
    });
  }
}

asio::awaitable<void> Service::accept_loop(std::shared_ptr<Service> self, size_t slot_index) {
  auto& slot = *self->slots_[slot_index];
  while (self->accepting_) {
    auto client = co_await slot.listener->accept();
    if (!client) {
      if (!self->accepting_) break;
      spdlog::warn("{}: accept failed: {}", self->name_, client.error().message());
      continue;
    }
    self->active_.fetch_add(1, std::memory_order_relaxed);
    self->context_->stats->connections.fetch_add(1, std::memory_order_relaxed);
    asio::co_spawn(slot.executor, serve(self, slot_index, std::move(*client)), [name = self->name_](std::exception_ptr e) {
      if (e) spdlog::error("{}: connection handler ended by an unexpected exception", name);
    });
  }
}

asio::awaitable<void> Service::serve(std::shared_ptr<Service> self, size_t slot_index, StreamPtr client) {
  // Unregisters even if the handler throws; the handler owns the stream until it returns,
  // so the registered pointer stays valid while it is in the set.
  struct Registration {
    Service& service;
    WorkerSlot& slot;
    Stream* stream;
    ~Registration() {
      slot.open.erase(stream);
      service.active_.fetch_sub(1, std::memory_order_relaxed);
    }
  } registration{*self, *self->slots_[slot_index], client.get()};
  registration.slot.open.insert(registration.stream);
  co_await self->handler_->handle(std::move(client), *self->context_);
}

}  // namespace strait::agent
