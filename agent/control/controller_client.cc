#include "agent/control/controller_client.h"

#include <fstream>
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

// Initial metadata of a stream strait-controller took (controller/server/agent_service.h):
// all that comes when the agent serves its snapshot already.
constexpr char kAdmitted[] = "strait-admitted";

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
  if (options_.identity) adopt(*std::move(options_.identity), "from the state dir");
  options_.identity.reset();
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
    // Only a stream that served and ended for another reason than a refusal or a newer
    // stream of this id resets the backoff: two agents sharing an id must not take turns.
    SessionEnd end = ensure_identity() ? session() : SessionEnd::kFailed;
    if (end == SessionEnd::kServed) backoff = options_.initial_backoff;
    // Another replica, if there is one, may be up where this one is not; the version the
    // agent holds goes with it, so a replica with the same resources pushes nothing.
    current_address_ = (current_address_ + 1) % options_.addresses.size();
    auto delay = jittered(backoff);
    spdlog::info("controller {}: reconnecting in {} ms", address(), delay.count());
    if (!wait(delay)) return;
    backoff = std::min(options_.max_backoff, backoff * 2);
  }
}

void ControllerClient::adopt(StoredIdentity files, const std::string& how) {
  auto facts = common::read_certificate(files.cert_pem);
  if (!facts.ok() || facts->agent_id.empty()) {
    spdlog::error("agent certificate {} is unusable: {}", how,
                  facts.ok() ? std::string("it names no agent") : common::to_std(facts.status().message()));
    return;
  }
  identity_ = Identity{std::move(files), *std::move(facts)};
}

std::string ControllerClient::join_token() const {
  if (!options_.join_token_file.empty()) {
    std::ifstream in(options_.join_token_file);
    std::string token;
    std::getline(in, token);
    return std::string(common::strip_whitespace(token));
  }
  return options_.join_token;
}

std::shared_ptr<grpc::Channel> ControllerClient::channel(const Identity* identity) const {
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = options_.ca_pem;
  if (identity != nullptr) {
    ssl.pem_private_key = identity->files.key_pem;
    ssl.pem_cert_chain = identity->files.cert_pem;
  }
  grpc::ChannelArguments arguments;
  arguments.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  arguments.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  return grpc::CreateCustomChannel(address(), grpc::SslCredentials(ssl), arguments);
}

bool ControllerClient::ensure_identity() {
  // A margin, so that a certificate is not presented in the second it expires.
  constexpr int64_t kMarginSeconds = 5;
  if (identity_ && identity_->facts.not_after_unix > now_millis() / 1000 + kMarginSeconds) return true;
  std::string token = join_token();
  if (token.empty()) {
    if (!told_no_token_) {
      spdlog::error("controller {}: {}; give a join token (--join-token-file) to enrol", address(),
                    identity_ ? "this agent's certificate expired" : "this agent has no certificate yet");
      told_no_token_ = true;
    }
    return false;
  }
  auto key = common::make_agent_key(options_.agent_id);
  if (!key.ok()) {
    spdlog::error("cannot enrol: {}", common::to_std(key.status().message()));
    return false;
  }
  control::v1::EnrollRequest request;
  request.set_agent_id(options_.agent_id);
  request.mutable_labels()->insert(options_.labels.begin(), options_.labels.end());
  request.set_csr_pem(key->csr_pem);
  request.set_agent_version(options_.agent_version);
  auto stub = control::v1::AgentControl::NewStub(channel(nullptr));
  grpc::ClientContext context;
  context.AddMetadata("authorization", "Bearer " + token);
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  control::v1::EnrollResponse response;
  grpc::Status status = stub->Enroll(&context, request, &response);
  if (!status.ok()) {
    spdlog::error("controller {} refused to enrol agent {}: {}", address(), options_.agent_id,
                  status.error_message());
    return false;
  }
  StoredIdentity files{key->key_pem, response.certificate_pem()};
  if (auto saved = state_.save_identity(files); !saved.ok()) {
    // Without it the next start would find the id taken by the certificate it lost.
    spdlog::error("enrolled, but cannot keep the certificate: {}", common::to_std(saved.message()));
    return false;
  }
  std::vector<std::string> requested;
  for (const auto& [name, value] : response.requested_labels()) requested.push_back(name + "=" + value);
  spdlog::info("enrolled as agent {}; certificate in {}{}", response.agent_id(), state_.identity_path(),
               requested.empty() ? "" : "; labels not granted by the token, waiting for an operator: " + common::join(requested, ","));
  adopt(std::move(files), "from the controller");
  return identity_.has_value();
}

