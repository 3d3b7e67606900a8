/*
 * Java bindings: the C++ glue of routing (ivr/routing.h), kept beside ivr.i rather than in
 * it. Included into ivr.i's %{ %} block after ivrj::Error, check(), copy() and
 * to_unsigned(); wrapped through routing.i. Functions take the raw ivr_engine: the Engine's
 * %extend methods (routing.i) call them under the Engine's shared lock (Engine::withLive).
 */
#ifndef IVR_SWIG_ROUTING_GLUE_H
#define IVR_SWIG_ROUTING_GLUE_H

#include <ivr/ivr.h>

#include <string>

namespace ivrj {

/* The routing fields of an event (ivr_event version 3), copied. */
struct RouteFields {
  RouteFields() = default;
  explicit RouteFields(const ivr_event &e)
      : plan(copy(e.route_plan)),
        target(copy(e.route_target)),
        uri(copy(e.route_uri)),
        detail(copy(e.route_detail)),
        attempt(e.route_attempt),
        queue_position(e.queue_position),
        queue_priority(e.queue_priority) {}

  std::string plan, target, uri, detail;
  unsigned attempt = 0;
  int queue_position = 0, queue_priority = 0;
};

/* A target's live state, copied (the Java record TargetState is built from it). */
class TargetStateNative {
 public:
  TargetStateNative() : s_{} {} /* SWIG declares a result variable before assigning it */
  explicit TargetStateNative(const ivr_target_state &s) : s_(s) {}
  TargetHealth health() const { return static_cast<TargetHealth>(s_.health); }
  int capacity() const { return static_cast<int>(s_.capacity); }
  int active() const { return static_cast<int>(s_.active); }
  int reserved() const { return static_cast<int>(s_.reserved); }
  long long offered() const { return static_cast<long long>(s_.offered); }
  long long answered() const { return static_cast<long long>(s_.answered); }
  long long completed() const { return static_cast<long long>(s_.completed); }
  long long failed() const { return static_cast<long long>(s_.failed); }
  bool availabilityFresh() const { return s_.availability_fresh != 0; }
  long long idleAgents() const { return s_.idle_agents; }

 private:
  ivr_target_state s_;
};

/* The call queue's state, copied (for the Java record QueueStats). */
class QueueStatsNative {
 public:
  QueueStatsNative() : s_{} {}
  explicit QueueStatsNative(const ivr_queue_stats &s) : s_(s) {}
  int waiting() const { return static_cast<int>(s_.waiting); }
  int offered() const { return static_cast<int>(s_.offered); }
  long long oldestWaitMs() const { return static_cast<long long>(s_.oldest_wait_ms); }
  long long serviceIntervalMs() const { return s_.service_interval_ms; }
  long long enqueued() const { return static_cast<long long>(s_.enqueued); }
  long long served() const { return static_cast<long long>(s_.served); }
  long long abandoned() const { return static_cast<long long>(s_.abandoned); }
  long long expired() const { return static_cast<long long>(s_.expired); }

 private:
  ivr_queue_stats s_;
};

namespace routing {

inline void set_routing(ivr_engine *e, const char *json) {
  check(ivr_engine_set_routing(e, json));
}

/* Java ints: a negative figure is refused, naming it. */
inline void push_availability(ivr_engine *e, const char *target, int agentsAvailable,
                              int agentsLoggedIn, int callsWaiting, int longestWaitS) {
  ivr_availability a = IVR_AVAILABILITY_INIT;
  a.agents_available = to_unsigned(agentsAvailable, 0xffffffffu, "availability.agentsAvailable");
  a.agents_logged_in = to_unsigned(agentsLoggedIn, 0xffffffffu, "availability.agentsLoggedIn");
  a.calls_waiting = to_unsigned(callsWaiting, 0xffffffffu, "availability.callsWaiting");
  a.longest_wait_s = to_unsigned(longestWaitS, 0xffffffffu, "availability.longestWaitS");
  check(ivr_engine_push_availability(e, target, &a));
}

inline void mark_availability_stale(ivr_engine *e, const char *target) {
  check(ivr_engine_mark_availability_stale(e, target));
}

inline void set_target_draining(ivr_engine *e, const char *target, bool draining) {
  check(ivr_engine_set_target_draining(e, target, draining ? 1 : 0));
}

inline TargetStateNative target_state(ivr_engine *e, const char *target) {
  ivr_target_state s{};
  s.version = IVR_TARGET_STATE_VERSION;
  check(ivr_engine_target_state(e, target, &s));
  return TargetStateNative(s);
}

inline QueueStatsNative queue_stats(ivr_engine *e) {
  ivr_queue_stats s{};
  s.version = IVR_QUEUE_STATS_VERSION;
  check(ivr_engine_queue_stats(e, &s));
  return QueueStatsNative(s);
}

}  // namespace routing
}  // namespace ivrj

#endif /* IVR_SWIG_ROUTING_GLUE_H */
