// C shims of ivr/routing.h: the routing configuration, availability pushed by the host,
// draining, and the live state of targets and the queue.
#include "capi/handles.h"

using ivr::capi::set_error;
using ivr::capi::valid;

namespace {

int check_target(const ivr_engine *engine, const char *target) {
  if (!valid(engine)) return set_error(IVR_EINVAL, "engine: not a valid engine handle");
  if (!target || !*target) return set_error(IVR_EINVAL, "target: NULL or empty");
  return IVR_OK;
}

int done(const ivr::Status &st) {
  return st ? IVR_OK : set_error(st.error());
}

}  // namespace

extern "C" {

IVR_API int ivr_engine_set_routing(ivr_engine *engine, const char *json){IVR_CAPI_GUARD({
  if (!valid(engine)) return set_error(IVR_EINVAL, "engine: not a valid engine handle");
  if (!json) return set_error(IVR_EINVAL, "json: NULL");
  return done(engine->engine->set_routing(std::string_view(json)));
})}

IVR_API int ivr_engine_push_availability(ivr_engine *engine, const char *target,
                                         const ivr_availability *sample){IVR_CAPI_GUARD({
  if (int rc = check_target(engine, target); rc) return rc;
  if (!sample) return set_error(IVR_EINVAL, "sample: NULL");
  if (sample->version != IVR_AVAILABILITY_VERSION)
    return set_error(IVR_EVERSION, "sample.version: unknown availability version " +
                                       std::to_string(sample->version));
  ivr::routing::AvailabilitySample s;
  s.agents_available = sample->agents_available;
  s.agents_logged_in = sample->agents_logged_in;
  s.calls_waiting = sample->calls_waiting;
  s.longest_wait_s = sample->longest_wait_s;
  return done(engine->engine->push_availability(target, s));
})}

IVR_API
    int ivr_engine_mark_availability_stale(ivr_engine *engine, const char *target){IVR_CAPI_GUARD({
      if (int rc = check_target(engine, target); rc) return rc;
      return done(engine->engine->mark_availability_stale(target));
    })}

IVR_API int ivr_engine_set_target_draining(ivr_engine *engine, const char *target,
                                           int draining){IVR_CAPI_GUARD({
  if (int rc = check_target(engine, target); rc) return rc;
  return done(engine->engine->set_target_draining(target, draining != 0));
})}

IVR_API int ivr_engine_target_state(ivr_engine *engine, const char *target,
                                    ivr_target_state *out){IVR_CAPI_GUARD({
  if (int rc = check_target(engine, target); rc) return rc;
  if (!out) return set_error(IVR_EINVAL, "out: NULL");
  if (out->version != IVR_TARGET_STATE_VERSION)
    return set_error(IVR_EVERSION,
                     "out.version: unknown target state version " + std::to_string(out->version));
  auto snap = engine->engine->target_state(target);
  if (!snap) return set_error(snap.error());
  out->health = static_cast<ivr_target_health>(snap->health);
  out->capacity = snap->capacity;
  out->active = snap->counters.active;
  out->reserved = snap->counters.reserved;
  out->offered = snap->counters.offered;
  out->answered = snap->counters.answered;
  out->completed = snap->counters.completed;
  unsigned long long failed = 0;
  for (auto n : snap->counters.failed) failed += n;
  out->failed = failed;
  out->availability_fresh = snap->availability_fresh ? 1 : 0;
  out->idle_agents = snap->idle_agents;
  return IVR_OK;
})}

IVR_API int ivr_engine_queue_stats(ivr_engine *engine, ivr_queue_stats *out){IVR_CAPI_GUARD({
  if (!valid(engine)) return set_error(IVR_EINVAL, "engine: not a valid engine handle");
  if (!out) return set_error(IVR_EINVAL, "out: NULL");
  if (out->version != IVR_QUEUE_STATS_VERSION)
    return set_error(IVR_EVERSION,
                     "out.version: unknown queue stats version " + std::to_string(out->version));
  auto stats = engine->engine->queue_stats();
  if (!stats) return set_error(stats.error());
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  out->waiting = static_cast<unsigned>(stats->size);
  out->offered = static_cast<unsigned>(stats->offered);
  out->oldest_wait_ms =
      static_cast<unsigned long long>(duration_cast<milliseconds>(stats->oldest_wait).count());
  out->service_interval_ms =
      stats->service_interval
          ? static_cast<long long>(duration_cast<milliseconds>(*stats->service_interval).count())
          : -1;
  out->enqueued = stats->enqueued;
  out->served = stats->served;
  out->abandoned = stats->abandoned;
  out->expired = stats->expired;
  return IVR_OK;
})}

IVR_API int ivr_call_queue_position(ivr_call *call, unsigned int *position) {
  IVR_CAPI_GUARD({
    if (!valid(call)) return set_error(IVR_EINVAL, "call: not a valid call handle");
    if (!position) return set_error(IVR_EINVAL, "position: NULL");
    auto engine = call->engine.lock();
    if (!engine) return set_error(IVR_EGONE, "call: its engine has been freed");
    auto p = engine->queue_position(call->call->id());
    if (!p) return set_error(p.error());
    *position = static_cast<unsigned>(*p);
    return IVR_OK;
  })
}

}  // extern "C"
