#include "routing_test_util.h"

using namespace rtest;

namespace {

ivr::rules::Schedule office() {
  ivr::rules::ScheduleSpec s;
  s.time_zone = "Europe/Berlin";
  for (int d = 0; d < 5; ++d) s.weekly[static_cast<size_t>(d)] = {{"09:00", "17:00"}};
  auto r = ivr::rules::Schedule::create(s);
  REQUIRE(r.ok());
  return std::move(r).value();
}

RoutingConfig config() {
  RoutingConfig c;
  c.targets = {target("day1"), target("day2"), target("night", 10, 1, 0)};
  c.sets = {{"day", {"day1", "day2"}}};
  c.schedules.set("office", office());
  PlanEntryConfig day;
  day.schedule = "office";
  day.strategy = Strategy::round_robin;
  day.set = "day";
  PlanEntryConfig rest;
  rest.strategy = Strategy::failover;
  rest.targets = {"night"};
  c.plans.push_back({"main", {day, rest}});
  PlanEntryConfig only_day = day;
  c.plans.push_back({"office_only", {only_day}});  // shares the "day" set's rotation
  return c;
}

}  // namespace

TEST_CASE("plan: the first entry whose schedule is open wins") {
  auto r = Router::create(config(), T0);
  REQUIRE(r.ok());
  Router &router = r.value();
  uint32_t main = *router.find_plan("main");
  DecisionInput in = input();  // Monday 10:00 UTC = 11:00 in Berlin: open
  Decision d;
  REQUIRE(router.decide(main, in, d).ok());
  CHECK(d.entry == 0);
  CHECK(d.strategy == Strategy::round_robin);
  CHECK(names(router, d) == V{"day1", "day2"});
  CHECK(router.describe(d) == "plan main entry 0 (office) round_robin: day1, day2");

  in.wall = monday_10utc() + std::chrono::hours(8);  // 19:00 in Berlin: closed
  REQUIRE(router.decide(main, in, d).ok());
  CHECK(d.entry == 1);
  CHECK(names(router, d) == V{"night"});
  in.wall = monday_10utc() - std::chrono::hours(24 * 1);  // Sunday
  CHECK(router.open_entry(main, in.wall) == 1);

  uint32_t only = *router.find_plan("office_only");
  REQUIRE(router.decide(only, in, d).ok());
  CHECK(d.entry == -1);
  CHECK(d.candidates.empty());
  CHECK(router.describe(d) == "plan office_only: no entry open");
  CHECK(router.entry_schedule(only, 0) == "office");
  CHECK(router.entry_targets(main, 1) == std::vector<TargetIndex>{idx(router, "night")});
}

TEST_CASE("plan: entries over one named set share its rotation") {
  auto r = Router::create(config(), T0);
  REQUIRE(r.ok());
  Router &router = r.value();
  Decision d;
  REQUIRE(router.decide(*router.find_plan("main"), input(), d).ok());
  CHECK(names(router, d)[0] == "day1");
  REQUIRE(router.decide(*router.find_plan("office_only"), input(), d).ok());
  CHECK(names(router, d)[0] == "day2");
}

TEST_CASE("plan: reconfigure keeps target state, restarts strategy state") {
  auto r = Router::create(config(), T0);
  REQUIRE(r.ok());
  Router &router = r.value();
  REQUIRE(router.pool().try_reserve(idx(router, "day2"), T0).ok());
  router.pool().force_health(idx(router, "night"), false, T0);
  Decision d;
  REQUIRE(router.decide(0, input(), d).ok());  // advances the rotation

  RoutingConfig next = config();
  next.targets.insert(next.targets.begin(), target("new"));
  REQUIRE(router.reconfigure(std::move(next), T0 + 1s).ok());
  CHECK(router.pool().state(idx(router, "day2")).counters.reserved == 1);
  CHECK(router.pool().health(idx(router, "night")) == Health::down);
  REQUIRE(router.decide(0, input(), d).ok());
  CHECK(names(router, d) == V{"day1", "day2"});

  RoutingConfig bad = config();
  bad.plans[0].entries[0].set = "nope";
  auto s = router.reconfigure(std::move(bad), T0);
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().message == "routing.plans.main.entries[0].set: unknown target set 'nope'");
  CHECK(router.pool().find("new"));  // unchanged
}

TEST_CASE("plan: rules may use in_schedule and now() with the call's wall time") {
  RoutingConfig c = config();
  PlanEntryConfig e;
  e.strategy = Strategy::rules;
  e.targets = {"day1", "night"};
  e.rules = {{"in_schedule('office')", "day1"}, {"true", "night"}};
  c.plans.push_back({"by_rule", {e}});
  auto r = Router::create(std::move(c), T0);
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
  Router &router = r.value();
  uint32_t p = *router.find_plan("by_rule");
  DecisionInput in = input();
  Decision d;
  REQUIRE(router.decide(p, in, d).ok());
  CHECK(names(router, d) == V{"day1", "night"});
  in.wall += std::chrono::hours(10);
  REQUIRE(router.decide(p, in, d).ok());
  CHECK(names(router, d) == V{"night", "day1"});
  CHECK(d.rule == 1);
}
