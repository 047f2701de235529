#include "agent/service/service.h"

#include <unistd.h>

#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "common/strings.h"

namespace strait::agent {
namespace {

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
// At capacity, how often a listener looks again; connections wait in the kernel meanwhile.
constexpr auto kCapacityRecheck = std::chrono::milliseconds(20);
// Out of descriptors or memory: the first pause, doubled up to the last while it lasts.
constexpr auto kFirstAcceptBackoff = std::chrono::milliseconds(10);
constexpr auto kLastAcceptBackoff = std::chrono::seconds(1);

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

ServiceGeneration::ServiceGeneration(std::shared_ptr<const Handler> handler,
                                     std::shared_ptr<const HandlerContext> context, size_t slots)
    : handler_(std::move(handler)), context_(std::move(context)), open_(slots) {}

Service::Service(std::string name, std::shared_ptr<ConnectionBudget> budget, size_t max_connections)
    : name_(std::move(name)), budget_(std::move(budget)), max_connections_(max_connections) {}

absl::StatusOr<std::shared_ptr<Service>> Service::bind(std::string name, const ListenOptions& options,
                                                       ListenerFactory& factory,
                                                       std::span<const asio::any_io_executor> executors,
                                                       std::shared_ptr<ConnectionBudget> budget,
                                                       size_t max_connections, std::vector<int> inherited,
                                                       bool datagram) {
  std::shared_ptr<Service> service(new Service(std::move(name), std::move(budget), max_connections));
  ListenOptions worker_options = options;
  size_t slots = executors.size();
  if (!inherited.empty()) {
    // Datagram sockets are not shared: a client must stay on one worker's socket.
    slots = datagram ? inherited.size() : std::max(inherited.size(), executors.size());
    for (size_t i = inherited.size(); i < slots; ++i) inherited.push_back(::dup(inherited[0]));
  }
  for (size_t i = 0; i < slots; ++i) {
    auto slot = std::make_unique<WorkerSlot>();
    slot->executor = executors[i % executors.size()];
    worker_options.inherited_fd = i < inherited.size() ? inherited[i] : -1;
    auto listener = factory.listen(slot->executor, worker_options);
    if (!listener) {
      for (size_t rest = i; rest < inherited.size(); ++rest) ::close(inherited[rest]);
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

std::vector<int> Service::listening_fds() const {
  std::vector<int> fds;
  for (const auto& slot : slots_) {
    int fd = slot->listener->native_handle();
    if (fd >= 0) fds.push_back(fd);
  }
  return fds;
}

void Service::serve(std::shared_ptr<ServiceGeneration> generation) {
  for (size_t i = 0; i < slots_.size(); ++i) {
    asio::post(slots_[i]->executor, [self = shared_from_this(), i, generation] {
      auto& slot = *self->slots_[i];
      slot.generation = generation;
      if (slot.accepting || self->stopped_) return;
      slot.accepting = true;
      asio::co_spawn(slot.executor, accept_loop(self, i), [name = self->name_](std::exception_ptr e) {
        if (e) spdlog::error("{}: accept loop ended by an unexpected exception", name);
      });
    });
  }
}

void Service::update(const ListenOptions& options, size_t max_connections) {
  max_connections_ = max_connections;
  for (auto& slot : slots_) {
    asio::post(slot->executor, [self = shared_from_this(), raw = slot.get(), options] { raw->listener->update(options); });
  }
}

void Service::stop_accepting() {
  stopped_ = true;
  for (size_t i = 0; i < slots_.size(); ++i) {
    asio::post(slots_[i]->executor, [self = shared_from_this(), i] {
      auto& slot = *self->slots_[i];
      // Clients already queued in the kernel were promised a connection: serve them.
      if (slot.generation) {
        for (auto& client : slot.listener->take_pending()) self->start_connection(i, std::move(client), false);
      }
      slot.listener->close();
    });
  }
}

void Service::close_connections(std::shared_ptr<ServiceGeneration> generation) {
  for (size_t i = 0; i < slots_.size(); ++i) {
    asio::post(slots_[i]->executor, [self = shared_from_this(), i, generation] {
      auto open = generation->open_[i];  // close() may end handlers that erase themselves
      for (Stream* stream : open) stream->close();
    });
  }
}

bool Service::at_capacity() const {
  size_t max = max_connections_.load(std::memory_order_relaxed);
  if (max > 0 && open_.load(std::memory_order_relaxed) >= max) return true;
  return budget_ && budget_->open.load(std::memory_order_relaxed) >= budget_->limit;
}

namespace {

// Takes one place under `limit` (0: none), or says there is none: workers admit at once.
bool take_place(std::atomic<size_t>& count, size_t limit) {
  size_t current = count.load(std::memory_order_relaxed);
  do {
    if (limit > 0 && current >= limit) return false;
  } while (!count.compare_exchange_weak(current, current + 1, std::memory_order_relaxed));
  return true;
}

}  // namespace

bool Service::try_admit() {
  if (!take_place(open_, max_connections_.load(std::memory_order_relaxed))) return false;
  if (budget_ && !take_place(budget_->open, budget_->limit)) {
    open_.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  return true;
}

void Service::note_accept_error(const error_code& error) {
  uint64_t count = accept_errors_.fetch_add(1, std::memory_order_relaxed) + 1;
  int64_t now = now_ns();
  int64_t next = next_error_report_ns_.load(std::memory_order_relaxed);
  if (now < next || !next_error_report_ns_.compare_exchange_strong(next, now + 1'000'000'000)) return;
  accept_errors_.fetch_sub(count, std::memory_order_relaxed);
  spdlog::warn("{}: cannot accept: {} ({} times since the last report); pausing, established connections go on",
               name_, error.message(), count);
}

void Service::start_connection(size_t slot_index, StreamPtr client, bool admitted) {
  auto& slot = *slots_[slot_index];
  if (!admitted) {
    open_.fetch_add(1, std::memory_order_relaxed);
    if (budget_) budget_->open.fetch_add(1, std::memory_order_relaxed);
  }
  slot.generation->active_.fetch_add(1, std::memory_order_relaxed);
  if (slot.generation->context_->stats) {
    slot.generation->context_->stats->connections.fetch_add(1, std::memory_order_relaxed);
  }
  asio::co_spawn(slot.executor, serve_connection(shared_from_this(), slot_index, slot.generation, std::move(client)),
                 [name = name_](std::exception_ptr e) {
                   if (e) spdlog::error("{}: connection handler ended by an unexpected exception", name);
                 });
}

asio::awaitable<void> Service::accept_loop(std::shared_ptr<Service> self, size_t slot_index) {
  auto& slot = *self->slots_[slot_index];
  asio::steady_timer pause(slot.executor);
  auto backoff = kFirstAcceptBackoff;
  while (!self->stopped_) {
    if (self->at_capacity()) {
      pause.expires_after(kCapacityRecheck);
      co_await pause.async_wait(kUseTuple);
      continue;
    }
    auto client = co_await slot.listener->accept();
    if (!client) {
      if (self->stopped_) break;
      self->note_accept_error(client.error());
      pause.expires_after(backoff);
      co_await pause.async_wait(kUseTuple);
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, kLastAcceptBackoff);
      continue;
    }
    backoff = kFirstAcceptBackoff;
    // Another worker may have taken the last place meanwhile: this client then waits here,
    // as it would have in the listen queue, until a connection ends, or is served anyway
    // when the service stops accepting (like the clients taken from the listen queue).
    bool admitted = false;
    while (!(admitted = self->try_admit()) && !self->stopped_) {
      pause.expires_after(kCapacityRecheck);
      co_await pause.async_wait(kUseTuple);
    }
    self->start_connection(slot_index, std::move(*client), admitted);
  }
}

// A connection's place in its service and generation, from accept until the client stream
// is destroyed: attached to that stream, it stays counted and listed (for close_connections)
// when the stream outlives the handler's coroutine in a relay, and keeps both alive.
class Service::Registration final : public Stream::Attachment {
 public:
  Registration(std::shared_ptr<Service> service, std::shared_ptr<ServiceGeneration> generation, size_t slot,
               Stream* stream)
      : service_(std::move(service)), generation_(std::move(generation)), slot_(slot), stream_(stream) {
    generation_->open_[slot_].insert(stream_);
  }
  ~Registration() override {
    generation_->open_[slot_].erase(stream_);
    generation_->active_.fetch_sub(1, std::memory_order_relaxed);
    service_->open_.fetch_sub(1, std::memory_order_relaxed);
    if (service_->budget_) service_->budget_->open.fetch_sub(1, std::memory_order_relaxed);
  }

 private:
  std::shared_ptr<Service> service_;
  std::shared_ptr<ServiceGeneration> generation_;
  size_t slot_;
  Stream* stream_;  // the accepted stream, which the handler's stream owns
};

asio::awaitable<void> Service::serve_connection(std::shared_ptr<Service> self, size_t slot_index,
                                                std::shared_ptr<ServiceGeneration> generation, StreamPtr client) {
  auto registration = std::make_unique<Registration>(self, generation, slot_index, client.get());
  // The channel's own handshake (TLS, WebSocket) runs here, off the accept loop; the
  // listener logs why one failed.
  auto opened = co_await self->slots_[slot_index]->listener->handshake(std::move(client));
  if (!opened) co_return;
  (*opened)->attach(std::move(registration));
  const auto& handler = *generation->handler_;
  const auto& context = *generation->context_;
  co_await handler.handle(std::move(*opened), context);
}

}  // namespace strait::agent
