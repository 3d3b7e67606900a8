// ivrd v0: the reference daemon. Loads flow documents named by a JSON configuration,
// maps called numbers to them and serves SIP calls. It embeds libivr through the public
// C ABI only, the way a dialer vendor would.
//
// stdout carries exactly one line per call, when it ends:
//   call <Call-ID> flow <id> version <v> end <flow_end> path <node > node > ...>
//   call <Call-ID> flow - end <end_reason>          (a call no flow took)
// stderr carries the log. Exit status: 0 after SIGINT/SIGTERM, 1 when the engine cannot
// start, 2 for usage, configuration and flow problems. docs/ivrd.md is the manual.
//
// Once the engine exists, stdout and stderr lines go through a writer thread per stream:
// the engine's threads (the event callback runs on the engine thread) only queue lines, so
// a reader that stops reading (a full pipe, a terminal on XOFF) never stalls a call.
#include <pthread.h>
#include <signal.h>

#include <cerrno>
#include <condition_variable>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <ivr/ivr.h>

#include "config.h"

namespace {

ivr_log_level g_level = IVR_LOG_INFO;

// One stream's writer thread. Until start() (and after stop()) lines are written at once
// by the calling thread; in between they are queued, and only the writer thread touches
// the stream. With max_queued > 0, lines beyond it are dropped and counted, and the count
// is reported on the stream once the writer catches up.
class Writer {
 public:
  Writer(FILE *stream, size_t max_queued) : stream_(stream), max_queued_(max_queued) {}
  ~Writer() { stop(); }

  void start() {
    thread_ = std::thread([this] { run(); });
  }

  void push(std::string line) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (thread_.joinable() && !stopping_) {
        if (max_queued_ > 0 && queue_.size() >= max_queued_) {
          dropped_++;
          return;
        }
        queue_.push_back(std::move(line));
        if (queue_.size() == 1) cv_.notify_one();
        return;
      }
    }
    write(line);  // single-threaded phases: before start(), after stop()
  }

  // Writes everything queued, then returns to direct writes.
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!thread_.joinable()) return;
      stopping_ = true;
    }
    cv_.notify_one();
    thread_.join();
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = false;
  }

 private:
  void write(const std::string &line) {
    fwrite(line.data(), 1, line.size(), stream_);
    fflush(stream_);
  }

  void run() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, all written
      std::deque<std::string> batch;
      batch.swap(queue_);
      uint64_t dropped = dropped_;
      dropped_ = 0;
      lock.unlock();
      for (const std::string &l : batch) write(l);
      if (dropped > 0)
        write("ivrd: " + std::to_string(dropped) +
              " log line(s) dropped: output not read fast enough\n");
      lock.lock();
    }
  }

  FILE *const stream_;
  const size_t max_queued_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  uint64_t dropped_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

// stdout (one line per call: never dropped) and stderr (the log: at most 10000 lines
// waiting), each with its own writer so a stalled stderr does not hold back call lines.
struct Output {
  Writer out_writer{stdout, 0}, err_writer{stderr, 10000};
  void start() {
    out_writer.start();
    err_writer.start();
  }
  void stop() {
    out_writer.stop();
    err_writer.stop();
  }
  void out(std::string line) { out_writer.push(std::move(line)); }
  void err(std::string line) { err_writer.push(std::move(line)); }
};

Output g_out;

// A line of the log, with a time stamp (any thread).
void write_log(ivr_log_level level, const char *subsystem, const char *message) {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm utc{};
  gmtime_r(&ts.tv_sec, &utc);
  char stamp[48];
  size_t n = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
  snprintf(stamp + n, sizeof stamp - n, ".%03ldZ", ts.tv_nsec / 1000000);
  g_out.err(std::string(stamp) + " [" + ivrd::log_level_name(level) + "] " + subsystem + ": " +
            message + "\n");
}

