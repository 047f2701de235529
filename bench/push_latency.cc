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
//
// When the line after "latency" is "restart": one more round, so that every agent holds the
// newest snapshot, then "armed", upon which the driver kills the controller and starts it
// again; every agent reconnects as the real one does (its backoff and jitter, a new
// connection per attempt, its applied version in the Hello). Then, from "armed":
//   "reconnected <seconds until all are back> <p50_ms> <p99_ms> <attempts>"
//   "after-restart <p50_ms> <p99_ms> <max_ms>"   a change pushed once all are back
// and another line from stdin before closing the streams.
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <map>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <random>
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

// How the real agent reconnects (agent/control/controller_client.cc): after a stream that
// served, the backoff starts again at 500 ms; each attempt, on a new channel, waits a full
// jitter between half and all of the backoff, which then doubles, up to 30 s.
constexpr auto kInitialBackoff = std::chrono::milliseconds(500);
constexpr auto kMaxBackoff = std::chrono::milliseconds(30000);
// The controller's initial metadata on a stream it took (controller/server/agent_service.h).
constexpr char kAdmittedMetadata[] = "strait-admitted";

std::chrono::milliseconds uniform_ms(int64_t low, int64_t high) {
  static thread_local std::mt19937_64 random{std::random_device{}()};
  return std::chrono::milliseconds(std::uniform_int_distribution<int64_t>(low, high)(random));
}

// What every simulated agent reports to: the current round's start and the ACK times, and
// the reconnections after a controller restart.
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
  // Restart phase: a stream that ends is opened again, as the real agent does.
  bool restarting = false;
  Clock::time_point restart_started;
  std::vector<double> reconnect_ms;  // per agent: from the restart to its stream admitted again
  int attempts = 0;                  // streams opened since the restart
};

// Runs callbacks at their time on one thread (the simulated agents' reconnect timers).
class Scheduler {
 public:
  Scheduler() : thread_([this] { run(); }) {}
  ~Scheduler() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
      wake_.notify_all();
    }
    thread_.join();
  }

  void at(Clock::time_point when, std::function<void()> job) {
    std::lock_guard lock(mutex_);
    jobs_.emplace(when, std::move(job));
    wake_.notify_all();
  }

 private:
  void run() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      if (jobs_.empty()) {
        wake_.wait(lock);
        continue;
      }
      auto first = jobs_.begin();
      if (first->first > Clock::now()) {
        wake_.wait_until(lock, first->first);
        continue;
      }
      auto job = std::move(first->second);
      jobs_.erase(first);
      lock.unlock();
      job();
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::multimap<Clock::time_point, std::function<void()>> jobs_;
  bool stopping_ = false;
  std::thread thread_;
};

class SimAgent;

// One AgentControl stream of a simulated agent: Hello, then an ACK for every snapshot.
class AgentStream final : public grpc::ClientBidiReactor<AgentMessage, ControllerMessage> {
 public:
  explicit AgentStream(SimAgent& agent) : agent_(agent) {}
  void start(strait::control::v1::AgentControl::Stub& stub, bool wait_for_ready, const std::string& id,
             const std::string& applied_version);
  void OnReadInitialMetadataDone(bool ok) override;
  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;
  void cancel() { context_.TryCancel(); }
  bool done() const { return done_.load(); }

 private:
  void send(AgentMessage message);

  SimAgent& agent_;
  grpc::ClientContext context_;
  ControllerMessage incoming_;
  std::mutex mutex_;
  std::deque<AgentMessage> queue_;
  bool writing_ = false;
  bool admitted_ = false;  // read and written on this stream's reactor callbacks only
  std::atomic<bool> done_{false};
};

class SimAgent {
 public:
  SimAgent(const std::string& address, grpc::SslCredentialsOptions tls, const std::string& id, Round& shared,
           Scheduler& scheduler)
      : address_(address), tls_(std::move(tls)), id_(id), shared_(shared), scheduler_(scheduler) {
    open_channel();
  }

  // Opens a stream on the current channel or a new one (waiting for the connection to come
  // up when asked).
  void connect(bool wait_for_ready, bool new_channel = false) {
    std::lock_guard lock(mutex_);
    if (stream_ != nullptr) {
      // Its OnDone has run (that is what scheduled this), but may not have returned yet.
      while (!stream_->done()) std::this_thread::yield();
    }
    if (new_channel) open_channel();
    stream_ = std::make_unique<AgentStream>(*this);
    stream_->start(*stub_, wait_for_ready, id_, applied_version_);
  }

  void cancel() {
    std::lock_guard lock(mutex_);
    if (stream_ != nullptr) stream_->cancel();
  }

