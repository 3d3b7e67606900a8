// ivr._ivr: the compiled half of the Python package, over ivr/ivr.hpp (so over the C ABI
// alone: it links against libivr.so and nothing internal). The Pythonic surface (keyword
// options, decorators, asyncio, return-value mapping) is in ivr/*.py; this module keeps to
// the rules that only C++ can keep:
//  - the GIL is released around every call into the library (any of them may wait for the
//    engine thread, which may itself be waiting for the GIL in a callback);
//  - callbacks run on engine threads and take the GIL; the Python objects they hold are
//    released with the GIL held, wherever the library destroys them (engine thread,
//    ivr_engine_free), and leaked rather than touched once the interpreter is finalizing;
//  - an engine is freed only when no other Python thread is inside one of its methods, and
//    never on its own engine thread (a garbage collection inside a callback hands the free
//    to a thread of its own).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "ivr/ivr.hpp"

namespace py = pybind11;

namespace {

constexpr ivr_say_options kSay = IVR_SAY_OPTIONS_INIT;
constexpr ivr_collect_options kCollect = IVR_COLLECT_OPTIONS_INIT;

// ---- the interpreter's state, seen from threads that are not Python's ----

bool python_alive() noexcept {
#if PY_VERSION_HEX >= 0x030D0000
  return Py_IsInitialized() && !Py_IsFinalizing();
#else
  return Py_IsInitialized() && !_Py_IsFinalizing();
#endif
}

// How deep this thread is in callbacks from an engine (events, logs, verbs, queries):
// start/stop/close must not run there (they wait for the engine thread itself).
thread_local int tl_callback_depth = 0;

struct CallbackScope {
  CallbackScope() noexcept { ++tl_callback_depth; }
  ~CallbackScope() { --tl_callback_depth; }
  CallbackScope(const CallbackScope &) = delete;
  CallbackScope &operator=(const CallbackScope &) = delete;
};

/**
 * A Python object owned by a C++ callback. The library may destroy the callback on the
 * engine thread or inside ivr_engine_free (GIL released there), so the reference is dropped
 * with the GIL taken; once the interpreter is finalizing it is leaked instead.
 */
class PyRef {
 public:
  explicit PyRef(py::object o) noexcept : obj_(std::move(o)) {}
  PyRef(const PyRef &) = delete;
  PyRef &operator=(const PyRef &) = delete;
  ~PyRef() {
    if (!obj_) return;
    if (!python_alive()) {
      obj_.release();  // the interpreter is going away: nothing may be touched
      return;
    }
    py::gil_scoped_acquire gil;
    obj_ = py::object();
  }
  const py::object &get() const noexcept { return obj_; }

