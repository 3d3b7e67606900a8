// Helpers shared by the routing unit tests: a virtual clock, target configs, variables.
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "routing/config.h"
#include "routing/router.h"

namespace rtest {

using namespace ivr::routing;
using namespace std::chrono_literals;

// Virtual monotonic time: T0 + offsets, never the real clock.
inline const Instant T0 = Instant{} + std::chrono::hours(1000);
// A Monday 10:00 UTC, for schedules.
inline WallTime monday_10utc() {
  return std::chrono::sys_days{std::chrono::year{2026} / 3 / 2} + std::chrono::hours(10);
}

inline TargetConfig target(std::string name, uint32_t capacity = 10, uint32_t weight = 1,
                           uint32_t priority = 0) {
  TargetConfig t;
  t.name = std::move(name);
  t.uris = {{"sip:queue@" + t.name + ".example", Transport::udp}};
  t.capacity = capacity;
  t.weight = weight;
  t.priority = priority;
  return t;
}

// A router over `targets` with one plan "p" of one always-open entry.
inline Router router(std::vector<TargetConfig> targets, Strategy strategy,
                     std::vector<RuleSpec> rules = {}, std::string key = "call.from") {
  RoutingConfig c;
  PlanEntryConfig e;
  e.strategy = strategy;
  for (auto &t : targets) e.targets.push_back(t.name);
  e.rules = std::move(rules);
  e.key = std::move(key);
  c.targets = std::move(targets);
  c.plans.push_back({"p", {e}});
  auto r = Router::create(std::move(c), T0);
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
  return std::move(r).value();
}

// Variables by name in the router's slot layout.
struct Vars {
  const Router &router;
  std::deque<std::string> text;  // stable addresses: values view into it
  std::vector<ivr::rules::Value> values;
  explicit Vars(const Router &r) : router(r) { values.resize(r.variables().size()); }
  Vars &str(std::string_view name, std::string v) {
    int64_t slot = router.slot_of(name);
    if (slot < 0) return *this;  // no rule reads it
    text.push_back(std::move(v));
    values[static_cast<size_t>(slot)] = ivr::rules::Value::string(text.back());
    return *this;
  }
  Vars &num(std::string_view name, double v) {
    int64_t slot = router.slot_of(name);
    if (slot >= 0) values[static_cast<size_t>(slot)] = ivr::rules::Value::number(v);
    return *this;
  }
  ivr::rules::Bindings bindings() const { return {values.data(), values.size()}; }
};

inline DecisionInput input(Instant now = T0, ivr::rules::Bindings b = {}) {
  DecisionInput in;
  in.now = now;
  in.wall = monday_10utc();
  in.bindings = b;
  return in;
}

// Candidate names in order.
inline std::vector<std::string> names(const Router &r, const Decision &d) {
  std::vector<std::string> out;
  for (const Candidate &c : d.candidates) out.push_back(r.pool().name(c.target));
  return out;
}

inline std::vector<std::string> skipped(const Router &r, const Decision &d) {
  std::vector<std::string> out;
  for (const Skipped &s : d.skipped)
    out.push_back(r.pool().name(s.target) + ":" + skip_reason_name(s.reason));
  return out;
}

inline Decision decide(Router &r, const DecisionInput &in = input()) {
  Decision d;
  auto s = r.decide(0, in, d);
  REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.error().message));
  return d;
}

inline TargetIndex idx(const Router &r, std::string_view name) {
  auto i = r.pool().find(name);
  REQUIRE(i.has_value());
  return *i;
}

using V = std::vector<std::string>;

}  // namespace rtest
