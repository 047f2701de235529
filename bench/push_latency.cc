// push_latency: N simulated agents in one process, each with its own AgentControl stream to a
// running strait-controller; measures the time from an Admin Apply to each agent's ACK of
// the snapshot it caused. Run by bench/push_latency.py.
//
//   push_latency CONTROLLER_AGENT_ADDR ADMIN_ADDR CA_FILE JOIN_TOKEN_FILE ADMIN_TOKEN_FILE AGENTS ROUNDS
//   -> "p50_ms p99_ms max_ms samples"
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "strait/v1/admin.grpc.pb.h"
#include "strait/v1/control.grpc.pb.h"

namespace {

using Clock = std::chrono::steady_clock;
using strait::control::v1::AgentMessage;
using strait::control::v1::ControllerMessage;

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream contents;
  contents << in.rdbuf();
  std::string text = contents.str();
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

// What every simulated agent reports to: the current round's start and the ACK times.
struct Round {
  std::mutex mutex;
  std::condition_variable changed;
  int round = 0;                       // snapshots of round r carry the marker "r<round>"
  Clock::time_point started;
  std::vector<double> latencies_ms;    // one per agent per round
  int acked_this_round = 0;
  int connected = 0;
};

class SimAgent final : public grpc::ClientBidiReactor<AgentMessage, ControllerMessage> {
 public:
  SimAgent(strait::control::v1::AgentControl::Stub& stub, const std::string& id, const std::string& token,
           Round& shared)
      : shared_(shared) {
    context_.AddMetadata("authorization", "Bearer " + token);
    stub.async()->Connect(&context_, this);
    AgentMessage hello;
    hello.mutable_hello()->set_agent_id(id);
    (*hello.mutable_hello()->mutable_labels())["role"] = "bench";
    send(std::move(hello));
    StartRead(&incoming_);
    StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;
    auto now = Clock::now();
    const auto& snapshot = incoming_.snapshot();
    AgentMessage ack;
    ack.mutable_ack()->set_version(snapshot.version());
    ack.mutable_ack()->set_nonce(snapshot.nonce());
    ack.mutable_ack()->set_accepted(true);
    send(std::move(ack));
    {
      std::lock_guard lock(shared_.mutex);
      if (!counted_connect_) {
        counted_connect_ = true;
        ++shared_.connected;
      }
      int round = round_of(snapshot);
      if (round == shared_.round && round > 0) {
        shared_.latencies_ms.push_back(std::chrono::duration<double, std::milli>(now - shared_.started).count());
        ++shared_.acked_this_round;
      }
      shared_.changed.notify_all();
    }
    StartRead(&incoming_);
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard lock(mutex_);
    queue_.pop_front();
    if (ok && !queue_.empty()) {
      StartWrite(&queue_.front());
    } else {
      writing_ = false;
    }
  }

  void OnDone(const grpc::Status& status) override {
    if (!status.ok()) std::fprintf(stderr, "push_latency: stream ended: %s\n", status.error_message().c_str());
    std::lock_guard lock(shared_.mutex);
    done_ = true;
    shared_.changed.notify_all();
  }

  void cancel() { context_.TryCancel(); }
  bool done() const { return done_; }

 private:
  // The round number the bench service's name carries ("bench-<round>").
  static int round_of(const strait::control::v1::Snapshot& snapshot) {
    for (const auto& service : snapshot.config().services()) {
      if (service.name().rfind("bench-", 0) == 0) return std::atoi(service.name().c_str() + 6);
    }
    return 0;
  }

  void send(AgentMessage message) {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(message));
    if (!writing_) {
      writing_ = true;
      StartWrite(&queue_.front());
    }
  }