 private:
  py::object obj_;
};
using PyRefPtr = std::shared_ptr<PyRef>;

PyRefPtr hold(py::object o) {
  return std::make_shared<PyRef>(std::move(o));
}

/** The message of the Python exception being handled, for an error exit. GIL held. */
std::string python_message(py::error_already_set &e) {
  try {
    std::string s = py::str(e.value());
    if (!s.empty()) return s;
    return py::str(e.type().attr("__name__"));
  } catch (...) {
    return "Python exception";
  }
}

// ---- errors: ivr::Error -> the classes of ivr/_errors.py ----

py::handle g_make_error;             // _errors._make_error(code, message)
py::handle g_make_validation_error;  // _errors._make_validation_error(message, problems, text)

py::list problem_tuples(const std::vector<ivr::FlowProblem> &problems) {
  py::list out;
  for (const auto &p : problems) out.append(py::make_tuple(p.pointer, p.line, p.column, p.message));
  return out;
}

void raise_python(py::object exc) {
  PyErr_SetObject(reinterpret_cast<PyObject *>(Py_TYPE(exc.ptr())), exc.ptr());
}

void translate(std::exception_ptr p) {
  try {
    if (p) std::rethrow_exception(p);
  } catch (const ivr::ValidationError &e) {
    raise_python(
        g_make_validation_error(std::string(e.what()), problem_tuples(e.problems()), e.text()));
  } catch (const ivr::Error &e) {
    raise_python(g_make_error(e.code(), std::string(e.what())));
  }
}

[[noreturn]] void throw_state(const std::string &message) {
  throw ivr::Error(IVR_ESTATE, message);
}

// ---- names of the enumerations, as the library spells them ----

const char *level_name(ivr::LogLevel l) {
  switch (l) {
    case ivr::LogLevel::error:
      return "error";
    case ivr::LogLevel::warn:
      return "warn";
    case ivr::LogLevel::info:
      return "info";
    case ivr::LogLevel::debug:
      return "debug";
    case ivr::LogLevel::trace:
      return "trace";
  }
  return "info";
}

// ---- verb requests and db queries, shared between Python and the wrapper's dispatcher ----

/** A custom verb request as Python sees it. Shared so that the dispatcher can still fail it
 *  when handing it to Python failed. */
struct PyVerbRequest {
  std::shared_ptr<ivr::VerbRequest> r;
};

/** A host db query as Python sees it. */
struct PyDbQuery {
  std::shared_ptr<ivr::DbQuery> q;
};

/** Fails a request unless answered already; an engine gone meanwhile is no error here. */
void fail_quietly(ivr::VerbRequest &r, const std::string &message) noexcept {
  try {
    if (!r.completed()) r.fail(message);
  } catch (...) {
  }
}
void fail_quietly(ivr::DbQuery &q, const std::string &message) noexcept {
  try {
    if (!q.completed()) q.complete(ivr::DbStatus::query, message);
  } catch (...) {
  }
}

ivr::DbStatus db_status(const std::string &name) {
  if (name == "ok") return ivr::DbStatus::ok;
  if (name == "timeout") return ivr::DbStatus::timeout;
  if (name == "connect") return ivr::DbStatus::connect;
  if (name == "query") return ivr::DbStatus::query;
  if (name == "busy") return ivr::DbStatus::busy;
  throw ivr::Error(IVR_EINVAL,
                   "status: \"" + name + "\" is not one of ok, timeout, connect, query, busy");
}

/** One Python value as a DbValue. GIL held. */
ivr::DbValue db_value(const py::handle &v) {
  if (v.is_none()) return std::monostate{};
  if (PyBool_Check(v.ptr())) return v.ptr() == Py_True;
  if (PyLong_Check(v.ptr())) {
    int overflow = 0;
    long long n = PyLong_AsLongLongAndOverflow(v.ptr(), &overflow);
    if (overflow == 0 && !(n == -1 && PyErr_Occurred())) return static_cast<int64_t>(n);
    PyErr_Clear();
    return std::string(py::str(v));  // past 64 bits: its digits, as text
  }
  if (PyFloat_Check(v.ptr())) return PyFloat_AsDouble(v.ptr());
  if (PyUnicode_Check(v.ptr())) return v.cast<std::string>();
  if (PyBytes_Check(v.ptr()) || PyByteArray_Check(v.ptr())) {
    py::object text = py::reinterpret_borrow<py::object>(v).attr("decode")("utf-8", "strict");
    return text.cast<std::string>();
  }
  return std::string(py::str(v));  // Decimal, datetime, ...: their text
}

// ---- the engine ----

/** What an EngineCore shares with the threads that may free its engine. */
struct EngineState {
  std::mutex mutex;
  std::condition_variable cv;
  std::unique_ptr<ivr::Engine> engine;
  int inflight = 0;      // Python threads inside a method, GIL released
  bool closing = false;  // no new method may start
  bool closed = false;
  std::shared_ptr<std::atomic<bool>> events_wanted = std::make_shared<std::atomic<bool>>(false);
};

/** Stops and frees the engine once no method is running. Never with the GIL held. */
void shutdown(EngineState &s, const std::string &reason) {
  std::unique_lock<std::mutex> lock(s.mutex);
  if (s.closing) {
    s.cv.wait(lock, [&] { return s.closed; });
    return;
  }
  // Stop first, as a method: call.ended handlers may still use the engine meanwhile.
  ++s.inflight;
  lock.unlock();
  try {
    s.engine->stop(reason);
  } catch (...) {
    // Freeing stops the engine as well; nothing better to do with a failed stop.
  }
  lock.lock();
  --s.inflight;
  s.closing = true;
  s.cv.wait(lock, [&] { return s.inflight == 0; });
  std::unique_ptr<ivr::Engine> engine = std::move(s.engine);
  lock.unlock();
  engine.reset();  // ivr_engine_free: the callbacks are released here (PyRef takes the GIL)
  lock.lock();
  s.closed = true;
  s.cv.notify_all();
}

class EngineCore {
 public:
  EngineCore(const std::string &sip_address, unsigned sip_port, int sip_transport,
             const std::string &rtp_address, unsigned rtp_port_min, unsigned rtp_port_max,
             unsigned media_threads, const std::string &prompt_dir, py::object log, int log_level,
             const std::string &user_agent, const std::string &webhook_spool_dir,
             unsigned long long webhook_spool_max_bytes, py::object events)
      : state_(std::make_shared<EngineState>()) {
    ivr::EngineOptions o;
    o.sip_address = sip_address;
    o.sip_port = static_cast<unsigned short>(sip_port);
    o.sip_transport = static_cast<ivr::SipTransport>(sip_transport);
    o.rtp_address = rtp_address;
    o.rtp_port_min = static_cast<unsigned short>(rtp_port_min);
    o.rtp_port_max = static_cast<unsigned short>(rtp_port_max);
    o.media_threads = media_threads;
    o.prompt_dir = prompt_dir;
    o.log_level = static_cast<ivr::LogLevel>(log_level);
    o.user_agent = user_agent;
    o.webhook_spool_dir = webhook_spool_dir;
    o.webhook_spool_max_bytes = webhook_spool_max_bytes;
    if (!log.is_none()) {
      // Any engine thread, concurrently, and the calling thread too.
      o.log = [ref = hold(std::move(log))](ivr::LogLevel level, const std::string &subsystem,
                                           const std::string &message) {
        if (!python_alive()) return;
        py::gil_scoped_acquire gil;
        CallbackScope scope;
        try {
          ref->get()(level_name(level), subsystem, message);
        } catch (py::error_already_set &e) {
          e.discard_as_unraisable("ivr: the log callback");
        }
      };
    }
    ivr::EventCallback on_event;
    if (!events.is_none()) {
      on_event = [ref = hold(std::move(events)),
                  wanted = state_->events_wanted](const ivr::Event &event) {
        // No handler: no GIL taken for the event at all.
        if (!wanted->load(std::memory_order_acquire) || !python_alive()) return;
        py::gil_scoped_acquire gil;
        CallbackScope scope;
        try {
          ref->get()(event);
        } catch (py::error_already_set &e) {
          e.discard_as_unraisable("ivr: the event dispatcher");
        }
      };
    }
    py::gil_scoped_release release;
    state_->engine = std::make_unique<ivr::Engine>(o);
    if (on_event) state_->engine->set_event_callback(std::move(on_event));
  }

  EngineCore(const EngineCore &) = delete;
  EngineCore &operator=(const EngineCore &) = delete;

  ~EngineCore() {
    // The last Python reference went: free the engine, unless close() already did.
    try {
      close(/*from_gc=*/true, {});
    } catch (...) {
    }
  }

  /**
   * Runs f(engine) with the GIL released, counted as in flight so that close() waits for
   * it. Raises StateError once the engine is closing.
   */
  template <class F>
  auto with_engine(const char *what, F &&f) {
    py::gil_scoped_release release;
    {
      std::lock_guard<std::mutex> lock(state_->mutex);
      if (state_->closing || !state_->engine)
        throw_state(std::string(what) + ": the engine is closed");
      ++state_->inflight;
    }
    struct Leave {
      EngineState *s;
      ~Leave() {
        std::lock_guard<std::mutex> lock(s->mutex);
        if (--s->inflight == 0) s->cv.notify_all();
      }
    } leave{state_.get()};
    return f(*state_->engine);
  }

