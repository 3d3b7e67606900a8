// The engine's routing entry points for hosts (any thread): each runs on the engine thread.
#include "core/engine.h"

namespace ivr::core {
namespace {

// Runs fn with the configured routing service, or says why there is none.
template <typename Fn>
Status with_routing(Engine &engine, bool started, Fn &&fn) {
  if (!started) return Error{Errc::bad_state, "routing: the engine is not started"};
  return engine.run_on_engine([&engine, &fn]() -> Status {
    RoutingService *r = engine.routing();
    if (!r) return Error{Errc::gone, "routing: the engine has stopped"};
    if (!r->configured()) return Error{Errc::bad_state, "routing: no routing configuration"};
    return fn(*r);
  });
}

Result<routing::TargetIndex> find_target(RoutingService &r, const std::string &name) {
  auto t = r.pool().find(name);
  if (!t)
    return Error{Errc::not_found, "target \"" + routing::shown_name(name) + "\": no such target"};
  return *t;
}

}  // namespace

Status Engine::push_availability(const std::string &target,
                                 const routing::AvailabilitySample &sample) {
  return with_routing(*this, started_, [&](RoutingService &r) -> Status {
    auto t = find_target(r, target);
    if (!t) return t.error();
    r.pool().update_availability(*t, sample, r.now());
    r.pump_soon();
    return {};
  });
}

Status Engine::mark_availability_stale(const std::string &target) {
  return with_routing(*this, started_, [&](RoutingService &r) -> Status {
    auto t = find_target(r, target);
    if (!t) return t.error();
    r.pool().mark_availability_stale(*t);
    return {};
  });
}

Status Engine::set_target_draining(const std::string &target, bool draining) {
  return with_routing(*this, started_, [&](RoutingService &r) -> Status {
    auto t = find_target(r, target);
    if (!t) return t.error();
    if (auto change = r.pool().set_draining(*t, draining))
      IVR_LOG(logger(), info, "routing", "target %s: %s -> %s (operator)", target.c_str(),
              routing::health_name(change->from), routing::health_name(change->to));
    if (!draining) r.pump_soon();
    return {};
  });
}

Result<Engine::TargetSnapshot> Engine::target_state(const std::string &target) {
  TargetSnapshot snap;
  auto st = with_routing(*this, started_, [&](RoutingService &r) -> Status {
    auto t = find_target(r, target);
    if (!t) return t.error();
    const auto now = r.now();
    const auto &state = r.pool().state(*t);
    snap.health = state.health;
    snap.capacity = r.pool().config(*t).capacity;
    snap.counters = state.counters;
    snap.availability_fresh = !r.pool().availability_stale(*t, now);
    snap.idle_agents = r.pool().idle_agents(*t, now);
    return {};
  });
  if (!st) return st.error();
  return snap;
}

Result<routing::QueueStats> Engine::queue_stats() {
  routing::QueueStats stats;
  auto st = with_routing(*this, started_, [&](RoutingService &r) -> Status {
    stats = r.queue().stats(r.now());
    return {};
  });
  if (!st) return st.error();
  return stats;
}

Result<size_t> Engine::queue_position(uint64_t call) {
  size_t position = 0;
  auto st = with_routing(*this, started_, [&](RoutingService &r) -> Status {
    if (auto p = r.queue().position(call)) position = *p;
    return {};
  });
  if (!st) return st.error();
  return position;
}

}  // namespace ivr::core
