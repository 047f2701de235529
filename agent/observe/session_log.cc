#include "agent/observe/session_log.h"

#include <spdlog/spdlog.h>

namespace strait::agent {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

SessionLog::SessionLog(std::string service, ServiceStats* stats, const Stream& client)
    : service_(std::move(service)), stats_(stats), peer_(client.remote_address()), start_(std::chrono::steady_clock::now()) {}

void SessionLog::finish(const RelayResult& result) {
  if (stats_ != nullptr) {
    stats_->bytes_from_clients.fetch_add(result.bytes_from_client, std::memory_order_relaxed);
    stats_->bytes_to_clients.fetch_add(result.bytes_to_client, std::memory_order_relaxed);
  }
  const char* reason = result.idle_timeout ? "idle timeout" : result.half_close_timeout ? "half-close timeout" : "closed";
  // Aborted: the agent itself ended it (a session limit, a reload's grace period, shutdown).
  std::string error = result.error == asio::error::operation_aborted ? "ended by the agent"
                      : result.error                                  ? result.error.message()
                                                                      : reason;
  spdlog::info("{}: {} -> {}: {}, {} B from client, {} B to client, {:.3f}s", service_, peer_, target_, error,
               result.bytes_from_client, result.bytes_to_client, seconds_since(start_));
}

void SessionLog::finish(const error_code& reason) {
  if (stats_ != nullptr) stats_->errors.fetch_add(1, std::memory_order_relaxed);
  spdlog::warn("{}: {} -> {}: failed: {}, {:.3f}s", service_, peer_, target_.empty() ? "?" : target_,
               reason.message(), seconds_since(start_));
}

void relay_then_log(StreamPtr client, StreamPtr target, const RelayOptions& options, SessionLog session) {
  start_relay(std::move(client), std::move(target), options,
              [session = std::move(session)](const RelayResult& result) mutable { session.finish(result); });
}

}  // namespace strait::agent