  // The controller took the stream: its first snapshot or its admission metadata came.
  void on_admitted() {
    std::lock_guard lock(shared_.mutex);
    if (!counted_connect_) {
      counted_connect_ = true;
      ++shared_.connected;
    }
    if (shared_.restarting && !back_) {
      back_ = true;
      shared_.reconnect_ms.push_back(
          std::chrono::duration<double, std::milli>(Clock::now() - shared_.restart_started).count());
    }
    shared_.changed.notify_all();
  }

  void on_snapshot(const strait::control::v1::Snapshot& snapshot, Clock::time_point received) {
    {
      std::lock_guard lock(mutex_);
      applied_version_ = snapshot.version();  // what the next Hello says it serves
    }
    std::lock_guard lock(shared_.mutex);
    int round = round_of(snapshot);
    if (round == shared_.round && round > 0) {
      shared_.latencies_ms.push_back(std::chrono::duration<double, std::milli>(received - shared_.started).count());
      ++shared_.acked_this_round;
      shared_.changed.notify_all();
    }
  }

  void on_done(const grpc::Status& status, bool admitted) {
    std::lock_guard lock(shared_.mutex);
    if (!shared_.restarting || shared_.cancelling) {
      ++shared_.ended;
      if (!shared_.cancelling || status.error_code() != grpc::StatusCode::CANCELLED) {
        if (shared_.failed++ == 0) {
          shared_.first_error = id_ + ": " + std::to_string(status.error_code()) + " " + status.error_message();
        }
      }
      shared_.changed.notify_all();
      return;
    }
    if (admitted) backoff_ = kInitialBackoff;
    auto delay = uniform_ms(backoff_.count() / 2, backoff_.count());
    backoff_ = std::min(kMaxBackoff, backoff_ * 2);
    ++shared_.attempts;
    scheduler_.at(Clock::now() + delay, [this] { connect(false, true); });
  }

  void reset_restart() { back_ = false; }  // under shared_.mutex

 private:
  // The newest round a bench service's name carries ("bench-<round>").
  static int round_of(const strait::control::v1::Snapshot& snapshot) {
    int round = 0;
    for (const auto& service : snapshot.config().services()) {
      if (service.name().rfind("bench-", 0) == 0) round = std::max(round, std::atoi(service.name().c_str() + 6));
    }
    return round;
  }

  void open_channel() {
    grpc::ChannelArguments arguments;
    // A connection of its own: TLS identity is per connection, so agents must not share
    // subchannels (the global pool would hand every channel to the same address the same one).
    arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    stub_ = strait::control::v1::AgentControl::NewStub(
        grpc::CreateCustomChannel(address_, grpc::SslCredentials(tls_), arguments));
  }

  const std::string address_;
  const grpc::SslCredentialsOptions tls_;
  const std::string id_;
  Round& shared_;
  Scheduler& scheduler_;
  std::mutex mutex_;  // guards the stream, the stub and the applied version
  std::unique_ptr<strait::control::v1::AgentControl::Stub> stub_;
  std::unique_ptr<AgentStream> stream_;
  std::string applied_version_;
  std::chrono::milliseconds backoff_ = kInitialBackoff;  // on_done only: one stream at a time
  bool counted_connect_ = false;                         // under shared_.mutex
  bool back_ = false;                                    // under shared_.mutex
};

void AgentStream::start(strait::control::v1::AgentControl::Stub& stub, bool wait_for_ready, const std::string& id,
                        const std::string& applied_version) {
  // A connection refused or reset while the controller is busy with handshakes is retried
  // with gRPC's backoff instead of failing the stream (the first connect only: after a
  // restart, the agent's own backoff decides, as in the real agent).
  context_.set_wait_for_ready(wait_for_ready);
  stub.async()->Connect(&context_, this);
  AgentMessage hello;
  hello.mutable_hello()->set_agent_id(id);  // must be the certificate's; labels come from enrolment
  hello.mutable_hello()->set_agent_version("push_latency");
  hello.mutable_hello()->set_applied_version(applied_version);
  send(std::move(hello));
  StartRead(&incoming_);
  StartCall();
}

void AgentStream::OnReadInitialMetadataDone(bool ok) {
  if (!ok || admitted_) return;
  const auto& metadata = context_.GetServerInitialMetadata();
  if (metadata.find(kAdmittedMetadata) == metadata.end()) return;
  admitted_ = true;
  agent_.on_admitted();
}

void AgentStream::OnReadDone(bool ok) {
  if (!ok) return;
  auto now = Clock::now();
  const auto& snapshot = incoming_.snapshot();
  AgentMessage ack;
  ack.mutable_ack()->set_version(snapshot.version());
  ack.mutable_ack()->set_nonce(snapshot.nonce());
  ack.mutable_ack()->set_accepted(true);
  send(std::move(ack));
  if (!admitted_) {
    admitted_ = true;
    agent_.on_admitted();
  }
  agent_.on_snapshot(snapshot, now);
  StartRead(&incoming_);
}