void ControllerClient::renew_if_due(control::v1::AgentControl::Stub& stub) {
  const auto& facts = identity_->facts;
  int64_t renew_at = facts.not_before_unix + (facts.not_after_unix - facts.not_before_unix) * 2 / 3;
  if (now_millis() / 1000 < renew_at) return;
  auto key = common::make_agent_key(identity_->facts.agent_id);
  if (!key.ok()) return;
  control::v1::RenewRequest request;
  request.set_csr_pem(key->csr_pem);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  control::v1::EnrollResponse response;
  grpc::Status status = stub.Renew(&context, request, &response);
  if (!status.ok()) {
    spdlog::warn("controller {}: certificate renewal failed: {}", address(), status.error_message());
    return;
  }
  StoredIdentity files{key->key_pem, response.certificate_pem()};
  if (auto saved = state_.save_identity(files); !saved.ok()) {
    spdlog::error("renewed, but cannot keep the certificate: {}", common::to_std(saved.message()));
    return;
  }
  spdlog::info("certificate renewed (until {})", common::utc_timestamp(response.expires_unix()));
  adopt(std::move(files), "renewed");
}

ControllerClient::SessionEnd ControllerClient::session() {
  auto stub = control::v1::AgentControl::NewStub(channel(&*identity_));
  grpc::ClientContext context;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return SessionEnd::kFailed;
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
  fields.set_agent_id(identity_->facts.agent_id);
  fields.set_agent_version(options_.agent_version);
  for (const auto& capability : options_.capabilities) fields.add_capabilities(capability);
  fields.set_applied_version(applied_version());
  bool got_snapshot = false;
  if (write(hello)) {
    std::mutex ticker_mutex;
    std::condition_variable ticker_wake;
    bool session_over = false;
    // Heartbeats, status and certificate renewal. While it runs, this thread only reads the
    // stream, so the ticker may replace identity_.
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
        lock.unlock();
        renew_if_due(*stub);
        lock.lock();
      }
    });
    ControllerMessage incoming;
    while (stream->Read(&incoming)) {
      if (!incoming.has_snapshot()) continue;
      if (!got_snapshot) spdlog::info("controller {}: connected as agent {}", address(), fields.agent_id());
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
    if (stopping_) return SessionEnd::kFailed;
  }
  // Served: its snapshot came, or the controller said it took the stream (nothing comes when
  // the agent holds its snapshot already).
  const auto& initial = context.GetServerInitialMetadata();
  bool served = got_snapshot || initial.find(kAdmitted) != initial.end();
  switch (status.error_code()) {
    case grpc::StatusCode::PERMISSION_DENIED:
      spdlog::error("controller {} refused agent {}: {}; to enrol again, remove {} and start with a join token",
                    address(), fields.agent_id(), status.error_message(), state_.identity_path());
      return SessionEnd::kRefused;
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::ABORTED:
    case grpc::StatusCode::UNAUTHENTICATED:
      spdlog::error("controller {} ended the stream of agent {}: {}", address(), fields.agent_id(),
                    status.error_message());
      return SessionEnd::kRefused;
    default:
      spdlog::warn("controller {}: stream ended: {}", address(),
                   status.ok() ? std::string("closed by the controller") : status.error_message());
      return served ? SessionEnd::kServed : SessionEnd::kFailed;
  }
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
