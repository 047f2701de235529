// strait-controller: holds the fleet's desired state and pushes each agent its snapshot.
#include <csignal>
#include <filesystem>
#include <iostream>

#include <CLI/CLI.hpp>
#include <grpcpp/grpcpp.h>
#include <cstdlib>

#include <spdlog/spdlog.h>

#include "common/logging.h"
#include "common/strings.h"
#include "controller/server/admin_service.h"
#include "controller/server/agent_service.h"
#include "controller/server/certificates.h"
#include "controller/server/http_endpoints.h"
#include "controller/store/sqlite_store.h"

namespace {

using namespace strait::controller;
constexpr const char* kVersion = "0.1.0";
constexpr int kExitUsage = 2;
constexpr int kExitRuntime = 1;

struct Options {
  std::string data_dir = "strait-data";
  std::string listen_agents = "0.0.0.0:7770";
  std::string listen_admin = "0.0.0.0:7771";
  std::string listen_http = "0.0.0.0:7772";
  std::string tls_cert;
  std::string tls_key;
  std::vector<std::string> tls_names;
  std::string admin_token_file;
  std::string store = "sqlite";
  int coalesce_ms = 20;
  bool debug = false;
};

// A gRPC server on one address with the controller's TLS identity; the bound port is
// written to `port`.
std::unique_ptr<grpc::Server> serve(const std::string& address, grpc::Service* service, const ServerCertificate& tls,
                                    int& port) {
  grpc::SslServerCredentialsOptions ssl;
  ssl.pem_key_cert_pairs.push_back({tls.key_pem, tls.cert_pem});
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, grpc::SslServerCredentials(ssl), &port);
  builder.RegisterService(service);
  // Dead agents (a host gone without closing TCP) are noticed within a minute.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  return builder.BuildAndStart();
}

// A bootstrap join token on first start, so the first agents can join before anyone runs
// `straitctl token create`.
absl::Status ensure_bootstrap_token(const std::string& path, Credentials& credentials) {
  if (std::filesystem::exists(path)) return absl::OkStatus();
  auto token = credentials.create_join_token("bootstrap", 0);
  if (!token.ok()) return token.status();
  mode_t previous = ::umask(077);
  std::ofstream out(path);
  out << token->token() << "\n";
  out.close();
  ::umask(previous);
  if (!out) return absl::UnavailableError("cannot write " + path);
  return absl::OkStatus();
}