  void not_in_callback(const char *what) const {
    if (tl_callback_depth > 0)
      throw_state(std::string(what) +
                  ": not allowed inside a callback of the engine (it runs on the engine "
                  "thread); call it from another thread");
  }

  void start() {
    not_in_callback("start()");
    with_engine("start()", [](ivr::Engine &e) { e.start(); });
  }
  void stop(const std::string &reason) {
    not_in_callback("stop()");
    with_engine("stop()", [&](ivr::Engine &e) { e.stop(reason); });
  }

  /**
   * Stops and frees the engine; idempotent. From Python (from_gc false) not inside a
   * callback. When the garbage collector runs this inside a callback (the engine thread),
   * a thread of its own frees the engine: the engine thread cannot free itself.
   */
  void close(bool from_gc, const std::string &reason) {
    {
      std::lock_guard<std::mutex> lock(state_->mutex);
      if (state_->closed || !state_->engine) return;
    }
    if (tl_callback_depth > 0) {
      if (!from_gc) not_in_callback("close()");
      std::thread([s = state_, reason] { shutdown(*s, reason); }).detach();
      return;
    }
    if (PyGILState_Check()) {
      py::gil_scoped_release release;
      shutdown(*state_, reason);
    } else {
      shutdown(*state_, reason);
    }
  }

  bool closed() const {
    std::lock_guard<std::mutex> lock(state_->mutex);
    return state_->closing || state_->closed;
  }

  void set_events_wanted(bool wanted) { state_->events_wanted->store(wanted); }

  unsigned short sip_port() {
    return with_engine("sip_port", [](ivr::Engine &e) { return e.sip_port(); });
  }
  int call_count() {
    return with_engine("call_count", [](ivr::Engine &e) { return e.call_count(); });
  }

  // ---- flows ----

  py::tuple flow_validate(const std::string &document) {
    ivr::FlowReport r =
        with_engine("validate_flow()", [&](ivr::Engine &e) { return e.flow_validate(document); });
    return py::make_tuple(problem_tuples(r.problems), r.text, r.flow_id, r.version);
  }
  py::tuple flow_load(const std::string &document, bool activate) {
    ivr::LoadedFlow f =
        with_engine("load_flow()", [&](ivr::Engine &e) { return e.flow_load(document, activate); });
    return py::make_tuple(f.flow_id, f.version);
  }
  void flow_activate(const std::string &flow_id, const std::string &version) {
    with_engine("activate_flow()", [&](ivr::Engine &e) { e.flow_activate(flow_id, version); });
  }
  void flow_map(const std::string &called, const std::optional<std::string> &flow_id) {
    with_engine("map_flow()", [&](ivr::Engine &e) {
      if (flow_id) {
        e.flow_map(called, *flow_id);
      } else {
        e.flow_unmap(called);
      }
    });
  }
  py::list flow_list() {
    std::vector<ivr::FlowInfo> flows =
        with_engine("flows()", [](ivr::Engine &e) { return e.flow_list(); });
    py::list out;
    for (const auto &f : flows) out.append(py::make_tuple(f.flow_id, f.version, f.active, f.nodes));
    return out;
  }

  /** dispatch(request) runs on the engine thread with the GIL; it hands the request on. */
  void register_verb(const std::string &name, py::object dispatch) {
    ivr::VerbHandler handler = [ref = hold(std::move(dispatch))](ivr::VerbRequest request) {
      auto shared = std::make_shared<ivr::VerbRequest>(std::move(request));
      if (!python_alive()) {
        fail_quietly(*shared, "Python is shutting down");
        return;
      }
      std::string failure;
      {
        py::gil_scoped_acquire gil;
        CallbackScope scope;
        try {
          ref->get()(PyVerbRequest{shared});
        } catch (py::error_already_set &e) {
          failure = python_message(e);
        }
      }
      if (!failure.empty()) fail_quietly(*shared, failure);
    };
    with_engine("register_verb()",
                [&](ivr::Engine &e) { e.register_verb(name, std::move(handler)); });
  }

  // ---- HTTP credentials ----

  void set_auth_profiles(const std::string &json) {
    with_engine("set_auth_profiles()", [&](ivr::Engine &e) { e.set_auth_profiles(json); });
  }
  void set_secret(const std::string &name, const std::optional<std::string> &value) {
    with_engine("set_secret()", [&](ivr::Engine &e) {
      if (value && !value->empty()) {
        e.set_secret(name, *value);
      } else {
        e.remove_secret(name);
      }
    });
  }

  // ---- databases ----

  void add_db(const std::string &name, const std::string &url, const std::string &password_secret,
              unsigned pool_size, unsigned connect_timeout_ms, unsigned max_waiting,
              bool read_only) {
    ivr::DbOptions o;
    o.url = url;
    o.password_secret = password_secret;
    o.pool_size = pool_size;
    o.connect_timeout_ms = connect_timeout_ms;
    o.max_waiting = max_waiting;
    o.read_only = read_only;
    with_engine("add_db()", [&](ivr::Engine &e) { e.add_db(name, o); });
  }
  void register_db_connector(const std::string &name, py::object dispatch, py::object cancel) {
    ivr::DbQueryHandler on_query = [ref = hold(std::move(dispatch)), name](ivr::DbQuery query) {
      auto shared = std::make_shared<ivr::DbQuery>(std::move(query));
      if (!python_alive()) {
        fail_quietly(*shared, name + ": Python is shutting down");
        return;
      }
      std::string failure;
      {
        py::gil_scoped_acquire gil;
        CallbackScope scope;
        try {
          ref->get()(PyDbQuery{shared});
        } catch (py::error_already_set &e) {
          failure = python_message(e);
        }
      }
      if (!failure.empty()) fail_quietly(*shared, failure);
    };
    ivr::DbCancelHandler on_cancel;
    if (!cancel.is_none()) {
      on_cancel = [ref = hold(std::move(cancel))](uint64_t id) {
        if (!python_alive()) return;
        py::gil_scoped_acquire gil;
        CallbackScope scope;
        try {
          ref->get()(id);
        } catch (py::error_already_set &e) {
          e.discard_as_unraisable("ivr: a db connector's cancel");
        }
      };
    }
    with_engine("register_db_connector()", [&](ivr::Engine &e) {
      e.register_db_connector(name, std::move(on_query), std::move(on_cancel));
    });
  }
  void remove_db(const std::string &name) {
    with_engine("remove_db()", [&](ivr::Engine &e) { e.remove_db(name); });
  }

