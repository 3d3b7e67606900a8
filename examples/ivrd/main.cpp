// ivrd v0: the reference daemon. Loads flow documents named by a JSON configuration,
// maps called numbers to them and serves SIP calls. It embeds libivr through the public
// C ABI only, the way a dialer vendor would.
//
// stdout carries exactly one line per call, when it ends:
//   call <Call-ID> flow <id> version <v> end <flow_end> path <node > node > ...>
//   call <Call-ID> flow - end <end_reason>          (a call no flow took)
// stderr carries the log. Exit status: 0 after SIGINT/SIGTERM, 1 when the engine cannot
// start, 2 for usage, configuration and flow problems.
#include <pthread.h>
#include <signal.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <ivr/ivr.h>

#include "config.h"

namespace {

ivr_log_level g_level = IVR_LOG_INFO;

// One write per line: the engine logs from several threads at once.
void write_log(ivr_log_level level, const char *subsystem, const char *message) {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm utc{};
  gmtime_r(&ts.tv_sec, &utc);
  char stamp[48];
  size_t n = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
  snprintf(stamp + n, sizeof stamp - n, ".%03ldZ", ts.tv_nsec / 1000000);
  std::string line = std::string(stamp) + " [" + ivrd::log_level_name(level) + "] " + subsystem +
                     ": " + message + "\n";
  fputs(line.c_str(), stderr);
}

[[gnu::format(printf, 2, 3)]] void logf(ivr_log_level level, const char *fmt, ...) {
  if (level > g_level) return;
  char buf[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  write_log(level, "ivrd", buf);
}

void on_log(ivr_log_level level, const char *subsystem, const char *message, void *) {
  // The library also logs each flow step at debug; ivrd prints the FLOW_STEP events
  // instead (with the flow's id and version), so each step shows once.
  if (level == IVR_LOG_DEBUG && strcmp(subsystem, "flow") == 0) return;
  write_log(level, subsystem, message);
}

const char *or_dash(const char *s) {
  return s && *s ? s : "-";
}

// Runs on the engine thread, one event at a time: stdout needs no lock.
void on_event(const ivr_event *ev, void *) {
  ivr_call *call = ev->call;
  // Flow fields exist from event version 2; an older library runs no flows.
  bool has_flow = ev->version >= 2 && ev->flow_id && ev->flow_id[0];
  switch (ev->type) {
    case IVR_EVENT_CALL_STARTED:
      if (has_flow) {
        logf(IVR_LOG_INFO, "call %s from %s to %s: flow %s version %s", ivr_call_id(call),
             ivr_call_from_user(call), ivr_call_to_user(call), ev->flow_id, ev->flow_version);
      } else {
        // No entry point matched (or its flow has no active version): nobody would
        // handle the call, so say so at once.
        logf(IVR_LOG_INFO, "call %s from %s to %s: no flow for this number, rejected (404)",
             ivr_call_id(call), ivr_call_from_user(call), ivr_call_to_user(call));
        if (ivr_call_reject(call, 404, "no flow for this number") != IVR_OK)
          logf(IVR_LOG_WARN, "call %s: reject failed: %s", ivr_call_id(call),
               ivr_error_last()->message);
      }
      break;
    case IVR_EVENT_FLOW_STEP:
      logf(IVR_LOG_DEBUG, "call %s flow %s/%s %s (%s): %s", ivr_call_id(call), ev->flow_id,
           ev->flow_version, ev->flow_node, ev->flow_verb, ev->flow_detail);
      break;
    case IVR_EVENT_CALL_ENDED:
      if (has_flow) {
        printf("call %s flow %s version %s end %s path %s\n", ivr_call_id(call), ev->flow_id,
               ev->flow_version, or_dash(ev->flow_end), or_dash(ev->flow_path));
        if (ev->flow_error && ev->flow_error[0])
          logf(IVR_LOG_WARN, "call %s flow %s/%s failed: %s", ivr_call_id(call), ev->flow_id,
               ev->flow_version, ev->flow_error);
      } else {
        printf("call %s flow - end %s\n", ivr_call_id(call), ivr_end_reason_name(ev->end_reason));
      }
      logf(IVR_LOG_INFO, "call %s ended: %s, %s (%d)", ivr_call_id(call),
           ivr_end_reason_name(ev->end_reason), ev->reason, ev->sip_code);
      break;
    default:  // answered, digits, prompts, media: the flow handles them
      break;
  }
}

void usage(FILE *out) {
  fputs(
      "usage: ivrd --config FILE [--listen HOST:PORT] [--prompts DIR] [--log-level LEVEL]\n"
      "  --config FILE      JSON configuration (examples/ivrd/demo.json)\n"
      "  --listen HOST:PORT SIP address, overriding sip.address and sip.port\n"
      "  --prompts DIR      prompt directory, overriding prompt_dir\n"
      "  --log-level LEVEL  error, warn, info, debug (flow steps) or trace\n",
      out);
}

// "HOST:PORT" or "[v6]:PORT".
bool parse_listen(const std::string &arg, std::string *host, unsigned short *port) {
  size_t colon = arg.rfind(':');
  if (colon == std::string::npos || colon + 1 == arg.size()) return false;
  std::string h = arg.substr(0, colon), p = arg.substr(colon + 1);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  if (p.find_first_not_of("0123456789") != std::string::npos || p.size() > 5) return false;
  unsigned long n = std::stoul(p);
  if (n < 1 || n > 65535 || !ivrd::is_ip_literal(h)) return false;
  *host = h;
  *port = static_cast<unsigned short>(n);
  return true;
}

bool read_file(const std::string &path, std::string *out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream text;
  text << in.rdbuf();
  *out = text.str();
  return !in.bad();
}

// Loads every flow file; prints the validation report per file. Returns the flow ids.
bool load_flows(ivr_engine *engine, const ivrd::Config &config, std::set<std::string> *ids) {
  for (const ivrd::FlowFile &f : config.flows) {
    std::string doc;
    if (!read_file(f.path, &doc)) {
      fprintf(stderr, "ivrd: config %s: cannot read %s: %s\n", f.field.c_str(), f.path.c_str(),
              strerror(errno));
      return false;
    }
    ivr_flow_report *report = nullptr;
    int rc = ivr_engine_flow_load(engine, doc.data(), doc.size(), f.activate ? 1 : 0, &report);
    if (rc == IVR_EPARSE) {
      std::istringstream lines(ivr_flow_report_text(report));
      for (std::string line; std::getline(lines, line);)
        fprintf(stderr, "%s: %s\n", f.path.c_str(), line.c_str());
      fprintf(stderr, "ivrd: %s: %zu problem(s), not loaded\n", f.path.c_str(),
              ivr_flow_report_count(report));
    } else if (rc != IVR_OK) {
      fprintf(stderr, "%s: %s\n", f.path.c_str(), ivr_error_last()->message);
    } else {
      ids->insert(ivr_flow_report_flow_id(report));
      logf(IVR_LOG_INFO, "flow %s version %s loaded from %s%s", ivr_flow_report_flow_id(report),
           ivr_flow_report_version(report), f.path.c_str(), f.activate ? "" : " (not activated)");
    }
    ivr_flow_report_free(report);
    if (rc != IVR_OK) return false;
  }
  return true;
}

bool map_entry_points(ivr_engine *engine, const ivrd::Config &config,
                      const std::set<std::string> &ids) {
  for (const auto &[called, flow] : config.entry_points) {
    if (!ids.count(flow)) {
      std::string loaded;
      for (const std::string &id : ids) loaded += (loaded.empty() ? "" : ", ") + id;
      fprintf(stderr, "ivrd: config entry_points.\"%s\": no flow \"%s\" was loaded (loaded: %s)\n",
              called.c_str(), flow.c_str(), loaded.c_str());
      return false;
    }
    if (ivr_engine_flow_map(engine, called.c_str(), flow.c_str()) != IVR_OK) {
      fprintf(stderr, "ivrd: config entry_points.\"%s\": %s\n", called.c_str(),
              ivr_error_last()->message);
      return false;
    }
    logf(IVR_LOG_INFO, "entry point %s -> flow %s", called.c_str(), flow.c_str());
  }
  return true;
}

}  // namespace

int main(int argc, char **argv) {
  std::string config_path, listen, prompts, level;
  for (int i = 1; i < argc; i++) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      usage(stdout);
      return 0;
    }
    std::string *target = arg == "--config"      ? &config_path
                          : arg == "--listen"    ? &listen
                          : arg == "--prompts"   ? &prompts
                          : arg == "--log-level" ? &level
                                                 : nullptr;
    if (!target || i + 1 >= argc) {
      fprintf(stderr, "ivrd: %s %s\n", arg.c_str(), target ? "needs a value" : "is not an option");
      usage(stderr);
      return 2;
    }
    *target = argv[++i];
  }
  if (config_path.empty()) {
    fputs("ivrd: --config FILE is required\n", stderr);
    usage(stderr);
    return 2;
  }

  ivrd::Config config;
  try {
    config = ivrd::load_config(config_path);
  } catch (const ivrd::ConfigError &e) {
    fprintf(stderr, "ivrd: %s\n", e.what());
    return 2;
  }
  if (!listen.empty() && !parse_listen(listen, &config.sip_address, &config.sip_port)) {
    fprintf(stderr, "ivrd: --listen: expected IP:PORT (port 1-65535), got %s\n", listen.c_str());
    return 2;
  }
  if (!prompts.empty()) config.prompt_dir = prompts;
  if (!level.empty() && !ivrd::parse_log_level(level, &config.log_level)) {
    fprintf(stderr, "ivrd: --log-level: must be error, warn, info, debug or trace, got %s\n",
            level.c_str());
    return 2;
  }
  std::error_code ec;
  if (!std::filesystem::is_directory(config.prompt_dir, ec)) {
    fprintf(stderr, "ivrd: %s: not a directory: %s\n",
            prompts.empty() ? "config prompt_dir" : "--prompts", config.prompt_dir.c_str());
    return 2;
  }
  g_level = config.log_level;

  // Block the stop signals before any engine thread exists, so only sigwait sees them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  setvbuf(stdout, nullptr, _IOLBF, 0);

  ivr_engine_options opts = IVR_ENGINE_OPTIONS_INIT;
  opts.sip_address = config.sip_address.c_str();
  opts.sip_port = config.sip_port;
  opts.sip_transport = config.sip_transport;
  opts.rtp_address = config.rtp_address.empty() ? nullptr : config.rtp_address.c_str();
  opts.rtp_port_min = config.rtp_port_min;
  opts.rtp_port_max = config.rtp_port_max;
  opts.media_threads = config.media_threads;
  opts.prompt_dir = config.prompt_dir.c_str();
  opts.log_cb = on_log;
  opts.log_level = config.log_level;
  opts.user_agent = "ivrd";

  ivr_engine *engine = nullptr;
  if (ivr_engine_new(&engine, &opts) != IVR_OK) {
    fprintf(stderr, "ivrd: config: %s\n", ivr_error_last()->message);
    return 2;
  }
  std::set<std::string> ids;
  // Flows load before SIP binds: a broken document never answers a call.
  if (ivr_engine_set_event_callback(engine, on_event, nullptr, nullptr) != IVR_OK ||
      !load_flows(engine, config, &ids) || !map_entry_points(engine, config, ids)) {
    ivr_engine_free(engine);
    return 2;
  }
  if (ivr_engine_start(engine) != IVR_OK) {
    fprintf(stderr, "ivrd: %s\n", ivr_error_last()->message);
    ivr_engine_free(engine);
    return 1;
  }
  bool v6 = config.sip_address.find(':') != std::string::npos;
  fprintf(stderr, "ivrd listening on sip:%s%s%s:%u (%s), prompts %s\n", v6 ? "[" : "",
          config.sip_address.c_str(), v6 ? "]" : "", (unsigned)ivr_engine_sip_port(engine),
          ivrd::transport_name(config.sip_transport), config.prompt_dir.c_str());

  int sig = 0;
  while (sigwait(&signals, &sig) != 0) {
  }
  logf(IVR_LOG_INFO, "stopping (%s)", sig == SIGINT ? "SIGINT" : "SIGTERM");
  // Calls still up get a BYE (or a 503) carrying this reason, and their stdout lines.
  ivr_engine_stop(engine, "ivrd shutting down");
  ivr_engine_free(engine);
  return 0;
}
