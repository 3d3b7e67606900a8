/*
 * libivr: a header-only C++ wrapper over the C ABI (ivr/ivr.h). Compiles as C++17 and later.
 *
 * Everything here is inline and calls only the exported ivr_* functions, so a program built
 * with this header depends on the stable C ABI alone (link with -livr / ivr::ivr).
 *
 * Conventions (the C rules of docs/c-api.md, in C++ form):
 *  - a C function's negative status becomes a thrown ivr::Error carrying the IVR_E* code and
 *    the message of ivr_error_last(); flow documents with problems throw ivr::ValidationError;
 *  - handles are RAII: ivr::Engine owns its ivr_engine (move-only); ivr::Call holds a
 *    reference to an ivr_call (copies take more references);
 *  - every string handed in is copied by the library, every string handed out is a copy
 *    (std::string), so no borrowed C string outlives its owner;
 *  - callbacks are std::function objects kept alive by the engine (freed through the C ABI's
 *    free_user_data when replaced or with the engine). A C++ exception thrown by a callback
 *    never crosses into the library: it is caught, reported to the callback exception
 *    handler (ivr::set_callback_exception_handler; stderr by default) and, for custom verbs
 *    and database queries, completes the request as failed with the exception's message.
 *
 * Threads are those of the C ABI (docs/threading.md): event callbacks run on the engine
 * thread, one at a time; log callbacks on any engine thread, concurrently; verb and query
 * callbacks on the engine thread, and their requests may be completed from any thread.
 */
#ifndef IVR_IVR_HPP
#define IVR_IVR_HPP

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "ivr/ivr.h"

namespace ivr {

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/**
 * A failed library call: code() is the IVR_E* value (negative), what() the message of
 * ivr_error_last() (it names the field and the reason). Thrown by every wrapper whose C
 * function returned a negative status, and by the wrapper's own checks (a moved-from
 * handle, a request completed twice: IVR_EINVAL / IVR_ESTATE).
 */
class Error : public std::runtime_error {
 public:
  Error(int code, const std::string &message) : std::runtime_error(message), code_(code) {}
  /** The ivr_error_code (IVR_EINVAL, IVR_EGONE, ...). */
  int code() const noexcept { return code_; }
  /** A static description of code() ("invalid argument"). */
  const char *code_name() const noexcept { return ivr_strerror(code_); }

 private:
  int code_;
};

/** One problem of a flow document: where (JSON Pointer, 1-based line and column, 0 when
 *  unknown) and why. */
struct FlowProblem {
  std::string pointer;
  unsigned line = 0;
  unsigned column = 0;
  std::string message;
};

/**
 * A flow document that failed validation when loaded (Engine::flow_load). code() is
 * IVR_EPARSE; problems() lists every problem, in document order; text() has them one per
 * line ("line L, column C: /pointer: reason").
 */
class ValidationError : public Error {
 public:
  ValidationError(const std::string &message, std::vector<FlowProblem> problems, std::string text)
      : Error(IVR_EPARSE, message), problems_(std::move(problems)), text_(std::move(text)) {}
  const std::vector<FlowProblem> &problems() const noexcept { return problems_; }
  const std::string &text() const noexcept { return text_; }