  // ---- webhooks ----

  void set_webhook(const std::string &name, const std::string &url, const std::string &event_types,
                   const std::vector<std::string> &secrets, unsigned timeout_ms,
                   unsigned max_attempts, unsigned backoff_base_ms, unsigned backoff_max_ms,
                   unsigned max_concurrency, const std::string &ca_file, bool enabled) {
    ivr::WebhookOptions o;
    o.name = name;
    o.url = url;
    o.event_types = event_types;
    o.secrets = secrets;
    o.timeout_ms = timeout_ms;
    o.max_attempts = max_attempts;
    o.backoff_base_ms = backoff_base_ms;
    o.backoff_max_ms = backoff_max_ms;
    o.max_concurrency = max_concurrency;
    o.ca_file = ca_file;
    o.enabled = enabled;
    with_engine("set_webhook()", [&](ivr::Engine &e) { e.set_webhook(o); });
  }
  void remove_webhook(const std::string &name) {
    with_engine("remove_webhook()", [&](ivr::Engine &e) { e.remove_webhook(name); });
  }
  py::dict webhook_stats() {
    ivr::WebhookStats s =
        with_engine("webhook_stats()", [](ivr::Engine &e) { return e.webhook_stats(); });
    py::dict d;
    d["published"] = s.published;
    d["publish_rejected"] = s.publish_rejected;
    d["delivered"] = s.delivered;
    d["failed_attempts"] = s.failed_attempts;
    d["dead_lettered"] = s.dead_lettered;
    d["requeued"] = s.requeued;
    d["spool_errors"] = s.spool_errors;
    d["in_flight"] = s.in_flight;
    d["queued"] = s.queued;
    d["dead"] = s.dead;
    d["healthy"] = s.healthy;
    return d;
  }
  py::list webhook_dead_letters() {
    std::vector<ivr::DeadLetter> letters = with_engine(
        "webhook_dead_letters()", [](ivr::Engine &e) { return e.webhook_dead_letters(); });
    py::list out;
    for (const auto &l : letters)
      out.append(py::make_tuple(l.id, l.subscription, l.event_type, l.attempts, l.last_error,
                                l.created_ms));
    return out;
  }
  void webhook_requeue(const std::string &id) {
    with_engine("webhook_requeue()", [&](ivr::Engine &e) { e.webhook_requeue(id); });
  }
  void webhook_purge(const std::string &id) {
    with_engine("webhook_purge()", [&](ivr::Engine &e) { e.webhook_purge(id); });
  }

  // ---- routing ----

  void set_routing(const std::string &json) {
    with_engine("set_routing()", [&](ivr::Engine &e) { e.set_routing(json); });
  }
  void push_availability(const std::string &target, unsigned agents_available,
                         unsigned agents_logged_in, unsigned calls_waiting,
                         unsigned longest_wait_s) {
    ivr::Availability a;
    a.agents_available = agents_available;
    a.agents_logged_in = agents_logged_in;
    a.calls_waiting = calls_waiting;
    a.longest_wait_s = longest_wait_s;
    with_engine("push_availability()", [&](ivr::Engine &e) { e.push_availability(target, a); });
  }
  void mark_availability_stale(const std::string &target) {
    with_engine("mark_availability_stale()",
                [&](ivr::Engine &e) { e.mark_availability_stale(target); });
  }
  void set_target_draining(const std::string &target, bool draining) {
    with_engine("set_target_draining()",
                [&](ivr::Engine &e) { e.set_target_draining(target, draining); });
  }
  py::dict target_state(const std::string &target) {
    ivr::TargetState s =
        with_engine("target_state()", [&](ivr::Engine &e) { return e.target_state(target); });
    py::dict d;
    d["health"] = ivr::name(s.health);
    d["capacity"] = s.capacity;
    d["active"] = s.active;
    d["reserved"] = s.reserved;
    d["offered"] = s.offered;
    d["answered"] = s.answered;
    d["completed"] = s.completed;
    d["failed"] = s.failed;
    d["availability_fresh"] = s.availability_fresh;
    d["idle_agents"] = s.idle_agents;
    return d;
  }
  py::dict queue_stats() {
    ivr::QueueStats s =
        with_engine("queue_stats()", [](ivr::Engine &e) { return e.queue_stats(); });
    py::dict d;
    d["waiting"] = s.waiting;
    d["offered"] = s.offered;
    d["oldest_wait_ms"] = s.oldest_wait_ms;
    d["service_interval_ms"] = s.service_interval_ms < 0
                                   ? py::object(py::none())
                                   : py::object(py::int_(s.service_interval_ms));
    d["enqueued"] = s.enqueued;
    d["served"] = s.served;
    d["abandoned"] = s.abandoned;
    d["expired"] = s.expired;
    return d;
  }

 private:
  std::shared_ptr<EngineState> state_;
};

// ---- Python views of the value types ----

bool is_routing_event(ivr::EventType t) {
  return t == ivr::EventType::route_decided || t == ivr::EventType::route_attempt ||
         t == ivr::EventType::call_queued || t == ivr::EventType::call_delivered;
}

/** A routing event's string field, None for the other types. */
py::object route_str(const ivr::Event &e, const std::string &value) {
  if (!is_routing_event(e.type)) return py::none();
  return py::str(value);
}

py::object optional_str(const std::optional<std::string> &s) {
  if (!s) return py::none();
  return py::str(*s);
}

}  // namespace