int run(const Options& options) {
  std::error_code fs_error;
  std::filesystem::create_directories(options.data_dir, fs_error);
  if (fs_error) {
    std::cerr << "strait-controller: cannot create --data-dir " << options.data_dir << ": " << fs_error.message() << "\n";
    return kExitRuntime;
  }
  if (options.store != "sqlite") {
    std::cerr << "strait-controller: --store " << options.store
              << ": only the embedded sqlite store is built in this version (etcd comes with HA)\n";
    return kExitUsage;
  }
  std::string db_path = options.data_dir + "/strait.db";
  auto store = open_sqlite_store(db_path);
  if (!store.ok()) {
    std::cerr << "strait-controller: " << store.status().message() << "\n";
    return kExitRuntime;
  }
  auto tls = server_certificate(options.data_dir, options.tls_cert, options.tls_key, options.tls_names);
  if (!tls.ok()) {
    std::cerr << "strait-controller: " << tls.status().message() << "\n";
    return kExitUsage;
  }
  std::string admin_token_path =
      options.admin_token_file.empty() ? options.data_dir + "/admin.token" : options.admin_token_file;
  auto admin_token = load_or_create_secret(admin_token_path);
  if (!admin_token.ok()) {
    std::cerr << "strait-controller: admin token: " << admin_token.status().message() << "\n";
    return kExitRuntime;
  }
  ControllerMetrics metrics;
  Credentials credentials(**store, *admin_token);
  std::string join_token_path = options.data_dir + "/join.token";
  if (auto status = ensure_bootstrap_token(join_token_path, credentials); !status.ok()) {
    std::cerr << "strait-controller: " << status.message() << "\n";
    return kExitRuntime;
  }
  metrics.store_revision.store((*store)->revision());

  Fleet fleet(**store, metrics, std::chrono::milliseconds(options.coalesce_ms));
  AgentControlService agent_service(fleet, credentials, metrics);
  AdminService admin_service(**store, fleet, credentials, metrics);
  int agent_port = 0;
  int admin_port = 0;
  auto agent_server = serve(options.listen_agents, &agent_service, *tls, agent_port);
  auto admin_server = serve(options.listen_admin, &admin_service, *tls, admin_port);
  if (!agent_server || agent_port == 0 || !admin_server || admin_port == 0) {
    std::cerr << "strait-controller: cannot listen on " << (agent_port == 0 ? options.listen_agents : options.listen_admin)
              << " (address in use or not local?)\n";
    return kExitRuntime;
  }
  // Started last: once it answers, the store is open and both gRPC ports serve, so ready.
  auto http = HttpEndpoints::start(
      options.listen_http, [&metrics] { return metrics.text(); }, [] { return true; });
  if (!http.ok()) {
    std::cerr << "strait-controller: " << http.status().message() << "\n";
    return kExitRuntime;
  }
  spdlog::info("strait-controller {}: store sqlite {} at revision {}", kVersion, db_path, (*store)->revision());
  spdlog::info("agents on port {}, admin API on port {} (TLS), /metrics /healthz /readyz on port {}", agent_port,
               admin_port, (*http)->port());
  if (!tls->ca_path.empty()) {
    spdlog::info("CA for agents and straitctl: {}{}", tls->ca_path, tls->created_ca ? " (created now)" : "");
  }
  spdlog::info("admin token in {}, bootstrap join token in {}", admin_token_path, join_token_path);

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  int received = 0;
  sigwait(&signals, &received);
  spdlog::info("received {}, stopping", received == SIGINT ? "SIGINT" : "SIGTERM");
  auto deadline = std::chrono::system_clock::now() + std::chrono::seconds(2);
  agent_server->Shutdown(deadline);
  admin_server->Shutdown(deadline);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Signals go to sigwait on the main thread only; gRPC's threads inherit the mask.
  sigset_t blocked;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGINT);
  sigaddset(&blocked, SIGTERM);
  sigaddset(&blocked, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &blocked, nullptr);

  CLI::App app{"strait-controller: desired state of a Strait fleet, pushed to every agent"};
  Options options;
  bool version = false;
  app.add_option("--data-dir", options.data_dir, "store, CA and tokens live here")->capture_default_str();
  app.add_option("--listen-agents", options.listen_agents, "agent stream address (TLS)")->capture_default_str();
  app.add_option("--listen-admin", options.listen_admin, "Admin API address for straitctl (TLS)")->capture_default_str();
  app.add_option("--listen-http", options.listen_http, "plain HTTP /metrics /healthz /readyz")->capture_default_str();
  app.add_option("--tls-cert", options.tls_cert, "server certificate (PEM); default: issued by the data dir's CA");
  app.add_option("--tls-key", options.tls_key, "server key (PEM)");
  app.add_option("--tls-san", options.tls_names, "extra DNS name or IP for the issued server certificate")
      ->delimiter(',');
  app.add_option("--admin-token-file", options.admin_token_file, "admin token file (default: <data-dir>/admin.token)");
  app.add_option("--store", options.store, "sqlite (embedded)")->capture_default_str();
  app.add_option("--coalesce-ms", options.coalesce_ms, "changes this close together go out as one push")
      ->capture_default_str()->check(CLI::Range(0, 10000));
  app.add_flag("-D,--debug", options.debug, "debug logging");
  app.add_flag("-V,--version", version, "print the version and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitUsage;
  }
  if (version) {
    std::cout << "strait-controller " << kVersion << "\n";
    return 0;
  }
  strait::config::v1::LogConfig log;
  if (auto status = strait::common::configure_logging(log, options.debug); !status.ok()) {
    std::cerr << "strait-controller: " << status.message() << "\n";
    return kExitUsage;
  }
  int code = run(options);
  // A log output that stopped taking lines must not hold the exit.
  if (!strait::common::flush_logging(std::chrono::seconds(2))) std::_Exit(code);
  spdlog::shutdown();
  return code;
}
