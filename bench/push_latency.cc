// push_latency: N simulated agents in one process. Each enrols (a key and CSR of its own, the
// join token, AgentControl.Enroll asking for role=bench), then opens its AgentControl stream
// over a connection of its own, with mTLS under the certificate it got, as a fleet of real
// agents would. Measures the time from an Admin Apply to each agent's ACK of the snapshot it
// caused. Run by bench/push_latency.py.
//
//   push_latency CONTROLLER_AGENT_ADDR ADMIN_ADDR CA_FILE JOIN_TOKEN_FILE ADMIN_TOKEN_FILE AGENTS ROUNDS
//
// Prints on stdout, one line each, as each phase ends:
//   "enrolled <seconds>"    every agent holds its certificate (the Enroll calls, keys made before)
//   "connected <seconds>"   every agent's stream is up and has its first snapshot
//   "latency <p50_ms> <p99_ms> <max_ms> <samples>"
// and reads a line from stdin after "connected" and after "latency" (before the rounds, and
// before closing the streams), so that a driver can sample the controller in between; with
// stdin at end of file (</dev/null) it goes straight on.
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/synchronization/mutex.h"
#include "common/agent_certificate.h"
#include "strait/v1/admin.grpc.pb.h"
#include "strait/v1/control.grpc.pb.h"

namespace {

using Clock = std::chrono::steady_clock;
using strait::control::v1::AgentMessage;
using strait::control::v1::ControllerMessage;

// Streams opened but not yet holding their first snapshot, at most: the handshakes wait here,
// not all 10 000 at once in the controller's listen backlog.
constexpr int kConnectWindow = 128;
// Enroll calls in flight (blocking calls, one per thread); the controller does one at a time.
constexpr int kEnrollThreads = 16;
// A phase fails when nothing moved for this long.
constexpr auto kStall = std::chrono::seconds(60);

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream contents;
  contents << in.rdbuf();
  std::string text = contents.str();
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// What every simulated agent reports to: the current round's start and the ACK times.
struct Round {
  std::mutex mutex;
  std::condition_variable changed;
  int round = 0;                     // snapshots of round r carry the service "bench-<r>"
  Clock::time_point started;
  std::vector<double> latencies_ms;  // one per agent per round
  int acked_this_round = 0;
  int connected = 0;                 // agents that got their first snapshot
  int ended = 0;                     // streams that are over
  int failed = 0;                    // of those, ended with an error we did not cause
  std::string first_error;
  bool cancelling = false;
};

class SimAgent final : public grpc::ClientBidiReactor<AgentMessage, ControllerMessage> {
 public:
  SimAgent(const std::string& address, grpc::SslCredentialsOptions tls, const std::string& id, Round& shared)
      : shared_(shared), id_(id) {
    grpc::ChannelArguments arguments;
    // A connection of its own: TLS identity is per connection, so agents must not share
    // subchannels (the global pool would hand every channel to the same address the same one).
    arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    stub_ = strait::control::v1::AgentControl::NewStub(
        grpc::CreateCustomChannel(address, grpc::SslCredentials(tls), arguments));
  }

  void start() {
    // A connection refused or reset while the controller is busy with handshakes is retried
    // with gRPC's backoff instead of failing the stream.
    context_.set_wait_for_ready(true);
    stub_->async()->Connect(&context_, this);
    AgentMessage hello;
    hello.mutable_hello()->set_agent_id(id_);  // must be the certificate's; labels come from enrolment
    hello.mutable_hello()->set_agent_version("push_latency");
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
    std::lock_guard lock(shared_.mutex);
    ++shared_.ended;
    if (!shared_.cancelling || status.error_code() != grpc::StatusCode::CANCELLED) {
      if (shared_.failed++ == 0) {
        shared_.first_error = id_ + ": " + std::to_string(status.error_code()) + " " + status.error_message();
      }
    }
    shared_.changed.notify_all();
  }