 private:
  std::vector<FlowProblem> problems_;
  std::string text_;
};

namespace detail {

/** Throws the calling thread's last library error for a failed status rc. */
[[noreturn]] inline void throw_last_error(int rc) {
  const ivr_error *e = ivr_error_last();
  std::string message = e && e->message && *e->message ? e->message : ivr_strerror(rc);
  throw Error(rc, message);
}

/** rc < 0 becomes an Error; returns rc otherwise. */
inline int check(int rc) {
  if (rc < 0) throw_last_error(rc);
  return rc;
}

/** NULL for "", so that empty C++ strings mean "not set" / "the default" in the C ABI. */
inline const char *opt(const std::string &s) noexcept {
  return s.empty() ? nullptr : s.c_str();
}

inline std::string str(const char *s) {
  return s ? std::string(s) : std::string();
}

}  // namespace detail

// ---------------------------------------------------------------------------------------
// Exceptions thrown by callbacks
// ---------------------------------------------------------------------------------------

/**
 * Receives an exception a callback threw: where ("event callback", "custom verb
 * \"crm.lookup\"", ...) and its message (what(), or "unknown exception"). Called on the
 * thread that ran the callback, possibly concurrently: it must be thread-safe. It must not
 * throw (what it throws is swallowed).
 */
using CallbackExceptionHandler =
    std::function<void(const std::string &where, const std::string &message)>;

namespace detail {

struct HandlerSlot {
  std::mutex mutex;
  CallbackExceptionHandler handler;
};

inline HandlerSlot &handler_slot() {
  // Never destroyed: engine threads may still report while the program exits.
  static HandlerSlot *slot = new HandlerSlot;
  return *slot;
}

/** The message of the exception being handled; call from a catch block. */
inline std::string current_exception_message() noexcept {
  try {
    throw;
  } catch (const std::exception &e) {
    try {
      return e.what();
    } catch (...) {
      return {};
    }
  } catch (...) {
    try {
      return "unknown exception";
    } catch (...) {
      return {};
    }
  }
}

inline void report_callback_exception(const std::string &where,
                                      const std::string &message) noexcept {
  try {
    CallbackExceptionHandler handler;
    {
      std::lock_guard<std::mutex> lock(handler_slot().mutex);
      handler = handler_slot().handler;
    }
    if (handler) {
      handler(where, message);
    } else {
      std::fprintf(stderr, "ivr: %s threw: %s\n", where.c_str(), message.c_str());
    }
  } catch (...) {
    // The handler itself failed: nothing safe is left to do with it.
  }
}

/** Reports the exception being handled (call from a catch block); returns its message. */
inline std::string report_current_exception(const char *where, const std::string &name = {}) {
  std::string message = current_exception_message();
  try {
    report_callback_exception(
        name.empty() ? std::string(where) : std::string(where) + " \"" + name + "\"", message);
  } catch (...) {
  }
  return message;
}

}  // namespace detail

/**
 * Sets the handler for exceptions thrown by callbacks (see CallbackExceptionHandler) and
 * returns the previous one. An empty handler restores the default, which writes one line
 * to stderr. Process-wide; thread-safe.
 */
inline CallbackExceptionHandler set_callback_exception_handler(CallbackExceptionHandler handler) {
  std::lock_guard<std::mutex> lock(detail::handler_slot().mutex);
  std::swap(detail::handler_slot().handler, handler);
  return handler;
}

/** The library's version ("0.1.0"). Thread-safe. */
inline std::string version() {
  return ivr_version(nullptr, nullptr, nullptr);
}

// ---------------------------------------------------------------------------------------
// Enumerations (values equal to the C ones)
// ---------------------------------------------------------------------------------------

enum class LogLevel {
  error = IVR_LOG_ERROR,
  warn = IVR_LOG_WARN,
  info = IVR_LOG_INFO,
  debug = IVR_LOG_DEBUG,
  trace = IVR_LOG_TRACE
};

enum class SipTransport { udp = IVR_SIP_UDP, tcp = IVR_SIP_TCP, udp_tcp = IVR_SIP_UDP_TCP };

enum class EventType {
  call_started = IVR_EVENT_CALL_STARTED,
  call_answered = IVR_EVENT_CALL_ANSWERED,
  dtmf = IVR_EVENT_DTMF,
  prompt_finished = IVR_EVENT_PROMPT_FINISHED,
  collect_done = IVR_EVENT_COLLECT_DONE,
  call_ended = IVR_EVENT_CALL_ENDED,
  media_updated = IVR_EVENT_MEDIA_UPDATED,
  flow_step = IVR_EVENT_FLOW_STEP,
  route_decided = IVR_EVENT_ROUTE_DECIDED,   ///< route_plan, route_detail
  route_attempt = IVR_EVENT_ROUTE_ATTEMPT,   ///< a failed attempt: route_target, route_uri, ...
  call_queued = IVR_EVENT_CALL_QUEUED,       ///< queue_position, queue_priority
  call_delivered = IVR_EVENT_CALL_DELIVERED  ///< route_target, route_uri, sip_code
};

enum class DtmfSource {
  rfc4733 = IVR_DTMF_RFC4733,
  info = IVR_DTMF_INFO,
  inband = IVR_DTMF_INBAND
};

enum class PromptEnd {
  completed = IVR_PROMPT_COMPLETED,
  stopped = IVR_PROMPT_STOPPED,
  barged_in = IVR_PROMPT_BARGED_IN,
  failed = IVR_PROMPT_FAILED
};

enum class CollectEnd {
  max_digits = IVR_COLLECT_MAX_DIGITS,
  terminator = IVR_COLLECT_TERMINATOR,
  first_timeout = IVR_COLLECT_FIRST_TIMEOUT,
  inter_timeout = IVR_COLLECT_INTER_TIMEOUT,
  cancelled = IVR_COLLECT_CANCELLED
};

enum class EndReason {
  remote_hangup = IVR_END_REMOTE_HANGUP,
  remote_cancel = IVR_END_REMOTE_CANCEL,
  local_hangup = IVR_END_LOCAL_HANGUP,
  rejected = IVR_END_REJECTED,
  no_media = IVR_END_NO_MEDIA,
  engine_stop = IVR_END_ENGINE_STOP,
  error = IVR_END_ERROR
};

/** How a host database query ended (see DbQuery::complete). */
enum class DbStatus {
  ok = IVR_DB_OK,
  timeout = IVR_DB_TIMEOUT,
  connect = IVR_DB_CONNECT,
  query = IVR_DB_QUERY,
  busy = IVR_DB_BUSY
};

/** A routing target's health (ivr_target_health). */
enum class TargetHealth {
  up = IVR_TARGET_UP,
  down = IVR_TARGET_DOWN,         ///< the health probe (or a transport failure) marked it down
  draining = IVR_TARGET_DRAINING  ///< an operator is draining it
};

/** Static names, as in logs and webhooks: "call.started", "rfc4733", "barged_in", ... */
inline const char *name(EventType t) noexcept {
  return ivr_event_type_name(static_cast<ivr_event_type>(t));
}
inline const char *name(DtmfSource s) noexcept {
  return ivr_dtmf_source_name(static_cast<ivr_dtmf_source>(s));
}
inline const char *name(EndReason r) noexcept {
  return ivr_end_reason_name(static_cast<ivr_end_reason>(r));
}
inline const char *name(CollectEnd e) noexcept {
  return ivr_collect_end_name(static_cast<ivr_collect_end>(e));
}
inline const char *name(PromptEnd e) noexcept {
  return ivr_prompt_end_name(static_cast<ivr_prompt_end>(e));
}
/** "up", "down" or "draining" (as docs/routing.md spells them). */
inline const char *name(TargetHealth h) noexcept {
  switch (h) {
    case TargetHealth::up:
      return "up";
    case TargetHealth::down:
      return "down";
    case TargetHealth::draining:
      return "draining";
  }
  return "unknown";
}

// ---------------------------------------------------------------------------------------
// Calls
// ---------------------------------------------------------------------------------------

namespace detail {
inline constexpr ivr_engine_options kEngineDefaults = IVR_ENGINE_OPTIONS_INIT;
inline constexpr ivr_say_options kSayDefaults = IVR_SAY_OPTIONS_INIT;
inline constexpr ivr_collect_options kCollectDefaults = IVR_COLLECT_OPTIONS_INIT;
inline constexpr ivr_db_options kDbDefaults = IVR_DB_OPTIONS_INIT;
inline constexpr ivr_webhook_options kWebhookDefaults = IVR_WEBHOOK_OPTIONS_INIT;
}  // namespace detail

/** Text-to-speech options (ivr_say_options); the defaults are IVR_SAY_OPTIONS_INIT's. */
struct SayOptions {
  std::string voice = detail::kSayDefaults.voice;     ///< an espeak-ng voice; "" = "en"
  unsigned rate_wpm = detail::kSayDefaults.rate_wpm;  ///< 80..450 words per minute
};

/** Digit collection (ivr_collect_options); the defaults are IVR_COLLECT_OPTIONS_INIT's. */
struct CollectOptions {
  unsigned max_digits = detail::kCollectDefaults.max_digits;       ///< 1..64
  std::string terminators = detail::kCollectDefaults.terminators;  ///< "" = none
  unsigned first_digit_timeout_ms = detail::kCollectDefaults.first_digit_timeout_ms;
  unsigned inter_digit_timeout_ms = detail::kCollectDefaults.inter_digit_timeout_ms;
  bool barge_in = detail::kCollectDefaults.barge_in != 0;  ///< a digit stops the prompt
};

/** Where the call's RTP goes now. */
struct MediaAddress {
  std::string ip;
  unsigned short port = 0;
};

/**
 * A reference to a call (ivr_call_ref / ivr_call_unref). Copies share the call and each
 * holds its own reference; the handle and its facts stay readable as long as one Call
 * holds it, even after the call ended or the engine was freed (actions then throw Error
 * with IVR_EGONE). An empty Call (default-constructed or moved-from) fails every action
 * with IVR_EINVAL.
 *
 * Thread-safety: every method may be called from any thread. From the engine thread
 * (inside a callback) an action runs at once; from another thread it is handed to the
 * engine thread and the caller waits briefly for its result. A call run by a flow belongs
 * to the flow: read it, do not act on it.
 */
class Call {
 public:
  Call() noexcept = default;
  /** Takes a new reference to c (NULL gives an empty Call). Throws Error for an invalid c. */
  static Call ref(ivr_call *c) {
    Call call;
    if (c) {
      detail::check(ivr_call_ref(c));
      call.h_ = c;
    }
    return call;
  }
  Call(const Call &o) noexcept : h_(o.h_) {
    if (h_ && ivr_call_ref(h_) != IVR_OK) h_ = nullptr;
  }
  Call(Call &&o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
  Call &operator=(const Call &o) noexcept {
    if (this != &o) *this = Call(o);
    return *this;
  }
  Call &operator=(Call &&o) noexcept {
    if (this != &o) {
      ivr_call_unref(h_);
      h_ = std::exchange(o.h_, nullptr);
    }
    return *this;
  }
  ~Call() { ivr_call_unref(h_); }

  /** The C handle (borrowed from this object; take ivr_call_ref to keep it longer). */
  ivr_call *native() const noexcept { return h_; }
  explicit operator bool() const noexcept { return h_ != nullptr; }
  friend bool operator==(const Call &a, const Call &b) noexcept { return a.h_ == b.h_; }
  friend bool operator!=(const Call &a, const Call &b) noexcept { return a.h_ != b.h_; }

  /** 180 Ringing. IVR_ESTATE once answered or ended. */
  void ring() { detail::check(ivr_call_ring(h_)); }
  /** 200 OK; Event call_answered follows with the ACK. IVR_ESTATE if already answered. */
  void answer() { detail::check(ivr_call_answer(h_)); }
  /** A final 400-699 with a Reason header ("" for none). */
  void reject(int sip_status, const std::string &reason = {}) {
    detail::check(ivr_call_reject(h_, sip_status, detail::opt(reason)));
  }
  /** BYE once answered, 480 before. */
  void hangup(const std::string &reason = {}) {
    detail::check(ivr_call_hangup(h_, detail::opt(reason)));
  }
  /** Plays a prompt file relative to the engine's prompt_dir; prompt_finished follows. */
  void play(const std::string &prompt) { detail::check(ivr_call_play(h_, prompt.c_str())); }
  /** Speaks text with espeak-ng, like play (see ivr_call_say for the limits and errors). */
  void say(const std::string &text, const SayOptions &options = SayOptions()) {
    ivr_say_options o = IVR_SAY_OPTIONS_INIT;
    o.voice = detail::opt(options.voice);
    o.rate_wpm = options.rate_wpm;
    detail::check(ivr_call_say(h_, text.c_str(), &o));
  }
  /** Stops the current prompt (prompt_end stopped). */
  void stop_playback() { detail::check(ivr_call_stop_playback(h_)); }
  /** Collects digits; collect_done follows. */
  void collect(const CollectOptions &options = CollectOptions()) {
    ivr_collect_options o = IVR_COLLECT_OPTIONS_INIT;
    o.max_digits = options.max_digits;
    o.terminators = options.terminators.c_str();
    o.first_digit_timeout_ms = options.first_digit_timeout_ms;
    o.inter_digit_timeout_ms = options.inter_digit_timeout_ms;
    o.barge_in = options.barge_in ? 1 : 0;
    detail::check(ivr_call_collect(h_, &o));
  }
  /** Turns inband (audio tone) DTMF detection on or off for this call. */
  void set_inband_dtmf(bool enabled) {
    detail::check(ivr_call_set_inband_dtmf(h_, enabled ? 1 : 0));
  }

  /** The SIP Call-ID ("" for an empty Call). */
  std::string id() const { return detail::str(ivr_call_id(h_)); }
  /** The From header value as received. */
  std::string from() const { return detail::str(ivr_call_from(h_)); }
  /** The To header value as received. */
  std::string to() const { return detail::str(ivr_call_to(h_)); }
  /** The user part of the From URI (the caller's number), or "". */
  std::string from_user() const { return detail::str(ivr_call_from_user(h_)); }
  /** The user part of the To URI (the number called), or "". */
  std::string to_user() const { return detail::str(ivr_call_to_user(h_)); }
  /** The first INVITE header of this name (case-insensitive), or nullopt when absent. */
  std::optional<std::string> header(const std::string &name) const {
    const char *value = nullptr;
    int rc = ivr_call_header(&value, h_, name.c_str());
    if (rc == IVR_ENOTFOUND) return std::nullopt;
    detail::check(rc);
    return detail::str(value);
  }
  /** The remote media address now, or nullopt before SDP was negotiated. */
  std::optional<MediaAddress> remote_media() const {
    char buf[64] = {0};
    MediaAddress out;
    int rc = ivr_call_remote_media(buf, sizeof buf, &out.port, h_);
    if (rc == IVR_ENOTFOUND) return std::nullopt;
    detail::check(rc);
    out.ip = buf;
    return out;
  }
  /** The negotiated codec ("PCMU", "PCMA"), or nullopt before negotiation. */
  std::optional<std::string> codec() const {
    const char *value = nullptr;
    int rc = ivr_call_codec(&value, h_);
    if (rc == IVR_ENOTFOUND) return std::nullopt;
    detail::check(rc);
    return detail::str(value);
  }
  /** The call's 1-based position in the routing queue, or 0 when it is not waiting. */
  unsigned queue_position() const {
    unsigned position = 0;
    detail::check(ivr_call_queue_position(&position, h_));
    return position;
  }

 private:
  ivr_call *h_ = nullptr;
};

// ---------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------

/**
 * One event (ivr_event), copied: it may be kept and moved to other threads. Read the
 * fields documented for its type (docs/c-api.md, "Events"); the others are zero / "".
 * call holds a reference to the call.
 */
struct Event {
  EventType type = EventType::call_started;
  Call call;
  // dtmf
  char digit = 0;
  unsigned duration_ms = 0;
  DtmfSource dtmf_source = DtmfSource::rfc4733;
  // prompt_finished
  std::string prompt;
  PromptEnd prompt_end = PromptEnd::completed;
  // collect_done
  std::string digits;
  CollectEnd collect_end = CollectEnd::max_digits;
  DtmfSource digits_source = DtmfSource::rfc4733;
  // call_ended (reason also for a failed prompt)
  EndReason end_reason = EndReason::remote_hangup;
  int sip_code = 0;
  std::string reason;
  // media_updated
  bool on_hold = false;
  // every event of a call run by a flow ("" otherwise)
  std::string flow_id, flow_version, flow_node;
  // flow_step
  std::string flow_verb, flow_detail;
  // call_ended of a call run by a flow: its record
  std::string flow_path, flow_end, flow_error;
  // routing events (route_decided, route_attempt, call_queued, call_delivered); sip_code too
  std::string route_plan;      ///< the plan the route step named
  std::string route_target;    ///< the target dialled ("" for route_decided)
  std::string route_uri;       ///< the URI dialled
  std::string route_detail;    ///< the decision, or what happened
  unsigned route_attempt = 0;  ///< 1-based number of the INVITE
  int queue_position = 0;      ///< call_queued: 1-based
  int queue_priority = 0;      ///< call_queued: 0-999, lower first