PYBIND11_MODULE(_ivr, m) {
  m.doc() =
      "The compiled core of the ivr package, over the libivr C ABI. Use the ivr package; "
      "this module's names may change.";

  py::module_ errors = py::module_::import("ivr._errors");
  g_make_error = py::object(errors.attr("_make_error")).release();
  g_make_validation_error = py::object(errors.attr("_make_validation_error")).release();
  py::register_exception_translator(&translate);

  m.def("version", &ivr::version, "The libivr version (\"0.1.0\").");
  m.def(
      "_in_callback", [] { return tl_callback_depth > 0; },
      "True on a thread running an engine callback right now.");

  {
    constexpr ivr_engine_options e = IVR_ENGINE_OPTIONS_INIT;
    constexpr ivr_db_options d = IVR_DB_OPTIONS_INIT;
    constexpr ivr_webhook_options w = IVR_WEBHOOK_OPTIONS_INIT;
    constexpr ivr_say_options s = IVR_SAY_OPTIONS_INIT;
    constexpr ivr_collect_options c = IVR_COLLECT_OPTIONS_INIT;
    py::dict defaults;
    defaults["sip_address"] = e.sip_address;
    defaults["sip_port"] = e.sip_port;
    defaults["rtp_port_min"] = e.rtp_port_min;
    defaults["rtp_port_max"] = e.rtp_port_max;
    defaults["media_threads"] = e.media_threads;
    defaults["prompt_dir"] = e.prompt_dir;
    defaults["db_pool_size"] = d.pool_size;
    defaults["db_connect_timeout_ms"] = d.connect_timeout_ms;
    defaults["db_max_waiting"] = d.max_waiting;
    defaults["webhook_timeout_ms"] = w.timeout_ms;
    defaults["webhook_max_attempts"] = w.max_attempts;
    defaults["webhook_backoff_base_ms"] = w.backoff_base_ms;
    defaults["webhook_backoff_max_ms"] = w.backoff_max_ms;
    defaults["webhook_max_concurrency"] = w.max_concurrency;
    defaults["say_voice"] = s.voice;
    defaults["say_rate_wpm"] = s.rate_wpm;
    defaults["collect_max_digits"] = c.max_digits;
    defaults["collect_terminators"] = c.terminators;
    defaults["collect_first_digit_timeout_ms"] = c.first_digit_timeout_ms;
    defaults["collect_inter_digit_timeout_ms"] = c.inter_digit_timeout_ms;
    defaults["collect_barge_in"] = c.barge_in != 0;
    m.attr("DEFAULTS") = defaults;
  }

  // ---- calls ----
  py::class_<ivr::Call>(m, "Call",
                        "A call (a reference of its own: readable after the call ended; actions "
                        "then raise GoneError). Every method may be called from any thread.")
      .def_property_readonly("id", &ivr::Call::id, "The SIP Call-ID.")
      .def_property_readonly("from_header", &ivr::Call::from, "The From header as received.")
      .def_property_readonly("to_header", &ivr::Call::to, "The To header as received.")
      .def_property_readonly("from_user", &ivr::Call::from_user,
                             "The user part of the From URI (the caller's number), or \"\".")
      .def_property_readonly("to_user", &ivr::Call::to_user,
                             "The user part of the To URI (the number called), or \"\".")
      .def(
          "header",
          [](const ivr::Call &c, const std::string &name) { return optional_str(c.header(name)); },
          py::arg("name"), "The first INVITE header of this name (any case), or None.")
      .def_property_readonly(
          "codec", [](const ivr::Call &c) { return optional_str(c.codec()); },
          "The negotiated codec (\"PCMU\", \"PCMA\"), or None before negotiation.")
      .def_property_readonly(
          "remote_media",
          [](const ivr::Call &c) -> py::object {
            auto m = c.remote_media();
            if (!m) return py::none();
            return py::make_tuple(m->ip, m->port);
          },
          "Where the call's RTP goes now, (ip, port), or None before SDP.")
      .def("ring", &ivr::Call::ring, py::call_guard<py::gil_scoped_release>(), "180 Ringing.")
      .def("answer", &ivr::Call::answer, py::call_guard<py::gil_scoped_release>(),
           "200 OK; the event call.answered follows with the ACK.")
      .def("reject", &ivr::Call::reject, py::arg("sip_status"), py::arg("reason") = "",
           py::call_guard<py::gil_scoped_release>(),
           "A final 400-699 response with a Reason header (\"\" for none).")
      .def("hangup", &ivr::Call::hangup, py::arg("reason") = "",
           py::call_guard<py::gil_scoped_release>(), "BYE once answered, 480 before.")
      .def("play", &ivr::Call::play, py::arg("prompt"), py::call_guard<py::gil_scoped_release>(),
           "Plays a prompt file (relative to prompt_dir); prompt.finished follows.")
      .def(
          "say",
          [](ivr::Call &c, const std::string &text, const std::string &voice, unsigned rate_wpm) {
            ivr::SayOptions o;
            o.voice = voice;
            o.rate_wpm = rate_wpm;
            c.say(text, o);
          },
          py::arg("text"), py::kw_only(), py::arg("voice") = std::string(kSay.voice),
          py::arg("rate_wpm") = kSay.rate_wpm, py::call_guard<py::gil_scoped_release>(),
          "Speaks text with espeak-ng (voice, rate_wpm 80..450); prompt.finished follows.")
      .def("stop_playback", &ivr::Call::stop_playback, py::call_guard<py::gil_scoped_release>(),
           "Stops the prompt playing (prompt.finished, stopped).")
      .def(
          "collect",
          [](ivr::Call &c, unsigned max_digits, const std::string &terminators,
             unsigned first_digit_timeout_ms, unsigned inter_digit_timeout_ms, bool barge_in) {
            ivr::CollectOptions o;
            o.max_digits = max_digits;
            o.terminators = terminators;
            o.first_digit_timeout_ms = first_digit_timeout_ms;
            o.inter_digit_timeout_ms = inter_digit_timeout_ms;
            o.barge_in = barge_in;
            c.collect(o);
          },
          py::kw_only(), py::arg("max_digits") = kCollect.max_digits,
          py::arg("terminators") = std::string(kCollect.terminators),
          py::arg("first_digit_timeout_ms") = kCollect.first_digit_timeout_ms,
          py::arg("inter_digit_timeout_ms") = kCollect.inter_digit_timeout_ms,
          py::arg("barge_in") = kCollect.barge_in != 0, py::call_guard<py::gil_scoped_release>(),
          "Collects digits; collect.done follows.")
      .def("set_inband_dtmf", &ivr::Call::set_inband_dtmf, py::arg("enabled"),
           py::call_guard<py::gil_scoped_release>(),
           "Turns inband (audio tone) DTMF detection on or off.")
      .def_property_readonly(
          "queue_position",
          [](const ivr::Call &c) {
            py::gil_scoped_release release;  // may wait for the engine thread
            return c.queue_position();
          },
          "The call's 1-based position in the routing queue, or 0 when it is not waiting.")
      .def("__eq__",
           [](const ivr::Call &a, const py::object &b) {
             return py::isinstance<ivr::Call>(b) && a == b.cast<const ivr::Call &>();
           })
      .def("__hash__", [](const ivr::Call &c) { return std::hash<const void *>()(c.native()); })
      .def("__repr__", [](const ivr::Call &c) {
        return "<ivr.Call " + c.id() + " from " + c.from_user() + " to " + c.to_user() + ">";
      });

  // ---- events ----
  py::class_<ivr::Event>(m, "Event",
                         "One engine event, copied (safe to keep). Fields that do not apply to "
                         "the event's type are None (or \"\" for the flow fields).")
      .def_property_readonly(
          "type", [](const ivr::Event &e) { return std::string(e.type_name()); },
          "\"call.started\", \"call.answered\", \"dtmf\", \"prompt.finished\", "
          "\"collect.done\", \"media.updated\", \"flow.step\", \"route.decided\", "
          "\"route.attempt\", \"call.queued\", \"call.delivered\" or \"call.ended\".")
      .def_property_readonly(
          "call", [](const ivr::Event &e) { return e.call; }, "The call (an ivr.Call).")
      .def_property_readonly(
          "call_id", [](const ivr::Event &e) { return e.call.id(); }, "The call's SIP Call-ID.")
      .def_property_readonly(
          "digit",
          [](const ivr::Event &e) -> py::object {
            if (e.type != ivr::EventType::dtmf) return py::none();
            return py::str(std::string(1, e.digit));
          },
          "dtmf: the digit.")
      .def_property_readonly(
          "duration_ms",
          [](const ivr::Event &e) -> py::object {
            if (e.type != ivr::EventType::dtmf) return py::none();
            return py::int_(e.duration_ms);
          },
          "dtmf: how long the key was pressed.")
      .def_property_readonly(
          "dtmf_source",
          [](const ivr::Event &e) -> py::object {
            if (e.type != ivr::EventType::dtmf) return py::none();
            return py::str(ivr::name(e.dtmf_source));
          },
          "dtmf: \"rfc4733\", \"info\" or \"inband\".")
      .def_property_readonly(
          "prompt",
          [](const ivr::Event &e) -> py::object {
            if (e.type != ivr::EventType::prompt_finished) return py::none();
            return py::str(e.prompt);
          },
          "prompt.finished: the file, or \"say:\" and the text.")
      .def_property_readonly(
          "prompt_end",
          [](const ivr::Event &e) -> py::object {
            if (e.type != ivr::EventType::prompt_finished) return py::none();
            return py::str(ivr::name(e.prompt_end));
          },
          "prompt.finished: \"completed\", \"stopped\", \"barged_in\" or \"failed\".")
      .def_property_readonly(
          "digits",
          [](const ivr::Event &e) -> py::object {
            if (e.type != ivr::EventType::collect_done) return py::none();
            return py::str(e.digits);
          },
          "collect.done: the digits collected (terminator excluded).")
      .def_property_readonly(
          "collect_end",
          [](const ivr::Event &e) -> py::object {
            if (e.type != ivr::EventType::collect_done) return py::none();
            return py::str(ivr::name(e.collect_end));
          },
          "collect.done: \"max_digits\", \"terminator\", \"first_timeout\", ...")
      .def_property_readonly(
          "digits_source",
          [](const ivr::Event &e) -> py::object {
            if (e.type != ivr::EventType::collect_done) return py::none();
            return py::str(ivr::name(e.digits_source));
          },
          "collect.done: the source of the first digit.")
      .def_property_readonly(
          "end_reason",
          [](const ivr::Event &e) -> py::object {
            if (e.type != ivr::EventType::call_ended) return py::none();
            return py::str(ivr::name(e.end_reason));
          },
          "call.ended: \"remote_hangup\", \"local_hangup\", \"engine_stop\", ...")
      .def_property_readonly(
          "sip_code",
          [](const ivr::Event &e) -> py::object {
            if (e.type != ivr::EventType::call_ended && e.type != ivr::EventType::route_attempt &&
                e.type != ivr::EventType::call_delivered)
              return py::none();
            return py::int_(e.sip_code);
          },
          "call.ended: the final SIP status involved; route.attempt: the dialing system's "
          "refusal (0: no response); call.delivered: its answer.")
      .def_readonly("reason", &ivr::Event::reason,
                    "call.ended: why (a flow's hangup reason); prompt.finished: why it failed.")
      .def_property_readonly(
          "on_hold",
          [](const ivr::Event &e) -> py::object {
            if (e.type != ivr::EventType::media_updated) return py::none();
            return py::bool_(e.on_hold);
          },
          "media.updated: whether the caller put the call on hold.")
      .def_readonly("flow_id", &ivr::Event::flow_id, "The flow the call runs, or \"\".")
      .def_readonly("flow_version", &ivr::Event::flow_version, "Its pinned version, or \"\".")
      .def_readonly("flow_node", &ivr::Event::flow_node, "The node the call is in, or \"\".")
      .def_readonly("flow_verb", &ivr::Event::flow_verb, "flow.step: the node's verb.")
      .def_readonly("flow_detail", &ivr::Event::flow_detail, "flow.step: what happened.")
      .def_readonly("flow_path", &ivr::Event::flow_path,
                    "call.ended: every node entered, joined by \" > \".")
      .def_readonly("flow_end", &ivr::Event::flow_end,
                    "call.ended: \"completed\", \"hangup\", \"caller_hangup\", \"error\", ...")
      .def_readonly("flow_error", &ivr::Event::flow_error,
                    "call.ended: why the flow failed, or \"\".")
      .def_property_readonly(
          "route_plan", [](const ivr::Event &e) { return route_str(e, e.route_plan); },
          "Routing events: the plan the route step named.")
      .def_property_readonly(
          "route_target", [](const ivr::Event &e) { return route_str(e, e.route_target); },
          "Routing events: the target dialled (\"\" for route.decided).")
      .def_property_readonly(
          "route_uri", [](const ivr::Event &e) { return route_str(e, e.route_uri); },
          "Routing events: the URI dialled.")
      .def_property_readonly(
          "route_detail", [](const ivr::Event &e) { return route_str(e, e.route_detail); },
          "route.decided: the candidates in order and the targets skipped, with why; "
          "route.attempt: what happened (\"busy (486 Busy Here)\").")
      .def_property_readonly(
          "route_attempt",
          [](const ivr::Event &e) -> py::object {
            if (e.type != ivr::EventType::route_attempt && e.type != ivr::EventType::call_delivered)
              return py::none();
            return py::int_(e.route_attempt);
          },
          "route.attempt, call.delivered: the 1-based number of the INVITE.")
      .def_property_readonly(
          "queue_position",
          [](const ivr::Event &e) -> py::object {
            if (e.type != ivr::EventType::call_queued) return py::none();
            return py::int_(e.queue_position);
          },
          "call.queued: the call's 1-based position in the queue.")
      .def_property_readonly(
          "queue_priority",
          [](const ivr::Event &e) -> py::object {
            if (e.type != ivr::EventType::call_queued) return py::none();
            return py::int_(e.queue_priority);
          },
          "call.queued: the call's priority, 0-999, lower first.")
      .def("__repr__", [](const ivr::Event &e) {
        std::string s = std::string("<ivr.Event ") + e.type_name() + " " + e.call.id();
        if (!e.flow_node.empty()) s += " node=" + e.flow_node;
        if (e.type == ivr::EventType::call_ended) s += " reason=\"" + e.reason + "\"";
        if (is_routing_event(e.type) && !e.route_target.empty()) s += " target=" + e.route_target;
        return s + ">";
      });

  // ---- verb requests ----
  py::class_<PyVerbRequest>(m, "VerbRequest",
                            "One run of a custom verb by a call's flow. Completed by the "
                            "binding from the handler's result; every method is thread-safe.")
      .def_property_readonly(
          "verb", [](const PyVerbRequest &r) { return r.r->verb(); }, "The verb's name.")
      .def_property_readonly(
          "node", [](const PyVerbRequest &r) { return r.r->node(); }, "The flow node running it.")
      .def_property_readonly(
          "call", [](const PyVerbRequest &r) { return r.r->call(); }, "The call (an ivr.Call).")
      .def_property_readonly(
          "args", [](const PyVerbRequest &r) { return r.r->args(); },
          "The node's rendered arguments (a new dict of str).")
      .def(
          "arg",
          [](const PyVerbRequest &r, const std::string &name, py::object default_) -> py::object {
            auto v = r.r->arg(name);
            if (!v) return default_;
            return py::str(*v);
          },
          py::arg("name"), py::arg("default") = py::none(),
          "The rendered argument of this name, or default.")
      .def(
          "set",
          [](PyVerbRequest &r, const std::string &name, const std::string &value) {
            r.r->set(name, value);
          },
          py::arg("name"), py::arg("value"), py::call_guard<py::gil_scoped_release>(),
          "Sets a result the flow reads as steps.<node>.<name>.")
      .def(
          "complete",
          [](PyVerbRequest &r, const std::optional<std::string> &exit,
             const std::optional<std::string> &error) {
            r.r->complete(exit.value_or(""), error.value_or(""));
          },
          py::arg("exit") = py::none(), py::arg("error") = py::none(),
          py::call_guard<py::gil_scoped_release>(),
          "Finishes the request: exit None/\"next\" or one of the node's exits; an error takes "
          "on_error.")
      .def(
          "fail", [](PyVerbRequest &r, const std::string &error) { r.r->fail(error); },
          py::arg("error"), py::call_guard<py::gil_scoped_release>(),
          "Finishes the request with an error: the node's on_error.")
      .def_property_readonly(
          "completed", [](const PyVerbRequest &r) { return r.r->completed(); },
          "True once completed.")
      .def("__repr__", [](const PyVerbRequest &r) {
        return "<ivr.VerbRequest " + r.r->verb() + " node " + r.r->node() + ">";
      });

  // ---- db queries ----
  py::class_<PyDbQuery>(m, "DbQuery",
                        "One query of a db step handed to a host connector. Answered by the "
                        "binding from the connector's result; every method is thread-safe.")
      .def_property_readonly(
          "id", [](const PyDbQuery &q) { return q.q->id(); }, "The query's id.")
      .def_property_readonly(
          "connector", [](const PyDbQuery &q) { return q.q->connector(); }, "The connector's name.")
      .def_property_readonly(
          "statement", [](const PyDbQuery &q) { return q.q->statement(); },
          "The statement, literal from the flow.")
      .def_property_readonly(
          "params",
          [](const PyDbQuery &q) {
            py::list out;
            for (const auto &p : q.q->params()) out.append(optional_str(p));
            return out;
          },
          "The bound parameters, rendered (str, or None for SQL NULL).")
      .def_property_readonly(
          "timeout_ms", [](const PyDbQuery &q) { return q.q->timeout_ms(); },
          "How long the step waits.")
      .def_property_readonly(
          "max_rows", [](const PyDbQuery &q) { return q.q->max_rows(); },
          "Rows the flow keeps at most.")
      .def_property_readonly(
          "completed", [](const PyDbQuery &q) { return q.q->completed(); }, "True once answered.")
      .def(
          "answer",
          [](PyDbQuery &q, const std::vector<std::string> &columns, const py::iterable &rows) {
            std::vector<std::vector<ivr::DbValue>> converted;
            for (const py::handle &row : rows) {
              std::vector<ivr::DbValue> values;
              for (const py::handle &v : py::reinterpret_borrow<py::iterable>(row))
                values.push_back(db_value(v));
              converted.push_back(std::move(values));
            }
            py::gil_scoped_release release;
            q.q->set_columns(columns);
            for (const auto &row : converted) q.q->add_row(row);
            q.q->complete(ivr::DbStatus::ok);
          },
          py::arg("columns"), py::arg("rows"),
          "Answers with these columns and rows (None, bool, int, float, str, bytes; other values "
          "as their str()).")
      .def(
          "fail",
          [](PyDbQuery &q, const std::string &status, const std::string &message) {
            ivr::DbStatus s = db_status(status);
            py::gil_scoped_release release;
            q.q->complete(s, message);
          },
          py::arg("status"), py::arg("message"),
          "Fails the query: status \"timeout\", \"connect\", \"query\" or \"busy\".")
      .def("__repr__", [](const PyDbQuery &q) {
        return "<ivr.DbQuery " + std::to_string(q.q->id()) + " on " + q.q->connector() + ">";
      });

  // ---- the engine ----
  py::class_<EngineCore>(m, "Engine",
                         "The engine handle. Use ivr.Engine, which validates the options and "
                         "adds decorators, asyncio and context management.")
      .def(py::init<const std::string &, unsigned, int, const std::string &, unsigned, unsigned,
                    unsigned, const std::string &, py::object, int, const std::string &,
                    const std::string &, unsigned long long, py::object>(),
           py::kw_only(), py::arg("sip_address"), py::arg("sip_port"), py::arg("sip_transport"),
           py::arg("rtp_address"), py::arg("rtp_port_min"), py::arg("rtp_port_max"),
           py::arg("media_threads"), py::arg("prompt_dir"), py::arg("log"), py::arg("log_level"),
           py::arg("user_agent"), py::arg("webhook_spool_dir"), py::arg("webhook_spool_max_bytes"),
           py::arg("events"))
      .def("start", &EngineCore::start)
      .def("stop", &EngineCore::stop, py::arg("reason") = "")
      .def("close", &EngineCore::close, py::arg("from_gc") = false, py::arg("reason") = "")
      .def_property_readonly("closed", &EngineCore::closed)
      .def("set_events_wanted", &EngineCore::set_events_wanted, py::arg("wanted"))
      .def_property_readonly("sip_port", &EngineCore::sip_port)
      .def_property_readonly("call_count", &EngineCore::call_count)
      .def("flow_validate", &EngineCore::flow_validate, py::arg("document"))
      .def("flow_load", &EngineCore::flow_load, py::arg("document"), py::arg("activate"))
      .def("flow_activate", &EngineCore::flow_activate, py::arg("flow_id"), py::arg("version"))
      .def("flow_map", &EngineCore::flow_map, py::arg("called"), py::arg("flow_id"))
      .def("flow_list", &EngineCore::flow_list)
      .def("register_verb", &EngineCore::register_verb, py::arg("name"), py::arg("dispatch"))
      .def("set_auth_profiles", &EngineCore::set_auth_profiles, py::arg("json"))
      .def("set_secret", &EngineCore::set_secret, py::arg("name"), py::arg("value"))
      .def("add_db", &EngineCore::add_db, py::arg("name"), py::arg("url"),
           py::arg("password_secret"), py::arg("pool_size"), py::arg("connect_timeout_ms"),
           py::arg("max_waiting"), py::arg("read_only"))
      .def("register_db_connector", &EngineCore::register_db_connector, py::arg("name"),
           py::arg("dispatch"), py::arg("cancel"))
      .def("remove_db", &EngineCore::remove_db, py::arg("name"))
      .def("set_webhook", &EngineCore::set_webhook, py::arg("name"), py::arg("url"),
           py::arg("event_types"), py::arg("secrets"), py::arg("timeout_ms"),
           py::arg("max_attempts"), py::arg("backoff_base_ms"), py::arg("backoff_max_ms"),
           py::arg("max_concurrency"), py::arg("ca_file"), py::arg("enabled"))
      .def("remove_webhook", &EngineCore::remove_webhook, py::arg("name"))
      .def("webhook_stats", &EngineCore::webhook_stats)
      .def("webhook_dead_letters", &EngineCore::webhook_dead_letters)
      .def("webhook_requeue", &EngineCore::webhook_requeue, py::arg("id"))
      .def("webhook_purge", &EngineCore::webhook_purge, py::arg("id"))
      .def("set_routing", &EngineCore::set_routing, py::arg("json"))
      .def("push_availability", &EngineCore::push_availability, py::arg("target"),
           py::arg("agents_available"), py::arg("agents_logged_in"), py::arg("calls_waiting"),
           py::arg("longest_wait_s"))
      .def("mark_availability_stale", &EngineCore::mark_availability_stale, py::arg("target"))
      .def("set_target_draining", &EngineCore::set_target_draining, py::arg("target"),
           py::arg("draining"))
      .def("target_state", &EngineCore::target_state, py::arg("target"))
      .def("queue_stats", &EngineCore::queue_stats);
}
