#include "common/logging.h"

#include <atomic>
#include <thread>

#include <spdlog/async.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "common/log_escape.h"
#include "common/strings.h"

namespace strait::common {
namespace {

// Lines waiting for the writer; each slot is about 400 bytes, so a full queue is 3 MiB.
constexpr size_t kQueueLines = 8192;
constexpr auto kFlushInterval = std::chrono::seconds(1);

// The %* flag: the message, escaped for the line's format.
template <bool kJson>
class EscapedMessage final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& message, const std::tm&, spdlog::memory_buf_t& dest) override {
    std::string escaped;
    std::string_view payload(message.payload.data(), message.payload.size());
    if constexpr (kJson) {
      append_json_escaped(escaped, payload);
    } else {
      append_text_escaped(escaped, payload);
    }
    dest.append(escaped.data(), escaped.data() + escaped.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<EscapedMessage>(); }
};

// Marks while the writer thread is inside the output, so that exit can tell a finished
// writer from one stuck in write(2) on a pipe nobody reads.
class WatchedSink final : public spdlog::sinks::sink {
 public:
  explicit WatchedSink(spdlog::sink_ptr inner) : inner_(std::move(inner)) {}
  void log(const spdlog::details::log_msg& message) override {
    Busy busy(busy_);
    inner_->log(message);
  }
  void flush() override {
    Busy busy(busy_);
    inner_->flush();
  }
  void set_pattern(const std::string& pattern) override { inner_->set_pattern(pattern); }
  void set_formatter(std::unique_ptr<spdlog::formatter> formatter) override {
    inner_->set_formatter(std::move(formatter));
  }
  static bool busy() { return busy_.load(); }

 private:
  struct Busy {
    explicit Busy(std::atomic<bool>& flag) : flag_(flag) { flag_ = true; }
    ~Busy() { flag_ = false; }
    std::atomic<bool>& flag_;
  };
  spdlog::sink_ptr inner_;
  static inline std::atomic<bool> busy_{false};
};

std::unique_ptr<spdlog::formatter> make_formatter(bool json) {
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  if (json) {
    formatter->add_flag<EscapedMessage<true>>('*').set_pattern(
        R"({"time":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","msg":"%*"})");
  } else {
    formatter->add_flag<EscapedMessage<false>>('*').set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %*");
  }
  return formatter;
}

}  // namespace

absl::Status configure_logging(const config::v1::LogConfig& log, bool debug_flag) {
  std::string level_name = to_lower(log.level());
  spdlog::level::level_enum level = spdlog::level::info;
  if (debug_flag) {
    level = spdlog::level::debug;
  } else if (!level_name.empty()) {
    if (level_name == "fatal") level_name = "critical";
    if (level_name == "warning") level_name = "warn";
    level = spdlog::level::from_str(level_name);
    if (level == spdlog::level::off && level_name != "off") {
      return absl::InvalidArgumentError(str_cat("log.level \"", log.level(),
                                                "\": use trace, debug, info, warn, error or fatal"));
    }
  }
  std::string format = to_lower(log.format());
  if (!format.empty() && format != "text" && format != "json") {
    return absl::InvalidArgumentError(str_cat("log.format \"", log.format(), "\": use text or json"));
  }
  spdlog::sink_ptr sink;
  const std::string& output = log.output();
  try {
    if (output.empty() || output == "stderr") {
      sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    } else if (output == "stdout") {
      sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
    } else {
      sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(output);
    }
  } catch (const spdlog::spdlog_ex& e) {
    return absl::InvalidArgumentError(str_cat("log.output \"", output, "\": ", e.what()));
  }
  sink->set_formatter(make_formatter(format == "json"));
  sink = std::make_shared<WatchedSink>(std::move(sink));
  // One writer thread for the whole process, created once; a reload keeps it.
  static const bool pool_started = [] {
    spdlog::init_thread_pool(kQueueLines, 1);
    spdlog::flush_every(kFlushInterval);
    return true;
  }();
  (void)pool_started;
  auto logger = std::make_shared<spdlog::async_logger>("strait", std::move(sink), spdlog::thread_pool(),
                                                       spdlog::async_overflow_policy::overrun_oldest);
  logger->set_level(level);
  logger->flush_on(spdlog::level::err);
  spdlog::set_default_logger(logger);
  return absl::OkStatus();
}

size_t dropped_log_lines() {
  auto pool = spdlog::thread_pool();
  return pool ? pool->overrun_counter() : 0;
}

bool flush_logging(std::chrono::milliseconds grace) {
  auto pool = spdlog::thread_pool();
  if (!pool) return true;
  spdlog::default_logger()->flush();
  auto deadline = std::chrono::steady_clock::now() + grace;
  // Runs once at exit; polling keeps the writer thread free of any extra signalling. Idle
  // twice in a row, so that a line just taken from the queue is seen as written or stuck.
  int idle_polls = 0;
  while (idle_polls < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    idle_polls = pool->queue_size() == 0 && !WatchedSink::busy() ? idle_polls + 1 : 0;
  }
  return idle_polls >= 2;
}

}  // namespace strait::common
