#include "common/logging.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include "common/strings.h"


namespace strait::common {

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
  std::shared_ptr<spdlog::logger> logger;
  const std::string& output = log.output();
  try {
    if (output.empty() || output == "stderr") {
      logger = std::make_shared<spdlog::logger>("strait", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    } else if (output == "stdout") {
      logger = std::make_shared<spdlog::logger>("strait", std::make_shared<spdlog::sinks::stdout_sink_mt>());
    } else {
      logger = std::make_shared<spdlog::logger>("strait",
                                                std::make_shared<spdlog::sinks::basic_file_sink_mt>(output));
    }
  } catch (const spdlog::spdlog_ex& e) {
    return absl::InvalidArgumentError(str_cat("log.output \"", output, "\": ", e.what()));
  }
  if (to_lower(log.format()) == "json") {
    logger->set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","msg":"%v"})");
  } else {
    logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
  }
  logger->set_level(level);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  return absl::OkStatus();
}

}  // namespace strait::common