  /** "call.started", "dtmf", "flow.step", ... */
  const char *type_name() const noexcept { return name(type); }

  /** Copies a C event (its strings and a new reference to its call). */
  static Event from_c(const ivr_event &e) {
    Event ev;
    ev.type = static_cast<EventType>(e.type);
    ev.call = Call::ref(e.call);
    ev.digit = e.digit;
    ev.duration_ms = e.duration_ms;
    ev.dtmf_source = static_cast<DtmfSource>(e.dtmf_source);
    ev.prompt = detail::str(e.prompt);
    ev.prompt_end = static_cast<PromptEnd>(e.prompt_end);
    ev.digits = detail::str(e.digits);
    ev.collect_end = static_cast<CollectEnd>(e.collect_end);
    ev.digits_source = static_cast<DtmfSource>(e.digits_source);
    ev.end_reason = static_cast<EndReason>(e.end_reason);
    ev.sip_code = e.sip_code;
    ev.reason = detail::str(e.reason);
    ev.on_hold = e.on_hold != 0;
    if (e.version >= 2) {  // the flow fields arrived in version 2
      ev.flow_id = detail::str(e.flow_id);
      ev.flow_version = detail::str(e.flow_version);
      ev.flow_node = detail::str(e.flow_node);
      ev.flow_verb = detail::str(e.flow_verb);
      ev.flow_detail = detail::str(e.flow_detail);
      ev.flow_path = detail::str(e.flow_path);
      ev.flow_end = detail::str(e.flow_end);
      ev.flow_error = detail::str(e.flow_error);
    }
    if (e.version >= 3) {  // the routing fields arrived in version 3
      ev.route_plan = detail::str(e.route_plan);
      ev.route_target = detail::str(e.route_target);
      ev.route_uri = detail::str(e.route_uri);
      ev.route_detail = detail::str(e.route_detail);
      ev.route_attempt = e.route_attempt;
      ev.queue_position = e.queue_position;
      ev.queue_priority = e.queue_priority;
    }
    return ev;
  }
};

/** Receives every event, on the engine thread, one at a time. Keep it short; never block. */
using EventCallback = std::function<void(const Event &event)>;

/**
 * Receives log lines, from any engine thread, possibly concurrently: it must be
 * thread-safe and must not call back into the engine.
 */
using LogCallback =
    std::function<void(LogLevel level, const std::string &subsystem, const std::string &message)>;

// ---------------------------------------------------------------------------------------
// Custom verbs
// ---------------------------------------------------------------------------------------

namespace detail {

/** One verb request, shared by the VerbRequest the host holds and the dispatcher (which
 *  completes it when the host's callback throws). The mutex makes completion single. */
class VerbCore {
 public:
  explicit VerbCore(ivr_verb_request *r)
      : verb_(str(ivr_verb_request_verb(r))),
        node_(str(ivr_verb_request_node(r))),
        call_(Call::ref(ivr_verb_request_call(r))) {
    size_t n = ivr_verb_request_arg_count(r);
    for (size_t i = 0; i < n; ++i) {
      const char *k = nullptr, *v = nullptr;
      if (ivr_verb_request_arg(r, i, &k, &v) == IVR_OK) args_[str(k)] = str(v);
    }
    r_ = r;  // last: a constructor that throws leaves the request to the caller
  }
  VerbCore(const VerbCore &) = delete;
  VerbCore &operator=(const VerbCore &) = delete;
  /** A request the host dropped unfinished takes the node's on_error. */
  ~VerbCore() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (r_) {
      (void)ivr_verb_request_complete(std::exchange(r_, nullptr), nullptr,
                                      "the host dropped the verb request without completing it");
    }
  }

  const std::string &verb() const noexcept { return verb_; }
  const std::string &node() const noexcept { return node_; }
  const Call &call() const noexcept { return call_; }
  const std::map<std::string, std::string> &args() const noexcept { return args_; }

