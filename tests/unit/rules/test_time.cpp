// now() and in_schedule(): the evaluation time and the schedules come from the EvalContext.
#include <date/date.h>

#include <chrono>
#include <string>

#include "rules/rule_set.h"
#include "rules/schedule.h"
#include "rules_test_util.h"

using namespace rt;
using TP = std::chrono::system_clock::time_point;

namespace {

TP utc(int y, unsigned mo, unsigned d, int h, int mi, int s = 0) {
  return date::sys_days{date::year{y} / date::month{mo} / date::day{d}} + std::chrono::hours{h} +
         std::chrono::minutes{mi} + std::chrono::seconds{s};
}

Schedule make(const char *zone, const char *open, const char *close, int days = 5) {
  ScheduleSpec spec;
  spec.time_zone = zone;
  for (int d = 0; d < days; ++d) spec.weekly[static_cast<size_t>(d)] = {{open, close}};
  auto s = Schedule::create(spec);
  REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.error().message));
  return std::move(s.value());
}

// "office": Berlin, Mon-Fri 09:00-17:30. "night": New York, every day 22:00-02:00.
const ScheduleRegistry &registry() {
  static ScheduleRegistry r = [] {
    ScheduleRegistry reg;
    REQUIRE(reg.add("office", make("Europe/Berlin", "09:00", "17:30")).ok());
    REQUIRE(reg.add("night", make("America/New_York", "22:00", "02:00", 7)).ok());
    return reg;
  }();
  return r;
}

// Evaluates src at `t` (when given) with `schedules`.
ivr::Result<Value> at_time(std::string_view src, const TP *t, const ScheduleRegistry *schedules,
                           const Env &env = {}, const CompileOptions &opts = {}) {
  auto e = compile(src, table(), opts);
  if (!e.ok()) return e.error();
  FixedEvalContext<64> ctx;
  if (t) ctx.set_time(*t);
  ctx.set_schedules(schedules);
  auto r = evaluate(e.value(), env.bindings(), ctx);
  if (!r.ok() || r.value().type != Type::string) return r;
  static std::string keep;  // the result views into the expression, which goes away
  keep.assign(r.value().s);
  return Value::string(keep);
}

bool open_at(const char *name, TP t) {
  std::string src = std::string("in_schedule('") + name + "')";
  auto r = at_time(src, &t, &registry());
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
  REQUIRE(r.value().type == Type::boolean);
  return r.value().b;
}

}  // namespace

TEST_CASE("now() is the context's time in Unix seconds") {
  TP t = utc(2026, 1, 1, 0, 0);
  auto r = at_time("now()", &t, nullptr);
  REQUIRE(r.ok());
  REQUIRE(r.value().type == Type::number);
  CHECK(r.value().n == 1767225600);
  TP frac = t + std::chrono::milliseconds(250);
  r = at_time("now()", &frac, nullptr);
  REQUIRE(r.ok());
  CHECK(r.value().n == 1767225600.25);
  TP epoch{};
  r = at_time("now()", &epoch, nullptr);
  REQUIRE(r.ok());
  CHECK(r.value().n == 0);
  // Deterministic: the wall clock plays no part.
  for (int i = 0; i < 3; ++i) {
    auto again = at_time("now() - 1767225600", &t, nullptr);
    REQUIRE(again.ok());
    CHECK(again.value().n == 0);
  }
  Env env;
  env.set("vars.created", Value::number(1767225600 - 7200));
  auto age = at_time("now() - vars.created > 3600", &t, nullptr, env);
  REQUIRE(age.ok());
  CHECK(age.value().b);
}

TEST_CASE("now(): errors") {
  auto r = at_time("1 + now()", nullptr, nullptr);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ivr::Errc::bad_state);
  CHECK(r.error().message == "column 5: now() needs the evaluation time, and the context has none");
  CHECK(compile_error("now(1)") == "column 1: now expects 0 arguments, got 1");
  CHECK(compile_error("now() + 'a'") == "column 7: operator '+' cannot take number and string");
  // The time survives evaluations (reset() clears the scratch only) until cleared.
  auto e = compile("now()", table());
  REQUIRE(e.ok());
  FixedEvalContext<8> ctx;
  ctx.set_time(utc(2026, 1, 1, 0, 0));
  CHECK(ctx.has_time());
  CHECK(evaluate(e.value(), Bindings{}, ctx).ok());
  CHECK(evaluate(e.value(), Bindings{}, ctx).ok());
  ctx.clear_time();
  CHECK_FALSE(evaluate(e.value(), Bindings{}, ctx).ok());
}

TEST_CASE("in_schedule() answers from the registry at the context's time") {
  // Mon 2 Mar 2026; Berlin is UTC+1.
  CHECK_FALSE(open_at("office", utc(2026, 3, 2, 7, 59, 59)));
  CHECK(open_at("office", utc(2026, 3, 2, 8, 0)));
  CHECK(open_at("office", utc(2026, 3, 2, 16, 29, 59)));
  CHECK_FALSE(open_at("office", utc(2026, 3, 2, 16, 30)));
  CHECK_FALSE(open_at("office", utc(2026, 3, 7, 10, 0)));  // Saturday
  // After the change to summer time (29 Mar 2026), 09:00 in Berlin is 07:00Z.
  CHECK(open_at("office", utc(2026, 3, 30, 7, 0)));
  CHECK_FALSE(open_at("office", utc(2026, 3, 30, 6, 59)));
  // New York overnight hours: 22:00-02:00 local (UTC-5 in January).
  CHECK(open_at("night", utc(2026, 1, 6, 3, 0)));   // 22:00 on the 5th
  CHECK(open_at("night", utc(2026, 1, 6, 6, 59)));  // 01:59 on the 6th
  CHECK_FALSE(open_at("night", utc(2026, 1, 6, 7, 0)));
  // Double quotes, and in a larger expression.
  TP t = utc(2026, 3, 2, 10, 0);
  Env env;
  env.set("vars.tier", Value::string("gold"));
  auto r = at_time("in_schedule(\"office\") && vars.tier == 'gold' ? 'agent' : 'voicemail'", &t,
                   &registry(), env);
  REQUIRE(r.ok());
  CHECK(r.value().s == "agent");
}