void AgentStream::OnWriteDone(bool ok) {
  std::lock_guard lock(mutex_);
  queue_.pop_front();
  if (ok && !queue_.empty()) {
    StartWrite(&queue_.front());
  } else {
    writing_ = false;
  }
}

void AgentStream::OnDone(const grpc::Status& status) {
  agent_.on_done(status, admitted_);
  done_ = true;
}

void AgentStream::send(AgentMessage message) {
  std::lock_guard lock(mutex_);
  queue_.push_back(std::move(message));
  if (!writing_) {
    writing_ = true;
    StartWrite(&queue_.front());
  }
}

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
  Scheduler scheduler;  // destroyed before the agents its jobs name
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
      fleet.push_back(std::make_unique<SimAgent>(agent_address, std::move(tls), id_of(i), shared, scheduler));
      fleet.back()->connect(true);
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
  auto admin_context = [&](grpc::ClientContext& context) {
    context.AddMetadata("authorization", "Bearer " + admin_token);
    context.set_wait_for_ready(true);  // after a restart, until the controller is back
    context.set_deadline(std::chrono::system_clock::now() + kStall);
  };
  // Applies the service "bench-<round>" and waits for every agent's ACK of it.
  auto push_round = [&](int round) {
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
    admin_context(context);
    strait::admin::v1::ApplyResponse response;
    auto status = admin->Apply(&context, request, &response);
    if (!status.ok()) {
      std::fprintf(stderr, "push_latency: apply failed: %s\n", status.error_message().c_str());
      std::_Exit(1);
    }
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
  };
  auto remove_round = [&](int round) {
    grpc::ClientContext context;
    admin_context(context);
    strait::admin::v1::DeleteRequest remove;
    remove.set_kind("Service");
    remove.set_name("bench-" + std::to_string(round));
    strait::admin::v1::DeleteResponse removed;
    auto status = admin->Delete(&context, remove, &removed);
    if (!status.ok()) {
      std::fprintf(stderr, "push_latency: delete failed: %s\n", status.error_message().c_str());
      std::_Exit(1);
    }
  };
  // p50, p99 and max of the samples, sorted here.
  auto percentiles = [](std::vector<double> samples) {
    std::sort(samples.begin(), samples.end());
    auto at = [&](double p) { return samples[std::min(samples.size() - 1, static_cast<size_t>(p * samples.size()))]; };
    return std::array<double, 3>{at(0.5), at(0.99), samples.back()};
  };

  for (int round = 1; round <= rounds; ++round) {
    push_round(round);
    // Each round adds one service and then removes it, so every snapshot stays small.
    remove_round(round);
  }
  std::vector<double> samples;
  {
    std::lock_guard lock(shared.mutex);
    samples = std::move(shared.latencies_ms);
    shared.latencies_ms.clear();
  }
  auto latency = percentiles(samples);
  std::printf("latency %.2f %.2f %.2f %zu\n", latency[0], latency[1], latency[2], samples.size());
  std::fflush(stdout);
  std::getline(std::cin, line);

  if (line == "restart") {
    // Every agent holds the newest snapshot, so the Hello after the restart says so.
    push_round(rounds + 1);
    {
      std::lock_guard lock(shared.mutex);
      shared.latencies_ms.clear();
      shared.restarting = true;
      shared.restart_started = Clock::now();
      for (auto& agent : fleet) agent->reset_restart();
    }
    // The driver kills the controller now and starts it again.
    std::printf("armed\n");
    std::fflush(stdout);
    {
      std::unique_lock lock(shared.mutex);
      if (!wait_progressing(
              lock, shared.changed, [&] { return shared.reconnect_ms.size() == static_cast<size_t>(agents); },
              [&] { return shared.reconnect_ms.size() + static_cast<size_t>(shared.attempts); })) {
        std::fprintf(stderr, "push_latency: %zu of %d agents back after the restart, %d attempts\n",
                     shared.reconnect_ms.size(), agents, shared.attempts);
        std::fflush(stderr);
        std::_Exit(1);
      }
      auto back = percentiles(shared.reconnect_ms);
      std::printf("reconnected %.3f %.2f %.2f %d\n", seconds_since(shared.restart_started), back[0], back[1],
                  shared.attempts);
      std::fflush(stdout);
    }
    // A change after the restart reaches every agent.
    push_round(rounds + 2);
    {
      std::lock_guard lock(shared.mutex);
      auto after = percentiles(shared.latencies_ms);
      std::printf("after-restart %.2f %.2f %.2f\n", after[0], after[1], after[2]);
      std::fflush(stdout);
    }
    std::getline(std::cin, line);
  }

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