  bool completed() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return r_ == nullptr;
  }
  void set(const std::string &name, const std::string &value) {
    std::lock_guard<std::mutex> lock(mutex_);
    check(ivr_verb_request_set(pending("set"), name.c_str(), value.c_str()));
  }
  void complete(const char *exit, const char *error) {
    std::lock_guard<std::mutex> lock(mutex_);
    ivr_verb_request *r = pending("complete");
    r_ = nullptr;  // complete frees the request whatever it returns
    check(ivr_verb_request_complete(r, exit, error));
  }
  /** Completes with an error unless already completed. Never throws. */
  void fail_if_pending(const char *error) noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    if (r_) (void)ivr_verb_request_complete(std::exchange(r_, nullptr), nullptr, error);
  }

 private:
  ivr_verb_request *pending(const char *what) const {
    if (!r_)
      throw Error(IVR_ESTATE, "verb \"" + verb_ + "\" (node " + node_ + "): " + what +
                                  ": the request was already completed");
    return r_;
  }

  mutable std::mutex mutex_;
  ivr_verb_request *r_ = nullptr;
  std::string verb_, node_;
  Call call_;
  std::map<std::string, std::string> args_;
};

}  // namespace detail

/**
 * One execution of a custom verb by a call's flow (ivr_verb_request). Move-only; finish it
 * exactly once with complete() (or fail()), from any thread, at once inside the callback
 * or later. A request destroyed unfinished is completed with an error (the node's
 * on_error); a request completed after the node's timeout_ms or after the call ended is
 * dropped by the engine.
 *
 * Thread-safety: the methods may be called from any thread, also concurrently (the
 * request is locked internally). verb(), node(), call(), arg() and args() are copies made
 * when the request arrived and stay readable after complete().
 */
class VerbRequest {
 public:
  explicit VerbRequest(std::shared_ptr<detail::VerbCore> core) noexcept : core_(std::move(core)) {}
  VerbRequest(VerbRequest &&) noexcept = default;
  VerbRequest &operator=(VerbRequest &&) noexcept = default;
  VerbRequest(const VerbRequest &) = delete;
  VerbRequest &operator=(const VerbRequest &) = delete;

  /** The verb's name ("crm.lookup"). */
  const std::string &verb() const { return core().verb(); }
  /** The flow node running it ("sub/node" inside a subflow). */
  const std::string &node() const { return core().node(); }
  /** The call (a reference of its own: valid beyond complete()). */
  Call call() const { return core().call(); }
  /** The node's rendered argument of this name, or nullopt. */
  std::optional<std::string> arg(const std::string &name) const {
    auto it = core().args().find(name);
    if (it == core().args().end()) return std::nullopt;
    return it->second;
  }
  /** Every rendered argument, by name. */
  const std::map<std::string, std::string> &args() const { return core().args(); }
  /**
   * Sets a result the flow reads as steps.<node>.<name> (name: letters, digits, '_').
   * Throws Error: IVR_EINVAL for a bad name, IVR_ESTATE once completed.
   */
  void set(const std::string &name, const std::string &value) { core().set(name, value); }
  /**
   * Finishes the request: exit "" or "next" takes the node's next exit, another name one
   * of its "exits"; a non-empty error takes on_error (steps.<node>.error = error).
   * Throws Error: IVR_ESTATE when already completed, IVR_EGONE when the engine is gone
   * (the request is finished either way).
   */
  void complete(const std::string &exit = {}, const std::string &error = {}) {
    core().complete(detail::opt(exit), detail::opt(error));
  }
  /** complete("", error): the node's on_error with this message (empty: "failed"). */
  void fail(const std::string &error) { complete({}, error.empty() ? "failed" : error); }
  /** True once completed (by this object or by the wrapper). */
  bool completed() const { return core().completed(); }
  /** False for a moved-from request. */
  explicit operator bool() const noexcept { return core_ != nullptr; }

 private:
  detail::VerbCore &core() const {
    if (!core_) throw Error(IVR_EINVAL, "verb request: moved-from");
    return *core_;
  }
  std::shared_ptr<detail::VerbCore> core_;
};

/**
 * Runs a custom verb, on the engine thread; must not block: start the work, keep (move)
 * the request, and complete it later from any thread. An exception it throws completes
 * the request with the exception's message as error (unless already completed) and is
 * reported to the callback exception handler.
 */
using VerbHandler = std::function<void(VerbRequest request)>;

// ---------------------------------------------------------------------------------------
// Database connectors
// ---------------------------------------------------------------------------------------

/**
 * One value of a result row: SQL NULL (std::monostate), a boolean, an integer, a real or
 * UTF-8 text. Construct with the exact type (DbValue{int64_t{42}}, DbValue{std::string("x")})
 * to avoid surprising conversions.
 */
using DbValue = std::variant<std::monostate, bool, int64_t, double, std::string>;

/** A built-in connector (ivr_db_options); the defaults are IVR_DB_OPTIONS_INIT's. */
struct DbOptions {
  /** Required: sqlite:///abs.db, sqlite::memory:, postgresql://..., redis://... (db.h). */
  std::string url;
  /** The secret holding the password ("" = none). */
  std::string password_secret;
  unsigned pool_size = detail::kDbDefaults.pool_size;
  unsigned connect_timeout_ms = detail::kDbDefaults.connect_timeout_ms;
  unsigned max_waiting = detail::kDbDefaults.max_waiting;
  bool read_only = detail::kDbDefaults.read_only != 0;  ///< SQLite only
};

namespace detail {

class DbCore;

/** The queries of one host connector still in the host's hands, so that they are all
 *  finished when the connector goes: a completion after ivr_engine_free would reach a freed
 *  engine loop, so the engine must not go while one is under way. */
class DbRegistry {
 public:
  void add(DbCore *core, const std::shared_ptr<DbCore> &shared) {
    std::lock_guard<std::mutex> lock(mutex_);
    pending_[core] = shared;
  }
  void remove(DbCore *core) noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    pending_.erase(core);
    if (pending_.empty()) drained_.notify_all();
  }
  /** The connector is gone: fails every query still pending, then waits for completions
   *  under way on other threads (each removes its query). Never throws. */
  inline void close() noexcept;

 private:
  std::mutex mutex_;
  std::condition_variable drained_;
  std::unordered_map<DbCore *, std::weak_ptr<DbCore>> pending_;
};

/** One host query, shared by the DbQuery the host holds, the dispatcher and the registry. */
class DbCore {
 public:
  DbCore(ivr_db_query *q, std::shared_ptr<DbRegistry> registry)
      : id_(ivr_db_query_id(q)),
        connector_(str(ivr_db_query_connector(q))),
        statement_(str(ivr_db_query_statement(q))),
        timeout_ms_(ivr_db_query_timeout_ms(q)),
        max_rows_(ivr_db_query_max_rows(q)),
        registry_(std::move(registry)) {
    size_t n = ivr_db_query_param_count(q);
    params_.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      size_t len = 0;
      const char *p = ivr_db_query_param(q, i, &len);
      if (p) {
        params_.emplace_back(std::string(p, len));
      } else {
        params_.emplace_back(std::nullopt);
      }
    }
    q_ = q;  // last: a constructor that throws leaves the query to the caller
  }
  DbCore(const DbCore &) = delete;
  DbCore &operator=(const DbCore &) = delete;
  /** A query the host dropped unanswered fails with reason "query". */
  ~DbCore() { fail_if_pending(IVR_DB_QUERY, "the host dropped the query without completing it"); }

  uint64_t id() const noexcept { return id_; }
  const std::string &connector() const noexcept { return connector_; }
  const std::string &statement() const noexcept { return statement_; }
  const std::vector<std::optional<std::string>> &params() const noexcept { return params_; }
  unsigned timeout_ms() const noexcept { return timeout_ms_; }
  size_t max_rows() const noexcept { return max_rows_; }

  bool completed() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return q_ == nullptr;
  }
  void set_columns(const std::vector<std::string> &names) {
    std::vector<const char *> c;
    c.reserve(names.size());
    for (const auto &n : names) c.push_back(n.c_str());
    std::lock_guard<std::mutex> lock(mutex_);
    check(ivr_db_query_set_columns(pending("set_columns"), c.data(), c.size()));
  }
  void add_row(const std::vector<DbValue> &row) {
    std::vector<ivr_db_value> values(row.size());
    for (size_t i = 0; i < row.size(); ++i) {
      ivr_db_value &v = values[i];
      v = ivr_db_value{IVR_DB_NULL, 0, 0, 0.0, nullptr, 0};
      const DbValue &x = row[i];
      if (const bool *b = std::get_if<bool>(&x)) {
        v.type = IVR_DB_BOOL;
        v.boolean = *b ? 1 : 0;
      } else if (const int64_t *n = std::get_if<int64_t>(&x)) {
        v.type = IVR_DB_INT;
        v.integer = *n;
      } else if (const double *d = std::get_if<double>(&x)) {
        v.type = IVR_DB_REAL;
        v.real = *d;
      } else if (const std::string *s = std::get_if<std::string>(&x)) {
        v.type = IVR_DB_TEXT;
        v.text = s->data();
        v.text_len = s->size();
      }
    }
    std::lock_guard<std::mutex> lock(mutex_);
    check(ivr_db_query_add_row(pending("add_row"), values.data(), values.size()));
  }
  void complete(ivr_db_status status, const char *message) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ivr_db_query *q = pending("complete");
      q_ = nullptr;  // complete frees the query whatever it returns
      int rc = ivr_db_query_complete(q, status, message);
      if (rc < 0) {
        registry_->remove(this);
        throw_last_error(rc);
      }
    }
    registry_->remove(this);
  }
  /** Completes with a failure unless already completed. Never throws. */
  void fail_if_pending(ivr_db_status status, const char *message) noexcept {
    bool done = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (q_) {
        (void)ivr_db_query_complete(std::exchange(q_, nullptr), status, message);
        done = true;
      }
    }
    if (done) registry_->remove(this);
  }

 private:
  ivr_db_query *pending(const char *what) const {
    if (!q_)
      throw Error(IVR_ESTATE, "db query " + std::to_string(id_) + " (" + connector_ + "): " + what +
                                  ": the query was already completed");
    return q_;
  }

  mutable std::mutex mutex_;
  ivr_db_query *q_ = nullptr;
  uint64_t id_;
  std::string connector_, statement_;
  std::vector<std::optional<std::string>> params_;
  unsigned timeout_ms_;
  size_t max_rows_;
  std::shared_ptr<DbRegistry> registry_;
};