  void cancel() { context_.TryCancel(); }

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
  std::string id_;
  std::unique_ptr<strait::control::v1::AgentControl::Stub> stub_;
  grpc::ClientContext context_;
  ControllerMessage incoming_;
  std::mutex mutex_;
  std::deque<AgentMessage> queue_;
  bool writing_ = false;
  bool counted_connect_ = false;
};

// Waits until `done` holds, failing when `progress` (a count) has not moved for kStall.
template <typename Done, typename Progress>
bool wait_progressing(std::unique_lock<std::mutex>& lock, std::condition_variable& changed, Done done,
                      Progress progress) {
  auto last = progress();
  auto moved = Clock::now();
  while (!done()) {
    changed.wait_for(lock, std::chrono::seconds(1));
    if (auto now = progress(); now != last) {
      last = now;
      moved = Clock::now();
    } else if (Clock::now() - moved > kStall) {
      return false;
    }
  }
  return true;
}

void raise_descriptor_limit(int agents) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  limit.rlim_cur = limit.rlim_max;
  setrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < static_cast<rlim_t>(agents) + 256) {
    std::fprintf(stderr, "push_latency: %d agents need a descriptor each, the hard limit is %llu\n", agents,
                 static_cast<unsigned long long>(limit.rlim_cur));
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 8) {
    std::fprintf(stderr, "usage: %s AGENT_ADDR ADMIN_ADDR CA_FILE JOIN_TOKEN_FILE ADMIN_TOKEN_FILE AGENTS ROUNDS\n",
                 argv[0]);
    return 2;
  }
  const std::string agent_address = argv[1];
  const std::string admin_address = argv[2];
  const std::string ca_pem = read_file(argv[3]);
  const std::string join_token = read_file(argv[4]);
  const std::string admin_token = read_file(argv[5]);
  const int agents = std::atoi(argv[6]);
  const int rounds = std::atoi(argv[7]);
  if (agents < 1 || rounds < 1) {
    std::fprintf(stderr, "push_latency: AGENTS and ROUNDS must be at least 1\n");
    return 2;
  }
  raise_descriptor_limit(agents);
  // Debian builds Abseil without NDEBUG, which leaves absl::Mutex's deadlock detection on:
  // every lock of one of gRPC's mutexes looks it up in a process-wide graph of all of them.
  // With 10 000 connections that doubled this process's CPU time, taken from the two cores
  // the controller under measurement runs on.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  grpc::SslCredentialsOptions server_only;
  server_only.pem_root_certs = ca_pem;
  auto id_of = [](int i) { return "bench-agent-" + std::to_string(i); };

  // Keys first (an agent makes its key once, before it ever talks to the controller), on
  // both cores: not part of the enrolment time.
  auto keys_started = Clock::now();
  std::vector<strait::common::AgentKey> keys(static_cast<size_t>(agents));
  {
    std::atomic<bool> key_failed{false};
    std::vector<std::thread> makers;
    for (int t = 0; t < 2; ++t) {
      makers.emplace_back([&, t] {
        for (int i = t; i < agents; i += 2) {
          auto key = strait::common::make_agent_key(id_of(i));
          if (!key.ok()) {
            key_failed = true;
            return;
          }
          keys[static_cast<size_t>(i)] = *std::move(key);
        }
      });
    }
    for (auto& maker : makers) maker.join();
    if (key_failed) {
      std::fprintf(stderr, "push_latency: cannot make agent keys\n");
      return 1;
    }
  }
  std::fprintf(stderr, "push_latency: %d keys in %.2f s\n", agents, seconds_since(keys_started));

  // Enrolment: a few blocking calls at a time over one TLS connection without a client
  // certificate, as an agent enrols before it has one.
  std::vector<std::string> certificates(static_cast<size_t>(agents));
  {
    auto stub = strait::control::v1::AgentControl::NewStub(
        grpc::CreateChannel(agent_address, grpc::SslCredentials(server_only)));
    std::mutex error_mutex;
    std::string enrol_error;
    std::atomic<int> rate_limited{0};
    std::atomic<int> next{0};
    auto enrol_started = Clock::now();
    std::vector<std::thread> workers;
    for (int t = 0; t < std::min(kEnrollThreads, agents); ++t) {
      workers.emplace_back([&] {
        for (int i = next++; i < agents; i = next++) {
          strait::control::v1::EnrollRequest request;
          request.set_agent_id(id_of(i));
          (*request.mutable_labels())["role"] = "bench";
          request.set_csr_pem(keys[static_cast<size_t>(i)].csr_pem);
          request.set_agent_version("push_latency");
          for (int attempt = 0;; ++attempt) {
            grpc::ClientContext context;
            context.AddMetadata("authorization", "Bearer " + join_token);
            context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
            context.set_wait_for_ready(true);
            strait::control::v1::EnrollResponse response;
            auto status = stub->Enroll(&context, request, &response);
            std::string problem;
            if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED && attempt < 200) {
              ++rate_limited;  // the controller's enrolment rate: try again shortly
              std::this_thread::sleep_for(std::chrono::milliseconds(50));
              continue;
            }
            if (!status.ok()) {
              problem = id_of(i) + ": " + status.error_message();
            } else if (response.labels().find("role") == response.labels().end() ||
                       response.labels().at("role") != "bench") {
              problem = id_of(i) + " was not granted role=bench (start the controller with "
                                   "--bootstrap-token-labels role=*)";
            }
            if (!problem.empty()) {
              std::lock_guard lock(error_mutex);
              if (enrol_error.empty()) enrol_error = problem;
              next = agents;  // the others stop too
              return;
            }
            certificates[static_cast<size_t>(i)] = response.certificate_pem();
            break;
          }
        }
      });
    }
    for (auto& worker : workers) worker.join();
    if (!enrol_error.empty()) {
      std::fprintf(stderr, "push_latency: enrolment failed: %s\n", enrol_error.c_str());
      return 1;
    }
    if (rate_limited > 0) {
      std::fprintf(stderr, "push_latency: %d enrolments were rate limited and retried\n", rate_limited.load());
    }
    std::printf("enrolled %.3f\n", seconds_since(enrol_started));
    std::fflush(stdout);
  }

  // Streams: each agent on a connection of its own with its certificate, opened a window at
  // a time.
  Round shared;
  std::vector<std::unique_ptr<SimAgent>> fleet;
  fleet.reserve(static_cast<size_t>(agents));
  auto connect_started = Clock::now();
  {
    std::unique_lock lock(shared.mutex);
    auto progress = [&] { return shared.connected + shared.ended; };
    for (int i = 0; i < agents; ++i) {
      if (!wait_progressing(
              lock, shared.changed,
              [&] { return shared.failed > 0 || i - shared.connected - shared.ended < kConnectWindow; }, progress)) {
        break;
      }
      if (shared.failed > 0) break;
      grpc::SslCredentialsOptions tls;
      tls.pem_root_certs = ca_pem;
      tls.pem_private_key = std::move(keys[static_cast<size_t>(i)].key_pem);
      tls.pem_cert_chain = std::move(certificates[static_cast<size_t>(i)]);
      lock.unlock();
      fleet.push_back(std::make_unique<SimAgent>(agent_address, std::move(tls), id_of(i), shared));
      fleet.back()->start();
      lock.lock();
    }
    bool all = shared.failed == 0 &&
               wait_progressing(
                   lock, shared.changed, [&] { return shared.failed > 0 || shared.connected == agents; }, progress) &&
               shared.failed == 0;
    if (!all) {
      std::fprintf(stderr, "push_latency: %d of %d agents got their first snapshot; %d streams failed%s%s\n",
                   shared.connected, agents, shared.failed, shared.failed > 0 ? ", first: " : "",
                   shared.first_error.c_str());
      std::fflush(stderr);
      std::_Exit(1);  // streams still open: no orderly teardown
    }
  }
  std::printf("connected %.3f\n", seconds_since(connect_started));
  std::fflush(stdout);
  std::string line;
  std::getline(std::cin, line);

  auto admin = strait::admin::v1::Admin::NewStub(grpc::CreateChannel(admin_address, grpc::SslCredentials(server_only)));
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
      std::_Exit(1);
    }
    {
      std::unique_lock lock(shared.mutex);
      if (!wait_progressing(
              lock, shared.changed, [&] { return shared.failed > 0 || shared.acked_this_round == agents; },
              [&] { return shared.acked_this_round; }) ||
          shared.failed > 0) {
        std::fprintf(stderr, "push_latency: round %d: %d of %d agents acked; %d streams failed%s%s\n", round,
                     shared.acked_this_round, agents, shared.failed, shared.failed > 0 ? ", first: " : "",
                     shared.first_error.c_str());
        std::fflush(stderr);
        std::_Exit(1);
      }
    }
    // Each round adds one service and then removes it, so every snapshot stays small.
    grpc::ClientContext delete_context;
    delete_context.AddMetadata("authorization", "Bearer " + admin_token);
    strait::admin::v1::DeleteRequest remove;
    remove.set_kind("Service");
    remove.set_name("bench-" + std::to_string(round));
    strait::admin::v1::DeleteResponse removed;
    status = admin->Delete(&delete_context, remove, &removed);
    if (!status.ok()) {
      std::fprintf(stderr, "push_latency: delete failed: %s\n", status.error_message().c_str());
      std::_Exit(1);
    }
  }
  std::vector<double> samples;
  {
    std::lock_guard lock(shared.mutex);
    samples = shared.latencies_ms;
  }
  std::sort(samples.begin(), samples.end());
  auto at = [&](double p) { return samples[std::min(samples.size() - 1, static_cast<size_t>(p * samples.size()))]; };
  std::printf("latency %.2f %.2f %.2f %zu\n", at(0.5), at(0.99), samples.back(), samples.size());
  std::fflush(stdout);
  std::getline(std::cin, line);

  {
    std::lock_guard lock(shared.mutex);
    shared.cancelling = true;
  }
  for (auto& agent : fleet) agent->cancel();
  bool all_done;
  {
    std::unique_lock lock(shared.mutex);
    all_done = shared.changed.wait_for(lock, std::chrono::seconds(30), [&] { return shared.ended == agents; });
  }
  if (!all_done) {
    std::fprintf(stderr, "push_latency: %d of %d streams had not ended 30 s after cancelling\n", shared.ended, agents);
    std::fflush(stderr);
    std::_Exit(0);  // the figures are out; a reactor still running must not outlive its object
  }
  return 0;
}