// A plain stderr line (problems, the "listening" line), through the writer.
[[gnu::format(printf, 1, 2)]] void errf(const char *fmt, ...) {
  char buf[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  g_out.err(std::string(buf) + "\n");
}

[[gnu::format(printf, 2, 3)]] void log_msg(ivr_log_level level, const char *fmt, ...) {
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

// Runs on the engine thread, one event at a time. It never blocks: the engine calls it
// inline, output is only queued (Output).
void on_event(const ivr_event *ev, void *) {
  ivr_call *call = ev->call;
  // Flow fields exist from event version 2; an older library runs no flows.
  bool has_flow = ev->version >= 2 && ev->flow_id && ev->flow_id[0];
  switch (ev->type) {
    case IVR_EVENT_CALL_STARTED:
      if (has_flow) {
        log_msg(IVR_LOG_INFO, "call %s from %s to %s: flow %s version %s", ivr_call_id(call),
                ivr_call_from_user(call), ivr_call_to_user(call), ev->flow_id, ev->flow_version);
      } else {
        // No entry point matched (or its flow has no active version): nobody would
        // handle the call, so say so at once.
        log_msg(IVR_LOG_INFO, "call %s from %s to %s: no flow for this number, rejected (404)",
                ivr_call_id(call), ivr_call_from_user(call), ivr_call_to_user(call));
        if (ivr_call_reject(call, 404, "no flow for this number") != IVR_OK)
          log_msg(IVR_LOG_WARN, "call %s: reject failed: %s", ivr_call_id(call),
                  ivr_error_last()->message);
      }
      break;
    case IVR_EVENT_FLOW_STEP:
      log_msg(IVR_LOG_DEBUG, "call %s flow %s/%s %s (%s): %s", ivr_call_id(call), ev->flow_id,
              ev->flow_version, ev->flow_node, ev->flow_verb, ev->flow_detail);
      break;
    case IVR_EVENT_CALL_ENDED:
      if (has_flow) {
        g_out.out("call " + std::string(ivr_call_id(call)) + " flow " + ev->flow_id + " version " +
                  ev->flow_version + " end " + or_dash(ev->flow_end) + " path " +
                  or_dash(ev->flow_path) + "\n");
        if (ev->flow_error && ev->flow_error[0])
          log_msg(IVR_LOG_WARN, "call %s flow %s/%s failed: %s", ivr_call_id(call), ev->flow_id,
                  ev->flow_version, ev->flow_error);
      } else {
        g_out.out("call " + std::string(ivr_call_id(call)) + " flow - end " +
                  ivr_end_reason_name(ev->end_reason) + "\n");
      }
      log_msg(IVR_LOG_INFO, "call %s ended: %s, %s (%d)", ivr_call_id(call),
              ivr_end_reason_name(ev->end_reason), ev->reason, ev->sip_code);
      break;
    // Routing: one stdout line per decision, failed attempt, queueing and delivery, so an
    // operator (and the tests) can follow where each call went and why.
    case IVR_EVENT_ROUTE_DECIDED:
      g_out.out("call " + std::string(ivr_call_id(call)) + " route decided " + ev->route_detail +
                "\n");
      break;
    case IVR_EVENT_ROUTE_ATTEMPT:
      g_out.out("call " + std::string(ivr_call_id(call)) + " route attempt " +
                std::to_string(ev->route_attempt) + " target " + ev->route_target +
                " failed: " + ev->route_detail + "\n");
      break;
    case IVR_EVENT_CALL_QUEUED:
      g_out.out("call " + std::string(ivr_call_id(call)) + " queued plan " + ev->route_plan +
                " position " + std::to_string(ev->queue_position) + " priority " +
                std::to_string(ev->queue_priority) + "\n");
      break;
    case IVR_EVENT_CALL_DELIVERED:
      g_out.out("call " + std::string(ivr_call_id(call)) + " delivered target " + ev->route_target +
                " uri " + ev->route_uri + " attempt " + std::to_string(ev->route_attempt) + "\n");
      break;
    default:  // answered, digits, prompts, media: the flow handles them
      break;
  }
}

void usage(FILE *out) {
  fputs(
      "usage: ivrd --config FILE [--listen IP:PORT] [--prompts DIR] [--log-level LEVEL]\n"
      "  --config FILE      JSON configuration (examples/ivrd/demo.json)\n"
      "  --listen IP:PORT   SIP address ([v6]:PORT for IPv6), overriding sip.address/port\n"
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

// True when the flow's id and version can be printed on the per-call line: the version
// as one word, and an id that does not start with '-' (the line's "no flow" mark).
bool printable_on_call_line(const std::string &id, const std::string &version, std::string *why) {
  if (!id.empty() && id[0] == '-') {
    *why = "flow id \"" + id + "\" starts with '-', which ivrd's per-call line uses for no flow";
    return false;
  }
  for (unsigned char c : version) {
    if (c <= ' ' || c == 0x7f) {
      *why = "version \"" + version +
             "\" has a space or control character; ivrd prints it as one word on its per-call "
             "line";
      return false;
    }
  }
  return true;
}

// Loads every flow file; prints the validation report per file. Returns the flow ids.
bool load_flows(ivr_engine *engine, const ivrd::Config &config, std::set<std::string> *ids) {
  for (const ivrd::FlowFile &f : config.flows) {
    std::string doc;
    if (!read_file(f.path, &doc)) {
      errf("ivrd: config %s: cannot read %s: %s", f.field.c_str(), f.path.c_str(), strerror(errno));
      return false;
    }
    ivr_flow_report *report = nullptr;
    int rc = ivr_engine_flow_load(engine, doc.data(), doc.size(), f.activate ? 1 : 0, &report);
    bool ok = rc == IVR_OK;
    if (rc == IVR_EPARSE) {
      std::istringstream lines(ivr_flow_report_text(report));
      for (std::string line; std::getline(lines, line);)
        errf("%s: %s", f.path.c_str(), line.c_str());
      errf("ivrd: %s: %zu problem(s), not loaded", f.path.c_str(), ivr_flow_report_count(report));
    } else if (rc != IVR_OK) {
      errf("%s: %s", f.path.c_str(), ivr_error_last()->message);
    } else {
      std::string id = ivr_flow_report_flow_id(report), version = ivr_flow_report_version(report);
      std::string why;
      if (!printable_on_call_line(id, version, &why)) {
        errf("ivrd: config %s: %s: %s", f.field.c_str(), f.path.c_str(), why.c_str());
        ok = false;
      } else {
        ids->insert(id);
        log_msg(IVR_LOG_INFO, "flow %s version %s loaded from %s%s", id.c_str(), version.c_str(),
                f.path.c_str(), f.activate ? "" : " (not activated)");
      }
    }
    ivr_flow_report_free(report);
    if (!ok) return false;
  }
  return true;
}

bool map_entry_points(ivr_engine *engine, const ivrd::Config &config,
                      const std::set<std::string> &ids) {
  for (const auto &[called, flow] : config.entry_points) {
    if (!ids.count(flow)) {
      std::string loaded;
      for (const std::string &id : ids) loaded += (loaded.empty() ? "" : ", ") + id;
      errf("ivrd: config entry_points.\"%s\": no flow \"%s\" was loaded (loaded: %s)",
           called.c_str(), flow.c_str(), loaded.c_str());
      return false;
    }
    if (ivr_engine_flow_map(engine, called.c_str(), flow.c_str()) != IVR_OK) {
      errf("ivrd: config entry_points.\"%s\": %s", called.c_str(), ivr_error_last()->message);
      return false;
    }
    log_msg(IVR_LOG_INFO, "entry point %s -> flow %s", called.c_str(), flow.c_str());
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

  // Block the stop signals before any thread exists (ours or the engine's), so only
  // sigwait sees them. A signal that arrives while the engine starts waits for sigwait.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  g_out.start();
  // Writes what is still queued before exiting with `code`.
  auto finish = [](int code) {
    g_out.stop();
    return code;
  };

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
  if (!config.webhook_spool_dir.empty()) {
    opts.webhook_spool_dir = config.webhook_spool_dir.c_str();
    opts.webhook_spool_max_bytes = config.webhook_spool_max_bytes;
  }

  ivr_engine *engine = nullptr;
  if (ivr_engine_new(&engine, &opts) != IVR_OK) {
    errf("ivrd: config: %s", ivr_error_last()->message);
    return finish(2);
  }
  if (ivr_engine_set_event_callback(engine, on_event, nullptr, nullptr) != IVR_OK) {
    errf("ivrd: %s", ivr_error_last()->message);
    ivr_engine_free(engine);
    return finish(1);
  }
  if (!config.auth_profiles.empty() &&
      ivr_engine_set_auth_profiles(engine, config.auth_profiles.c_str()) != IVR_OK) {
    errf("ivrd: config %s", ivr_error_last()->message);  // "auth.crm.token_secret: missing"
    ivr_engine_free(engine);
    return finish(2);
  }
  for (const ivrd::WebhookEndpoint &w : config.webhooks) {
    std::vector<const char *> secrets;
    for (const std::string &sec : w.secrets) secrets.push_back(sec.c_str());
    ivr_webhook_options wo = IVR_WEBHOOK_OPTIONS_INIT;
    wo.name = w.name.c_str();
    wo.url = w.url.c_str();
    wo.event_types = w.events.c_str();
    wo.secrets = secrets.data();
    wo.secret_count = secrets.size();
    wo.timeout_ms = w.timeout_ms;
    wo.max_attempts = w.max_attempts;
    wo.max_concurrency = w.max_concurrency;
    wo.ca_file = w.ca_file.empty() ? nullptr : w.ca_file.c_str();
    if (ivr_engine_set_webhook(engine, &wo) != IVR_OK) {
      errf("ivrd: config %s: %s", w.field.c_str(), ivr_error_last()->message);
      ivr_engine_free(engine);
      return finish(2);
    }
  }
  for (const ivrd::Database &d : config.databases) {
    ivr_db_options dbo = IVR_DB_OPTIONS_INIT;
    dbo.url = d.url.c_str();
    dbo.password_secret = d.password_secret.empty() ? nullptr : d.password_secret.c_str();
    dbo.pool_size = d.pool_size;
    dbo.connect_timeout_ms = d.connect_timeout_ms;
    dbo.max_waiting = d.max_waiting;
    dbo.read_only = d.read_only ? 1 : 0;
    if (ivr_engine_add_db(engine, d.name.c_str(), &dbo) != IVR_OK) {
      errf("ivrd: config %s", ivr_error_last()->message);  // "db.crm.url: ..."
      ivr_engine_free(engine);
      return finish(2);
    }
  }
  if (!config.routing.empty() && ivr_engine_set_routing(engine, config.routing.c_str()) != IVR_OK) {
    errf("ivrd: config %s", ivr_error_last()->message);  // "routing.targets.x.capacity: ..."
    ivr_engine_free(engine);
    return finish(2);
  }
  std::set<std::string> ids;
  // Flows load before SIP binds: a broken document never answers a call.
  if (!load_flows(engine, config, &ids) || !map_entry_points(engine, config, ids)) {
    ivr_engine_free(engine);
    return finish(2);
  }
  if (ivr_engine_start(engine) != IVR_OK) {
    errf("ivrd: %s", ivr_error_last()->message);
    ivr_engine_free(engine);
    return finish(1);
  }
  bool v6 = config.sip_address.find(':') != std::string::npos;
  errf("ivrd listening on sip:%s%s%s:%u (%s), prompts %s", v6 ? "[" : "",
       config.sip_address.c_str(), v6 ? "]" : "", (unsigned)ivr_engine_sip_port(engine),
       ivrd::transport_name(config.sip_transport), config.prompt_dir.c_str());

  int sig = 0;
  while (sigwait(&signals, &sig) != 0) {
  }
  log_msg(IVR_LOG_INFO, "stopping (%s)", sig == SIGINT ? "SIGINT" : "SIGTERM");
  // Calls still up get a BYE (or a 503) carrying this reason, and their stdout lines.
  ivr_engine_stop(engine, "ivrd shutting down");
  ivr_engine_free(engine);
  return finish(0);
}
