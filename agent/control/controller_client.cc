#include "agent/control/controller_client.h"

#include <random>

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include "common/resource_error.h"
#include "common/strings.h"
#include "strait/v1/control.grpc.pb.h"

namespace strait::agent {
namespace {

using control::v1::AgentMessage;
using control::v1::ControllerMessage;

int64_t now_millis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Full jitter between half and all of `ceiling`, so agents that lost the same controller do
// not all come back at the same moment.
std::chrono::milliseconds jittered(std::chrono::milliseconds ceiling) {
  static thread_local std::mt19937_64 random{std::random_device{}()};
  std::uniform_int_distribution<int64_t> spread(ceiling.count() / 2, ceiling.count());
  return std::chrono::milliseconds(spread(random));
}

}  // namespace

ControllerClient::ControllerClient(ControllerClientOptions options, StateDir state, Apply apply, Report report,
                                   std::optional<control::v1::Snapshot> applied)
    : options_(std::move(options)), state_(std::move(state)), apply_(std::move(apply)), report_(std::move(report)) {
  if (applied) applied_version_ = applied->version();
}

ControllerClient::~ControllerClient() { stop(); }

void ControllerClient::start() {
  thread_ = std::thread([this] { run(); });
}

void ControllerClient::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    if (current_ != nullptr) current_->TryCancel();
    wake_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

bool ControllerClient::wait(std::chrono::milliseconds delay) {
  std::unique_lock lock(mutex_);
  return !wake_.wait_for(lock, delay, [this] { return stopping_; });
}

void ControllerClient::run() {
  auto backoff = options_.initial_backoff;
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
    }
    bool got_snapshot = session();
    if (got_snapshot) backoff = options_.initial_backoff;
    auto delay = jittered(backoff);
    spdlog::info("controller {}: reconnecting in {} ms", options_.address, delay.count());
    if (!wait(delay)) return;
    backoff = std::min(options_.max_backoff, backoff * 2);
  }
}

bool ControllerClient::session() {
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = options_.ca_pem;
  grpc::ChannelArguments arguments;
  arguments.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  arguments.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  auto channel = grpc::CreateCustomChannel(options_.address, grpc::SslCredentials(ssl), arguments);
  auto stub = control::v1::AgentControl::NewStub(channel);
  grpc::ClientContext context;
  context.AddMetadata("authorization", "Bearer " + options_.join_token);
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return false;
    current_ = &context;
  }
  auto stream = stub->Connect(&context);
  std::mutex write_mutex;  // one writer at a time: acks here, heartbeats on the ticker
  auto write = [&](const AgentMessage& message) {
    std::lock_guard lock(write_mutex);
    return stream->Write(message);
  };

  AgentMessage hello;
  auto& fields = *hello.mutable_hello();
  fields.set_agent_id(options_.agent_id);
  fields.mutable_labels()->insert(options_.labels.begin(), options_.labels.end());
  fields.set_agent_version(options_.agent_version);
  for (const auto& capability : options_.capabilities) fields.add_capabilities(capability);
  fields.set_applied_version(applied_version());
  bool got_snapshot = false;
  if (write(hello)) {
    std::mutex ticker_mutex;
    std::condition_variable ticker_wake;
    bool session_over = false;
    std::thread ticker([&] {
      std::unique_lock lock(ticker_mutex);
      for (int tick = 1;; ++tick) {
        if (ticker_wake.wait_for(lock, options_.heartbeat_interval, [&] { return session_over; })) return;
        AgentMessage message;
        if (tick % 2 == 0) {
          *message.mutable_status() = status_report();
        } else {
          message.mutable_heartbeat()->set_unix_millis(now_millis());
        }
        if (!write(message)) return;
      }
    });
    ControllerMessage incoming;
    while (stream->Read(&incoming)) {
      if (!incoming.has_snapshot()) continue;
      if (!got_snapshot) spdlog::info("controller {}: connected as agent {}", options_.address, options_.agent_id);
      got_snapshot = true;
      AgentMessage answer;
      *answer.mutable_ack() = handle(incoming.snapshot());
      write(answer);
      AgentMessage status;
      *status.mutable_status() = status_report();
      write(status);
    }
    {
      std::lock_guard lock(ticker_mutex);
      session_over = true;
      ticker_wake.notify_all();
    }
    ticker.join();
  }
  grpc::Status status = stream->Finish();
  {
    std::lock_guard lock(mutex_);
    current_ = nullptr;
    if (stopping_) return got_snapshot;
  }
  if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
    spdlog::error("controller {} refused this agent: {} (check --join-token)", options_.address, status.error_message());
  } else {
    spdlog::warn("controller {}: stream ended: {}", options_.address,
                 status.ok() ? std::string("closed by the controller") : status.error_message());
  }
  return got_snapshot;
}

std::string ControllerClient::applied_version() {
  std::lock_guard lock(mutex_);
  return applied_version_;
}

control::v1::Status ControllerClient::status_report() {
  control::v1::Status status = report_();
  status.set_applied_version(applied_version());
  return status;
}

control::v1::Ack ControllerClient::handle(const control::v1::Snapshot& snapshot) {
  control::v1::Ack ack;
  ack.set_version(snapshot.version());
  ack.set_nonce(snapshot.nonce());
  absl::Status applied = apply_(snapshot.config());
  if (!applied.ok()) {
    ack.set_accepted(false);
    ack.set_error(std::string(applied.message()));
    if (auto resource = common::resource_of(applied)) {
      auto& error = *ack.add_resource_errors();
      error.set_kind(resource->first);
      error.set_name(resource->second);
      error.set_message(std::string(applied.message()));
    }
    std::string serving = applied_version();
    spdlog::error("snapshot {} refused, still serving {}: {}", snapshot.version(),
                  serving.empty() ? "the previous config" : serving, common::to_std(applied.message()));
    return ack;
  }
  if (auto saved = state_.save_snapshot(snapshot); !saved.ok()) {
    // Serving it is what matters; the next start would fall back to an older snapshot.
    spdlog::warn("snapshot {} applied but not persisted: {}", snapshot.version(), common::to_std(saved.message()));
  }
  {
    std::lock_guard lock(mutex_);
    applied_version_ = snapshot.version();
  }
  ack.set_accepted(true);
  spdlog::info("snapshot {} applied ({} services)", snapshot.version(), snapshot.config().services_size());
  return ack;
}

}  // namespace strait::agent
