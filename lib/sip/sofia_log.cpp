#include "sip/sofia_log.h"

#include <sofia-sip/su_log.h>

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

// Exported by libsofia-sip-ua but declared in no public header.
extern "C" {
extern su_log_t nua_log[];
extern su_log_t nta_log[];
extern su_log_t tport_log[];
}

namespace ivr::sip::sofia {

namespace {

std::mutex g_mutex;
std::vector<LoggerPtr> g_loggers;  // attach order; the last one receives Sofia's logs
bool g_redirected = false;

LoggerPtr current_logger() {
  std::lock_guard<std::mutex> lock(g_mutex);
  return g_loggers.empty() ? nullptr : g_loggers.back();
}

// Sofia formats one message in several calls at times (message dumps): assemble lines.
void sofia_logger(void *stream, const char *fmt, va_list ap) {
  thread_local std::string pending;
  char buf[2048];
  int n = std::vsnprintf(buf, sizeof buf, fmt, ap);
  if (n < 0) return;
  pending.append(buf, std::min(static_cast<size_t>(n), sizeof buf - 1));
  if (pending.find('\n') == std::string::npos && pending.size() < 4096) return;
  LoggerPtr logger = current_logger();
  const char *sub = static_cast<const char *>(stream);
  size_t start = 0;
  while (start < pending.size()) {
    size_t nl = pending.find('\n', start);
    if (nl == std::string::npos) {
      if (pending.size() - start < 4096) break;
      nl = pending.size();
    }
    std::string line = pending.substr(start, nl - start);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) IVR_LOG(logger, debug, sub, "%s", line.c_str());
    start = nl + 1;
  }
  pending.erase(0, std::min(start, pending.size()));
}

}  // namespace

void attach_log(const LoggerPtr &logger) {
  if (!logger) return;
  std::lock_guard<std::mutex> lock(g_mutex);
  g_loggers.push_back(logger);
  if (g_redirected) return;
  // The stream argument names the subsystem in our log lines.
  su_log_redirect(su_log_default, sofia_logger, const_cast<char *>("sofia"));
  su_log_redirect(nua_log, sofia_logger, const_cast<char *>("sofia.nua"));
  su_log_redirect(nta_log, sofia_logger, const_cast<char *>("sofia.nta"));
  su_log_redirect(tport_log, sofia_logger, const_cast<char *>("sofia.tport"));
  g_redirected = true;
}

void detach_log(const LoggerPtr &logger) {
  if (!logger) return;
  std::lock_guard<std::mutex> lock(g_mutex);
  auto it = std::find(g_loggers.rbegin(), g_loggers.rend(), logger);
  if (it != g_loggers.rend()) g_loggers.erase(std::next(it).base());
}

}  // namespace ivr::sip::sofia