  Round& shared_;
  grpc::ClientContext context_;
  ControllerMessage incoming_;
  std::mutex mutex_;
  std::deque<AgentMessage> queue_;
  bool writing_ = false;
  bool counted_connect_ = false;
  bool done_ = false;  // guarded by shared_.mutex
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 8) {
    std::fprintf(stderr, "usage: %s AGENT_ADDR ADMIN_ADDR CA_FILE JOIN_TOKEN_FILE ADMIN_TOKEN_FILE AGENTS ROUNDS\n",
                 argv[0]);
    return 2;
  }
  const std::string agent_address = argv[1];
  const std::string admin_address = argv[2];
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = read_file(argv[3]);
  const std::string join_token = read_file(argv[4]);
  const std::string admin_token = read_file(argv[5]);
  const int agents = std::atoi(argv[6]);
  const int rounds = std::atoi(argv[7]);

  // Agents share a few connections, as a fleet's streams would share nothing but the
  // controller: one HTTP/2 connection per 64 agents keeps the client side cheap.
  std::vector<std::unique_ptr<strait::control::v1::AgentControl::Stub>> stubs;
  for (int i = 0; i < (agents + 63) / 64; ++i) {
    grpc::ChannelArguments arguments;
    arguments.SetInt("strait.bench.connection", i);  // distinct arguments: distinct connections
    stubs.push_back(strait::control::v1::AgentControl::NewStub(
        grpc::CreateCustomChannel(agent_address, grpc::SslCredentials(ssl), arguments)));
  }
  Round shared;
  std::vector<std::unique_ptr<SimAgent>> fleet;
  for (int i = 0; i < agents; ++i) {
    fleet.push_back(std::make_unique<SimAgent>(*stubs[static_cast<size_t>(i) / 64], "bench-agent-" + std::to_string(i),
                                               join_token, shared));
  }
  {
    std::unique_lock lock(shared.mutex);
    if (!shared.changed.wait_for(lock, std::chrono::seconds(60), [&] { return shared.connected == agents; })) {
      std::fprintf(stderr, "push_latency: only %d of %d agents got their first snapshot\n", shared.connected, agents);
      return 1;
    }
  }
  auto admin = strait::admin::v1::Admin::NewStub(grpc::CreateChannel(admin_address, grpc::SslCredentials(ssl)));
  for (int round = 1; round <= rounds; ++round) {
    strait::admin::v1::ApplyRequest request;
    auto& resource = *request.mutable_resource();
    resource.set_kind("Service");
    // The service's name carries the round so every agent can tell which Apply it answers.
    resource.mutable_metadata()->set_name("bench-" + std::to_string(round));
    auto& service = *resource.mutable_service();
    service.set_addr("127.0.0.1:" + std::to_string(20000 + round));
    service.mutable_handler()->set_type("http");
    {
      std::lock_guard lock(shared.mutex);
      shared.round = round;
      shared.acked_this_round = 0;
      shared.started = Clock::now();
    }
    grpc::ClientContext context;
    context.AddMetadata("authorization", "Bearer " + admin_token);
    strait::admin::v1::ApplyResponse response;
    auto status = admin->Apply(&context, request, &response);
    if (!status.ok()) {
      std::fprintf(stderr, "push_latency: apply failed: %s\n", status.error_message().c_str());
      return 1;
    }
    std::unique_lock lock(shared.mutex);
    if (!shared.changed.wait_for(lock, std::chrono::seconds(60), [&] { return shared.acked_this_round == agents; })) {
      std::fprintf(stderr, "push_latency: round %d: %d of %d agents acked\n", round, shared.acked_this_round, agents);
      return 1;
    }
    lock.unlock();
    // Each round adds one service and then removes it, so every snapshot stays small.
    grpc::ClientContext delete_context;
    delete_context.AddMetadata("authorization", "Bearer " + admin_token);
    strait::admin::v1::DeleteRequest remove;
    remove.set_kind("Service");
    remove.set_name("bench-" + std::to_string(round));
    strait::admin::v1::DeleteResponse removed;
    admin->Delete(&delete_context, remove, &removed);
  }
  for (auto& agent : fleet) agent->cancel();
  {
    std::unique_lock lock(shared.mutex);
    shared.changed.wait_for(lock, std::chrono::seconds(10), [&] {
      return std::all_of(fleet.begin(), fleet.end(), [](auto& agent) { return agent->done(); });
    });
  }
  auto& samples = shared.latencies_ms;
  std::sort(samples.begin(), samples.end());
  auto at = [&](double p) { return samples[std::min(samples.size() - 1, static_cast<size_t>(p * samples.size()))]; };
  std::printf("%.2f %.2f %.2f %zu\n", at(0.5), at(0.99), samples.back(), samples.size());
  return 0;
}