TEST_CASE("in_schedule(): unknown names, missing registry or time") {
  CompileOptions opts;
  opts.schedules = &registry();
  TP t = utc(2026, 3, 2, 10, 0);
  // With a registry at compile time, an unknown name is a compile error with its column.
  auto r = at_time("vars.x || in_schedule('ofice')", &t, &registry(), {}, opts);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ivr::Errc::parse);
  CHECK(r.error().message == "column 23: unknown schedule 'ofice'");
  CHECK(at_time("in_schedule('office')", &t, &registry(), {}, opts).ok());
  // Without one, names are looked up when evaluating.
  r = at_time("vars.x || in_schedule('ofice')", &t, &registry());
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ivr::Errc::not_found);
  CHECK(r.error().message == "column 11: unknown schedule 'ofice'");
  r = at_time("in_schedule('office')", &t, nullptr);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ivr::Errc::bad_state);
  CHECK(r.error().message ==
        "column 1: in_schedule() needs a schedule registry, and the context has none");
  r = at_time("in_schedule('office')", nullptr, &registry());
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ivr::Errc::bad_state);
  CHECK(r.error().message ==
        "column 1: in_schedule() needs the evaluation time, and the context has none");
  // Short-circuit: not evaluated, no error.
  r = at_time("false && in_schedule('office')", nullptr, nullptr);
  REQUIRE(r.ok());
  CHECK_FALSE(r.value().b);
}

TEST_CASE("in_schedule(): compile errors") {
  CHECK(compile_error("in_schedule(call.to)") ==
        "column 13: argument 1 of in_schedule must be a string literal (a schedule name)");
  CHECK(compile_error("in_schedule(1)") ==
        "column 13: argument 1 of in_schedule must be a string, got number");
  CHECK(compile_error("in_schedule()") == "column 1: in_schedule expects 1 argument, got 0");
  CHECK(compile_error("in_schedule('a', 'b')") ==
        "column 1: in_schedule expects 1 argument, got 2");
  CHECK(compile_error("in_schedule('office') + 1") ==
        "column 23: operator '+' cannot take bool and number");
}

TEST_CASE("in_schedule() follows the registry's current schedule of that name") {
  ScheduleRegistry reg;
  REQUIRE(reg.add("desk", make("UTC", "09:00", "17:00")).ok());
  CompileOptions opts;
  opts.schedules = &reg;
  auto e = compile("in_schedule('desk')", table(), opts);
  REQUIRE(e.ok());
  FixedEvalContext<8> ctx;
  ctx.set_schedules(&reg);
  ctx.set_time(utc(2026, 3, 2, 18, 0));  // Monday 18:00 UTC
  auto r = evaluate(e.value(), Bindings{}, ctx);
  REQUIRE(r.ok());
  CHECK_FALSE(r.value().b);
  reg.set("desk", make("UTC", "09:00", "20:00"));  // replaced: looked up by name each time
  r = evaluate(e.value(), Bindings{}, ctx);
  REQUIRE(r.ok());
  CHECK(r.value().b);
}

TEST_CASE("rule sets: schedules and time through the context") {
  CompileOptions opts;
  opts.schedules = &registry();
  RuleSet rs;
  REQUIRE(rs.add("in_schedule('office') && vars.tier == 'gold'", "priority", table(), opts).ok());
  REQUIRE(rs.add("in_schedule('office')", "agents", table(), opts).ok());
  REQUIRE(rs.add("true", "voicemail", table(), opts).ok());
  auto bad = rs.add("in_schedule('nope')", "x", table(), opts);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message == "rule 4: column 13: unknown schedule 'nope'");

  Env env;
  env.set("vars.tier", Value::string("gold"));
  FixedEvalContext<32> ctx;
  ctx.set_schedules(&registry());
  ctx.set_time(utc(2026, 3, 2, 10, 0));
  auto m = rs.first_match(env.bindings(), ctx);
  REQUIRE(m.ok());
  CHECK(m.value() == 0);
  ctx.set_time(utc(2026, 3, 2, 20, 0));
  m = rs.first_match(env.bindings(), ctx);
  REQUIRE(m.ok());
  CHECK(m.value() == 2);
  ctx.set_schedules(nullptr);
  m = rs.first_match(env.bindings(), ctx);
  REQUIRE_FALSE(m.ok());
  CHECK(m.error().message ==
        "rule 1: column 1: in_schedule() needs a schedule registry, and the context has none");
}

TEST_CASE("evaluate_condition: null is false, other types are errors") {
  auto cond = [](std::string_view src, const Env &env = {}) {
    auto e = compile(src, table());
    REQUIRE(e.ok());
    FixedEvalContext<16> ctx;
    return evaluate_condition(e.value(), env.bindings(), ctx);
  };
  auto r = cond("1 < 2");
  REQUIRE(r.ok());
  CHECK(r.value());
  r = cond("vars.missing");
  REQUIRE(r.ok());
  CHECK_FALSE(r.value());
  r = cond("matches(vars.missing, 'a')");
  REQUIRE(r.ok());
  CHECK_FALSE(r.value());
  r = cond("1 + 1");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message == "condition must yield a bool, got number");
  r = cond("1 / 0 == 1");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message == "column 3: division by zero in '/'");
}