inline void DbRegistry::close() noexcept {
  // One query at a time, without allocating; a DbCore is never released under the lock
  // (its destructor removes itself).
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    std::shared_ptr<DbCore> core;
    for (auto &entry : pending_)
      if ((core = entry.second.lock())) break;
    if (!core) break;
    lock.unlock();
    core->fail_if_pending(IVR_DB_CONNECT, "the connector was removed or its engine freed");
    core.reset();
    lock.lock();
  }
  // Queries whose last DbQuery is being destroyed elsewhere complete in their destructor.
  drained_.wait(lock, [this] { return pending_.empty(); });
}

}  // namespace detail

/**
 * One query handed to a host connector (ivr_db_query). Move-only; answer it exactly once
 * with complete(), from any thread: set_columns(), then add_row() per row, then
 * complete(DbStatus::ok), or complete(status, message) for a failure. A query destroyed
 * unanswered fails with DbStatus::query; queries still unanswered when their connector is
 * replaced or removed, or the engine freed, are failed by the wrapper (later calls throw
 * IVR_ESTATE), so a DbQuery may safely outlive its engine.
 *
 * Thread-safety: the methods may be called from any thread, also concurrently. id(),
 * connector(), statement(), params(), timeout_ms() and max_rows() are copies made when the
 * query arrived.
 */
class DbQuery {
 public:
  explicit DbQuery(std::shared_ptr<detail::DbCore> core) noexcept : core_(std::move(core)) {}
  DbQuery(DbQuery &&) noexcept = default;
  DbQuery &operator=(DbQuery &&) noexcept = default;
  DbQuery(const DbQuery &) = delete;
  DbQuery &operator=(const DbQuery &) = delete;

  /** The query's id, as passed to the cancel callback. */
  uint64_t id() const { return core().id(); }
  /** The connector's name. */
  const std::string &connector() const { return core().connector(); }
  /** The statement, literal from the flow document. */
  const std::string &statement() const { return core().statement(); }
  /** The bound parameters, rendered; nullopt for SQL NULL. */
  const std::vector<std::optional<std::string>> &params() const { return core().params(); }
  /** The step's timeout. */
  unsigned timeout_ms() const { return core().timeout_ms(); }
  /** Rows the flow reads at most; more are counted as truncated. */
  size_t max_rows() const { return core().max_rows(); }
  /** Sets the column names (before any row; again: replaces them and drops the rows).
   *  Throws Error: IVR_EINVAL for a duplicate name, IVR_ESTATE once completed. */
  void set_columns(const std::vector<std::string> &names) { core().set_columns(names); }
  /** Adds a row, one value per column. Throws Error: IVR_EINVAL when the count differs
   *  from the columns, IVR_ESTATE once completed. */
  void add_row(const std::vector<DbValue> &row) { core().add_row(row); }
  /**
   * Finishes the query: DbStatus::ok answers with the rows set; another status fails the
   * step with that reason and message (steps.<node>.error). A query the engine no longer
   * waits for is dropped. Throws Error: IVR_ESTATE when already completed.
   */
  void complete(DbStatus status = DbStatus::ok, const std::string &message = {}) {
    core().complete(static_cast<ivr_db_status>(status), detail::opt(message));
  }
  /** True once completed (by this object or by the wrapper). */
  bool completed() const { return core().completed(); }
  /** False for a moved-from query. */
  explicit operator bool() const noexcept { return core_ != nullptr; }

 private:
  detail::DbCore &core() const {
    if (!core_) throw Error(IVR_EINVAL, "db query: moved-from");
    return *core_;
  }
  std::shared_ptr<detail::DbCore> core_;
};

/**
 * Runs a host query, on the engine thread; must not block: keep (move) the query and
 * answer it later from any thread, or at once. An exception it throws fails the query with
 * DbStatus::query and the exception's message (unless already completed) and is reported
 * to the callback exception handler.
 */
using DbQueryHandler = std::function<void(DbQuery query)>;
/** Optional: the engine no longer waits for this query (call ended, step timed out); on
 *  the engine thread. The host may stop the work; the query still gets completed. */
using DbCancelHandler = std::function<void(uint64_t query_id)>;

// ---------------------------------------------------------------------------------------
// Flows, webhooks: value types
// ---------------------------------------------------------------------------------------

/** The outcome of validating a document (Engine::flow_validate). */
struct FlowReport {
  std::vector<FlowProblem> problems;  ///< empty when valid
  std::string text;                   ///< one problem per line; "" when valid
  std::string flow_id;                ///< of a valid document, else ""
  std::string version;                ///< of a valid document that names one, else ""
  bool valid() const noexcept { return problems.empty(); }
};

/** A version just loaded (Engine::flow_load). */
struct LoadedFlow {
  std::string flow_id;
  std::string version;  ///< the document's, or the number assigned at load
};

/** One loaded version (Engine::flow_list). */
struct FlowInfo {
  std::string flow_id;
  std::string version;
  bool active = false;
  unsigned nodes = 0;
};

/** A webhook subscription (ivr_webhook_options); the defaults are IVR_WEBHOOK_OPTIONS_INIT's. */
struct WebhookOptions {
  std::string name;  ///< required; 1-64 of [A-Za-z0-9._-]
  std::string url;   ///< required; http:// or https://
  std::string event_types = detail::kWebhookDefaults.event_types;  ///< "call.started,..." or "*"
  std::vector<std::string> secrets;  ///< signing secrets, at least one
  unsigned timeout_ms = detail::kWebhookDefaults.timeout_ms;
  unsigned max_attempts = detail::kWebhookDefaults.max_attempts;
  unsigned backoff_base_ms = detail::kWebhookDefaults.backoff_base_ms;
  unsigned backoff_max_ms = detail::kWebhookDefaults.backoff_max_ms;
  unsigned max_concurrency = detail::kWebhookDefaults.max_concurrency;
  std::string ca_file;  ///< PEM bundle for https://; "" = the system's CAs
  bool enabled = detail::kWebhookDefaults.enabled != 0;
};

/** Webhook delivery counters (ivr_webhook_stats; see webhook.h for each field). */
struct WebhookStats {
  uint64_t published = 0, publish_rejected = 0, delivered = 0, failed_attempts = 0,
           dead_lettered = 0, requeued = 0, spool_errors = 0;
  uint64_t in_flight = 0, queued = 0, dead = 0;
  bool healthy = true;
};

