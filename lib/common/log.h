// Logging shared by every subsystem: a level and one sink, callable from any thread.
#pragma once

#include <atomic>
#include <cstdarg>
#include <functional>
#include <memory>
#include <string>

namespace ivr {

enum class LogLevel : int { error = 0, warn = 1, info = 2, debug = 3, trace = 4 };

using LogSink = std::function<void(LogLevel, const char *subsystem, const char *message)>;

class Logger {
 public:
  Logger() = default;
  Logger(LogLevel level, LogSink sink) : level_(static_cast<int>(level)), sink_(std::move(sink)) {}

  bool enabled(LogLevel level) const {
    return sink_ && static_cast<int>(level) <= level_.load(std::memory_order_relaxed);
  }
  void set_level(LogLevel level) { level_.store(static_cast<int>(level)); }
  // printf-style; the message is formatted only when the level is enabled.
  void log(LogLevel level, const char *subsystem, const char *fmt, ...) const
      __attribute__((format(printf, 4, 5)));
  void vlog(LogLevel level, const char *subsystem, const char *fmt, va_list ap) const;

 private:
  std::atomic<int> level_{static_cast<int>(LogLevel::info)};
  LogSink sink_;  // set once at construction; must be thread-safe
};

using LoggerPtr = std::shared_ptr<const Logger>;

// A logger that prints to stderr (tests, tools).
LoggerPtr make_stderr_logger(LogLevel level);

}  // namespace ivr

#define IVR_LOG(logger, lvl, sub, ...)                       \
  do {                                                       \
    if ((logger) && (logger)->enabled(::ivr::LogLevel::lvl)) \
      (logger)->log(::ivr::LogLevel::lvl, sub, __VA_ARGS__); \
  } while (0)
