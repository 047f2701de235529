#pragma once

#include <chrono>
#include <cstddef>

#include "absl/status/status.h"
#include "strait/v1/config.pb.h"

namespace strait::common {

// Configures the process-wide spdlog logger from GOST's `log` section (level, format
// text|json, output stdout|stderr|file). Defaults: info, text, stderr.
//
// Lines go through a bounded queue to one writer thread, so a worker never waits for a slow
// or stalled output (a full pipe, a slow disk): when the queue is full the oldest line is
// dropped and counted. The writer flushes once a second and at every error line. Each
// message is escaped for its format (log_escape.h): a peer's bytes cannot end a line or,
// in JSON, a field.
absl::Status configure_logging(const config::v1::LogConfig& log, bool debug_flag);

// Lines dropped so far because the queue was full.
size_t dropped_log_lines();

// Flushes what is queued, waiting at most `grace`. False when the output did not take it
// all (a stalled reader): then the caller should not wait for the writer thread at exit.
bool flush_logging(std::chrono::milliseconds grace);

}  // namespace strait::common