/** A dead letter (ivr_dead_letter), copied. */
struct DeadLetter {
  std::string id;  ///< 32 hex digits: the X-Ivr-Event-Id
  std::string subscription;
  std::string event_type;
  unsigned attempts = 0;
  std::string last_error;
  int64_t created_ms = 0;  ///< Unix ms
};

// ---------------------------------------------------------------------------------------
// Routing: value types (docs/routing.md)
// ---------------------------------------------------------------------------------------

/** Agent availability of one target, as the host's own connector reports it
 *  (ivr_availability; Engine::push_availability). */
struct Availability {
  unsigned agents_available = 0;  ///< idle agents ready for a call
  unsigned agents_logged_in = 0;
  unsigned calls_waiting = 0;  ///< calls waiting in the dialing system itself
  unsigned longest_wait_s = 0;
};

/** A snapshot of one target's live state (ivr_target_state; Engine::target_state). */
struct TargetState {
  TargetHealth health = TargetHealth::up;
  unsigned capacity = 0;
  unsigned active = 0;    ///< delivered calls in progress
  unsigned reserved = 0;  ///< slots held for calls being dialled or offered
  uint64_t offered = 0, answered = 0, completed = 0;
  uint64_t failed = 0;              ///< delivery attempts that failed, every reason
  bool availability_fresh = false;  ///< fresh agent data is present
  int64_t idle_agents = 0;          ///< as routing counts them (0 when stale)
};

/** The call queue: calls waiting because no target could take them (ivr_queue_stats). */
struct QueueStats {
  unsigned waiting = 0;  ///< calls in the queue now
  unsigned offered = 0;  ///< of those, calls being dialled on an offered slot
  uint64_t oldest_wait_ms = 0;
  int64_t service_interval_ms = -1;  ///< the wait estimate's interval; -1 until a call left
  uint64_t enqueued = 0, served = 0, abandoned = 0, expired = 0;  ///< totals
};

/**
 * Engine options (ivr_engine_options, version 2). The defaults are those of
 * IVR_ENGINE_OPTIONS_INIT; an empty string means the C default (NULL).
 */
struct EngineOptions {
  std::string sip_address = detail::kEngineDefaults.sip_address;  ///< an IP literal
  unsigned short sip_port = detail::kEngineDefaults.sip_port;     ///< 0: any free port
  SipTransport sip_transport = static_cast<SipTransport>(detail::kEngineDefaults.sip_transport);
  std::string rtp_address;                                             ///< "" = sip_address
  unsigned short rtp_port_min = detail::kEngineDefaults.rtp_port_min;  ///< even
  unsigned short rtp_port_max = detail::kEngineDefaults.rtp_port_max;
  unsigned media_threads = detail::kEngineDefaults.media_threads;  ///< 1..64
  std::string prompt_dir = detail::kEngineDefaults.prompt_dir;
  /** Empty: no logging. Any engine thread, concurrently (see LogCallback). */
  LogCallback log;
  LogLevel log_level = static_cast<LogLevel>(detail::kEngineDefaults.log_level);
  std::string user_agent;         ///< "" = "libivr/<version>"
  std::string webhook_spool_dir;  ///< "" = webhooks off
  unsigned long long webhook_spool_max_bytes =
      detail::kEngineDefaults.webhook_spool_max_bytes;  ///< 0 = 256 MiB
};

// ---------------------------------------------------------------------------------------
// The engine
// ---------------------------------------------------------------------------------------

namespace detail {

struct LogState {
  LogCallback fn;
  static void dispatch(ivr_log_level level, const char *subsystem, const char *message,
                       void *user_data) noexcept {
    try {
      static_cast<LogState *>(user_data)->fn(static_cast<LogLevel>(level), str(subsystem),
                                             str(message));
    } catch (...) {
      report_current_exception("log callback");
    }
  }
};

struct EventState {
  EventCallback fn;
  static void dispatch(const ivr_event *e, void *user_data) noexcept {
    try {
      static_cast<EventState *>(user_data)->fn(Event::from_c(*e));
    } catch (...) {
      report_current_exception("event callback");
    }
  }
  static void free(void *user_data) noexcept { delete static_cast<EventState *>(user_data); }
};

struct VerbState {
  VerbHandler fn;
  std::string name;
  static void dispatch(ivr_verb_request *r, void *user_data) noexcept {
    auto *self = static_cast<VerbState *>(user_data);
    std::shared_ptr<VerbCore> core;
    try {
      core = std::make_shared<VerbCore>(r);
    } catch (...) {
      std::string message = report_current_exception("custom verb", self->name);
      (void)ivr_verb_request_complete(r, nullptr, message.c_str());
      return;
    }
    try {
      self->fn(VerbRequest(core));
    } catch (...) {
      std::string message = report_current_exception("custom verb", self->name);
      core->fail_if_pending(message.empty() ? "exception" : message.c_str());
    }
  }
  static void free(void *user_data) noexcept { delete static_cast<VerbState *>(user_data); }
};

struct DbState {
  DbQueryHandler query;
  DbCancelHandler cancel;
  std::string name;
  std::shared_ptr<DbRegistry> registry = std::make_shared<DbRegistry>();

