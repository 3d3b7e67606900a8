#include "common/log.h"

#include <cstdio>
#include <mutex>

namespace ivr {

void Logger::log(LogLevel level, const char *subsystem, const char *fmt, ...) const {
  va_list ap;
  va_start(ap, fmt);
  vlog(level, subsystem, fmt, ap);
  va_end(ap);
}

void Logger::vlog(LogLevel level, const char *subsystem, const char *fmt, va_list ap) const {
  if (!enabled(level)) return;
  char buf[1024];
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  sink_(level, subsystem, buf);
}

LoggerPtr make_stderr_logger(LogLevel level) {
  static std::mutex mutex;
  return std::make_shared<Logger>(level, [](LogLevel lvl, const char *sub, const char *msg) {
    static const char *names[] = {"error", "warn", "info", "debug", "trace"};
    std::lock_guard<std::mutex> lock(mutex);
    std::fprintf(stderr, "[%s] %s: %s\n", names[static_cast<int>(lvl)], sub, msg);
  });
}

}  // namespace ivr