  static void dispatch(ivr_db_query *q, void *user_data) noexcept {
    auto *self = static_cast<DbState *>(user_data);
    std::shared_ptr<DbCore> core;
    try {
      core = std::make_shared<DbCore>(q, self->registry);
      self->registry->add(core.get(), core);
    } catch (...) {
      std::string message = report_current_exception("db connector", self->name);
      if (core) {
        core->fail_if_pending(IVR_DB_QUERY, message.c_str());
      } else {
        (void)ivr_db_query_complete(q, IVR_DB_QUERY, message.c_str());
      }
      return;
    }
    try {
      self->query(DbQuery(core));
    } catch (...) {
      std::string message = report_current_exception("db connector", self->name);
      core->fail_if_pending(IVR_DB_QUERY, message.empty() ? "exception" : message.c_str());
    }
  }
  static void dispatch_cancel(uint64_t id, void *user_data) noexcept {
    auto *self = static_cast<DbState *>(user_data);
    try {
      if (self->cancel) self->cancel(id);
    } catch (...) {
      report_current_exception("db cancel callback", self->name);
    }
  }
  static void free(void *user_data) noexcept {
    auto *self = static_cast<DbState *>(user_data);
    self->registry->close();
    delete self;
  }
};

struct DeleteReport {
  void operator()(ivr_flow_report *r) const noexcept { ivr_flow_report_free(r); }
};
using ReportPtr = std::unique_ptr<ivr_flow_report, DeleteReport>;

inline std::vector<FlowProblem> problems_of(const ivr_flow_report *r) {
  std::vector<FlowProblem> out;
  size_t n = ivr_flow_report_count(r);
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const char *pointer = nullptr, *message = nullptr;
    FlowProblem p;
    if (ivr_flow_report_problem(r, i, &pointer, &p.line, &p.column, &message) != IVR_OK) break;
    p.pointer = str(pointer);
    p.message = str(message);
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace detail

/**
 * An engine (ivr_engine): answers SIP calls on one address, runs flows, owns their media.
 * Move-only; the destructor stops the engine if needed and frees it (ivr_engine_free),
 * together with every callback registered on it. Must not be destroyed, started or stopped
 * from inside one of its own callbacks.
 *
 * Thread-safety: as the C functions (docs/c-api.md). start(), stop() and the destructor
 * from one thread, never from a callback; set_event_callback() before start(); every
 * other method from any thread, also from inside callbacks.
 */
class Engine {
 public:
  /** Creates an engine (nothing bound yet). Throws Error (IVR_EINVAL naming the field). */
  explicit Engine(const EngineOptions &options = EngineOptions()) {
    ivr_engine_options o = IVR_ENGINE_OPTIONS_INIT;
    o.sip_address = options.sip_address.c_str();
    o.sip_port = options.sip_port;
    o.sip_transport = static_cast<ivr_sip_transport>(options.sip_transport);
    o.rtp_address = detail::opt(options.rtp_address);
    o.rtp_port_min = options.rtp_port_min;
    o.rtp_port_max = options.rtp_port_max;
    o.media_threads = options.media_threads;
    o.prompt_dir = detail::opt(options.prompt_dir);
    o.log_level = static_cast<ivr_log_level>(options.log_level);
    o.user_agent = detail::opt(options.user_agent);
    o.webhook_spool_dir = detail::opt(options.webhook_spool_dir);
    o.webhook_spool_max_bytes = options.webhook_spool_max_bytes;
    if (options.log) {
      // No free function for the log's user data in the C ABI: the engine object owns it
      // and frees it after ivr_engine_free.
      log_.reset(new detail::LogState{options.log});
      o.log_cb = &detail::LogState::dispatch;
      o.log_user_data = log_.get();
    }
    detail::check(ivr_engine_new(&h_, &o));
  }
  Engine(Engine &&o) noexcept : h_(std::exchange(o.h_, nullptr)), log_(std::move(o.log_)) {}
  Engine &operator=(Engine &&o) noexcept {
    if (this != &o) {
      reset();
      h_ = std::exchange(o.h_, nullptr);
      log_ = std::move(o.log_);
    }
    return *this;
  }
  Engine(const Engine &) = delete;
  Engine &operator=(const Engine &) = delete;
  ~Engine() { reset(); }

  /** The C handle, owned by this object. */
  ivr_engine *native() const noexcept { return h_; }
  /** False for a moved-from engine. */
  explicit operator bool() const noexcept { return h_ != nullptr; }

  /**
   * Sets the callback for every event (an empty one: none). Before start() only
   * (IVR_ESTATE after). The previous callback is freed.
   */
  void set_event_callback(EventCallback callback) {
    if (!callback) {
      detail::check(ivr_engine_set_event_callback(h_, nullptr, nullptr, nullptr));
      return;
    }
    auto state = std::make_unique<detail::EventState>(detail::EventState{std::move(callback)});
    detail::check(ivr_engine_set_event_callback(h_, &detail::EventState::dispatch, state.get(),
                                                &detail::EventState::free));
    state.release();  // the engine owns it now
  }

  /**
   * Binds SIP and starts the engine's threads; returns once SIP listens. Throws Error:
   * IVR_ESIP (bind failed), IVR_ESTATE (already started), IVR_EBUSY (webhook spool held).
   */
  void start() { detail::check(ivr_engine_start(h_)); }
  /** Ends every call (each gets call_ended), stops the threads. Blocks; idempotent. */
  void stop(const std::string &reason = {}) {
    detail::check(ivr_engine_stop(h_, detail::opt(reason)));
  }
  /** The SIP port bound (0 before start). */
  unsigned short sip_port() const noexcept { return ivr_engine_sip_port(h_); }
  /** Calls alive now. */
  int call_count() const noexcept { return ivr_engine_call_count(h_); }

  // ---- flows ----

  /** Validates a document (UTF-8 JSON) against this engine without loading it. Throws
   *  Error only for bad arguments (an empty document: IVR_EINVAL). */
  FlowReport flow_validate(std::string_view document) {
    ivr_flow_report *raw = nullptr;
    int rc = ivr_engine_flow_validate(h_, document.data(), document.size(), &raw);
    detail::ReportPtr report(raw);
    detail::check(rc);
    FlowReport out;
    out.problems = detail::problems_of(report.get());
    out.text = detail::str(ivr_flow_report_text(report.get()));
    out.flow_id = detail::str(ivr_flow_report_flow_id(report.get()));
    out.version = detail::str(ivr_flow_report_version(report.get()));
    return out;
  }
  /**
   * Validates and loads a document as a new version of its flow (activated when activate
   * is true, and always for a flow's first version). Throws ValidationError (IVR_EPARSE)
   * carrying every problem; Error IVR_ESTATE for a version loaded before.
   */
  LoadedFlow flow_load(std::string_view document, bool activate = true) {
    ivr_flow_report *raw = nullptr;
    int rc = ivr_engine_flow_load(h_, document.data(), document.size(), activate ? 1 : 0, &raw);
    detail::ReportPtr report(raw);
    if (rc == IVR_EPARSE) {
      std::string message = detail::str(ivr_error_last()->message);
      throw ValidationError(message, detail::problems_of(report.get()),
                            detail::str(ivr_flow_report_text(report.get())));
    }
    detail::check(rc);
    return LoadedFlow{detail::str(ivr_flow_report_flow_id(report.get())),
                      detail::str(ivr_flow_report_version(report.get()))};
  }
  /** Makes a loaded version the active one. IVR_ENOTFOUND for an unknown flow/version. */
  void flow_activate(const std::string &flow_id, const std::string &version) {
    detail::check(ivr_engine_flow_activate(h_, flow_id.c_str(), version.c_str()));
  }
  /** Maps calls to this called number (To user; "*" for every other) to a flow. */
  void flow_map(const std::string &called_user, const std::string &flow_id) {
    detail::check(ivr_engine_flow_map(h_, called_user.c_str(), flow_id.c_str()));
  }
  /** Removes an entry point. */
  void flow_unmap(const std::string &called_user) {
    detail::check(ivr_engine_flow_map(h_, called_user.c_str(), nullptr));
  }
  /** The flows and versions loaded, sorted by flow id, then load order. */
  std::vector<FlowInfo> flow_list() {
    ivr_flow_list *list = nullptr;
    detail::check(ivr_engine_flow_list(h_, &list));
    std::unique_ptr<ivr_flow_list, void (*)(ivr_flow_list *)> owned(list, &ivr_flow_list_free);
    std::vector<FlowInfo> out;
    size_t n = ivr_flow_list_count(list);
    out.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      const char *id = nullptr, *version = nullptr;
      int active = 0;
      unsigned nodes = 0;
      detail::check(ivr_flow_list_get(list, i, &id, &version, &active, &nodes));
      out.push_back(FlowInfo{detail::str(id), detail::str(version), active != 0, nodes});
    }
    return out;
  }

  /**
   * Registers a custom verb (letters, digits, '_', '.', '-'), or replaces the handler of
   * that name (the old one is freed). Flows using it validate only afterwards.
   * Throws Error IVR_EINVAL for a bad or built-in name or an empty handler.
   */
  void register_verb(const std::string &name, VerbHandler handler) {
    if (!handler) throw Error(IVR_EINVAL, "register_verb: \"" + name + "\": empty handler");
    auto state = std::make_unique<detail::VerbState>(detail::VerbState{std::move(handler), name});
    detail::check(ivr_engine_register_verb(h_, name.c_str(), &detail::VerbState::dispatch,
                                           state.get(), &detail::VerbState::free));
    state.release();  // the engine owns it now
  }

  // ---- HTTP credentials ----

  /** Replaces every auth profile (a JSON object of named profiles). All or nothing.
   *  Throws Error: IVR_EINVAL naming the field, IVR_EPARSE for text that is not JSON. */
  void set_auth_profiles(const std::string &json) {
    detail::check(ivr_engine_set_auth_profiles(h_, json.c_str()));
  }
  /** Sets a secret ("" removes it). The value is copied and never logged. */
  void set_secret(const std::string &name, const std::string &value) {
    detail::check(ivr_engine_set_secret(h_, name.c_str(), value.c_str()));
  }
  /** Removes a secret (the environment's IVR_SECRET_<NAME> applies again). */
  void remove_secret(const std::string &name) {
    detail::check(ivr_engine_set_secret(h_, name.c_str(), nullptr));
  }

  // ---- databases ----

  /** Adds (or replaces) a built-in connector. Throws Error: IVR_EINVAL naming the field
   *  ("db.crm.url: ..."), IVR_EUNSUPPORTED (scheme; after start), IVR_EGONE (stopped). */
  void add_db(const std::string &name, const DbOptions &options) {
    ivr_db_options o = IVR_DB_OPTIONS_INIT;
    o.url = options.url.c_str();
    o.password_secret = detail::opt(options.password_secret);
    o.pool_size = options.pool_size;
    o.connect_timeout_ms = options.connect_timeout_ms;
    o.max_waiting = options.max_waiting;
    o.read_only = options.read_only ? 1 : 0;
    detail::check(ivr_engine_add_db(h_, name.c_str(), &o));
  }
  /**
   * Registers (or replaces) a host connector called name (an identifier). query runs for
   * each query of a db step; cancel (may be empty) when the engine stops waiting for one.
   * Both are freed when the connector is replaced or removed or the engine is freed; the
   * queries then still unanswered are failed. Throws Error IVR_EINVAL (name, empty query).
   */
  void register_db_connector(const std::string &name, DbQueryHandler query,
                             DbCancelHandler cancel = DbCancelHandler()) {
    if (!query)
      throw Error(IVR_EINVAL, "register_db_connector: \"" + name + "\": empty query handler");
    auto state = std::make_unique<detail::DbState>();
    state->query = std::move(query);
    state->cancel = std::move(cancel);
    state->name = name;
    detail::check(ivr_engine_register_db_connector(
        h_, name.c_str(), &detail::DbState::dispatch,
        state->cancel ? &detail::DbState::dispatch_cancel : nullptr, state.get(),
        &detail::DbState::free));
    state.release();  // the engine owns it now
  }
  /** Removes a connector, built-in or the host's. Throws Error IVR_ENOTFOUND. */
  void remove_db(const std::string &name) { detail::check(ivr_engine_remove_db(h_, name.c_str())); }

  // ---- webhooks (on when EngineOptions::webhook_spool_dir is set) ----

  /** Adds or replaces a webhook. Throws Error: IVR_EINVAL naming the field, IVR_ESTATE
   *  (webhooks off), IVR_EGONE (stopped). */
  void set_webhook(const WebhookOptions &options) {
    std::vector<const char *> secrets;
    secrets.reserve(options.secrets.size());
    for (const auto &s : options.secrets) secrets.push_back(s.c_str());
    ivr_webhook_options o = IVR_WEBHOOK_OPTIONS_INIT;
    o.name = options.name.c_str();
    o.url = options.url.c_str();
    o.event_types = options.event_types.c_str();
    o.secrets = secrets.empty() ? nullptr : secrets.data();
    o.secret_count = secrets.size();
    o.timeout_ms = options.timeout_ms;
    o.max_attempts = options.max_attempts;
    o.backoff_base_ms = options.backoff_base_ms;
    o.backoff_max_ms = options.backoff_max_ms;
    o.max_concurrency = options.max_concurrency;
    o.ca_file = detail::opt(options.ca_file);
    o.enabled = options.enabled ? 1 : 0;
    detail::check(ivr_engine_set_webhook(h_, &o));
  }
  /** Removes a webhook; its queued events become dead letters. IVR_ENOTFOUND, IVR_ESTATE. */
  void remove_webhook(const std::string &name) {
    detail::check(ivr_engine_remove_webhook(h_, name.c_str()));
  }
  /** Delivery counters. Throws Error IVR_ESTATE (webhooks off or not started). */
  WebhookStats webhook_stats() {
    ivr_webhook_stats s = IVR_WEBHOOK_STATS_INIT;
    detail::check(ivr_engine_webhook_stats(h_, &s));
    WebhookStats out;
    out.published = s.published;
    out.publish_rejected = s.publish_rejected;
    out.delivered = s.delivered;
    out.failed_attempts = s.failed_attempts;
    out.dead_lettered = s.dead_lettered;
    out.requeued = s.requeued;
    out.spool_errors = s.spool_errors;
    out.in_flight = s.in_flight;
    out.queued = s.queued;
    out.dead = s.dead;
    out.healthy = s.healthy != 0;
    return out;
  }
  /** Every dead letter, oldest first. Throws Error IVR_ESTATE (off or not started). */
  std::vector<DeadLetter> webhook_dead_letters() {
    struct Collect {
      std::vector<DeadLetter> letters;
      std::exception_ptr error;
      static int add(const ivr_dead_letter *l, void *user_data) noexcept {
        auto *self = static_cast<Collect *>(user_data);
        try {
          self->letters.push_back(DeadLetter{detail::str(l->id), detail::str(l->subscription),
                                             detail::str(l->event_type), l->attempts,
                                             detail::str(l->last_error), l->created_ms});
          return 0;
        } catch (...) {
          self->error = std::current_exception();
          return 1;
        }
      }
    } collect;
    detail::check(ivr_engine_webhook_dead_letters(h_, &Collect::add, &collect));
    if (collect.error) std::rethrow_exception(collect.error);
    return std::move(collect.letters);
  }
  /** Makes a dead letter pending again. IVR_ENOTFOUND, IVR_ESTATE (not a dead letter). */
  void webhook_requeue(const std::string &id) {
    detail::check(ivr_engine_webhook_requeue(h_, id.c_str()));
  }
  /** Drops a dead letter for good. IVR_ENOTFOUND, IVR_ESTATE (a pending event). */
  void webhook_purge(const std::string &id) {
    detail::check(ivr_engine_webhook_purge(h_, id.c_str()));
  }

  // ---- routing (docs/routing.md) ----

  /**
   * Sets the routing configuration (JSON: targets, target_sets, schedules, plans,
   * connectors), replacing the previous one; live state of targets of the same name is
   * kept. Before start() it is kept and applied at start. Throws Error: IVR_EPARSE
   * (malformed JSON), IVR_EINVAL naming the field ("routing.targets.vici.capacity: ..."),
   * IVR_EGONE. On error nothing changes.
   */
  void set_routing(const std::string &json) {
    detail::check(ivr_engine_set_routing(h_, json.c_str()));
  }
  /**
   * Pushes a fresh availability sample for a target, as a polled connector would. Throws
   * Error: IVR_ENOTFOUND (no such target), IVR_ESTATE (routing not configured or engine not
   * started), IVR_EGONE.
   */
  void push_availability(const std::string &target, const Availability &sample) {
    ivr_availability a = IVR_AVAILABILITY_INIT;
    a.agents_available = sample.agents_available;
    a.agents_logged_in = sample.agents_logged_in;
    a.calls_waiting = sample.calls_waiting;
    a.longest_wait_s = sample.longest_wait_s;
    detail::check(ivr_engine_push_availability(h_, target.c_str(), &a));
  }
  /** The host's own poll for a target failed: its agent data is stale until the next
   *  sample. Same errors as push_availability. */
  void mark_availability_stale(const std::string &target) {
    detail::check(ivr_engine_mark_availability_stale(h_, target.c_str()));
  }
  /** Drains a target (no new calls; calls in progress go on), or ends the draining.
   *  Throws Error: IVR_ENOTFOUND, IVR_ESTATE, IVR_EGONE. */
  void set_target_draining(const std::string &target, bool draining = true) {
    detail::check(ivr_engine_set_target_draining(h_, target.c_str(), draining ? 1 : 0));
  }
  /** A target's live state. Throws Error: IVR_ENOTFOUND, IVR_ESTATE, IVR_EGONE. Waits for
   *  the engine thread: not from an event callback of another engine. */
  TargetState target_state(const std::string &target) {
    ivr_target_state s{};
    s.version = IVR_TARGET_STATE_VERSION;
    detail::check(ivr_engine_target_state(h_, target.c_str(), &s));
    TargetState out;
    out.health = static_cast<TargetHealth>(s.health);
    out.capacity = s.capacity;
    out.active = s.active;
    out.reserved = s.reserved;
    out.offered = s.offered;
    out.answered = s.answered;
    out.completed = s.completed;
    out.failed = s.failed;
    out.availability_fresh = s.availability_fresh != 0;
    out.idle_agents = s.idle_agents;
    return out;
  }
  /** The call queue's state. Throws Error: IVR_ESTATE (routing not configured or engine not
   *  started), IVR_EGONE. */
  QueueStats queue_stats() {
    ivr_queue_stats s{};
    s.version = IVR_QUEUE_STATS_VERSION;
    detail::check(ivr_engine_queue_stats(h_, &s));
    QueueStats out;
    out.waiting = s.waiting;
    out.offered = s.offered;
    out.oldest_wait_ms = s.oldest_wait_ms;
    out.service_interval_ms = s.service_interval_ms;
    out.enqueued = s.enqueued;
    out.served = s.served;
    out.abandoned = s.abandoned;
    out.expired = s.expired;
    return out;
  }

 private:
  void reset() noexcept {
    ivr_engine_free(std::exchange(h_, nullptr));
    log_.reset();  // after the engine: its threads log until they stop
  }

  ivr_engine *h_ = nullptr;
  std::unique_ptr<detail::LogState> log_;
};

}  // namespace ivr

#endif /* IVR_IVR_HPP */
