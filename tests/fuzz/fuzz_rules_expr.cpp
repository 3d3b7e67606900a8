// Fuzzes the rule expression compiler and evaluator: compile arbitrary text with a fixed
// resolver and a schedule registry; when it compiles, evaluate it over fixed bindings with a
// small scratch buffer, with or without a time and schedules (chosen by the input's length).
// Checks: compile errors are Errc::parse and start with "column N: " where N is within the
// input; evaluation never crashes, its errors carry a column, and string results stay inside
// the scratch buffer, the source, or the bindings. Then, as a one-rule RuleSet, the rule-set
// index must not change any decision over many variants of the bindings (including the
// rule's own index keys).
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "rules/expr.h"
#include "rules/rule_set.h"
#include "rules/schedule.h"

namespace {

using namespace ivr::rules;

[[noreturn]] void fail(const char *what, const std::string &detail) {
  std::fprintf(stderr, "fuzz_rules_expr: %s: %s\n", what, detail.c_str());
  std::abort();
}

constexpr std::string_view kNames[] = {"call.from", "call.to",   "vars.name",   "vars.n",
                                       "vars.zero", "vars.flag", "vars.missing"};
constexpr uint32_t kSlots = sizeof kNames / sizeof kNames[0];

// A fixed resolver: the names above, nothing else (so the fuzzer's state never grows).
class FixedResolver : public VariableResolver {
 public:
  ivr::Result<uint32_t> resolve(std::string_view name) const override {
    for (uint32_t i = 0; i < kSlots; ++i)
      if (kNames[i] == name) return i;
    return ivr::Error{ivr::Errc::parse, "unknown variable '" + std::string(name) + "'"};
  }
};

bool inside(std::string_view s, const char *base, size_t size) {
  auto b = reinterpret_cast<uintptr_t>(base), p = reinterpret_cast<uintptr_t>(s.data());
  return p >= b && p + s.size() <= b + size;
}

// "office" (Berlin, weekdays 09:00-17:30) and "always".
const ScheduleRegistry &registry() {
  static const ScheduleRegistry r = [] {
    ScheduleRegistry reg;
    ScheduleSpec office;
    office.time_zone = "Europe/Berlin";
    for (size_t d = 0; d < 5; ++d) office.weekly[d] = {{"09:00", "17:30"}};
    ScheduleSpec always;
    always.time_zone = "UTC";
    for (auto &day : always.weekly) day = {{"00:00", "24:00"}};
    auto a = Schedule::create(office), b = Schedule::create(always);
    if (!a.ok() || !b.ok()) fail("schedule", a.ok() ? b.error().message : a.error().message);
    reg.set("office", std::move(a).value());
    reg.set("always", std::move(b).value());
    return reg;
  }();
  return r;
}

std::string decision(const ivr::Result<int64_t> &r) {
  if (r.ok()) return std::to_string(r.value());
  return "error " + std::to_string(static_cast<int>(r.error().code)) + " " + r.error().message;
}

// Compares first_match and collect_all with the index on and off.
void check_index(RuleSet &rs, const Value *values, EvalContext &ctx) {
  Bindings b{values, kSlots};
  rs.set_indexing(false);
  std::string off = decision(rs.first_match(b, ctx));
  uint32_t out_off[1] = {0}, out_on[1] = {0};
  auto all_off = rs.collect_all(b, ctx, out_off);
  rs.set_indexing(true);
  std::string on = decision(rs.first_match(b, ctx));
  auto all_on = rs.collect_all(b, ctx, out_on);
  if (on != off) fail("index changed first_match", off + " / " + on);
  bool same = all_on.ok() == all_off.ok() &&
              (all_on.ok() ? all_on.value() == all_off.value() && out_on[0] == out_off[0]
                           : all_on.error().message == all_off.error().message);
  if (!same) fail("index changed collect_all", rs.rule(0).when.source());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string_view src(reinterpret_cast<const char *>(data), size);
  FixedResolver resolver;
  CompileOptions options;
  options.schedules = &registry();
  auto expr = compile(src, resolver, options);
  if (!expr.ok()) {
    const auto &err = expr.error();
    if (err.code != ivr::Errc::parse) fail("compile error code", err.message);
    if (err.message.rfind("column ", 0) != 0) fail("compile error without column", err.message);
    unsigned long col = std::strtoul(err.message.c_str() + 7, nullptr, 10);
    if (col < 1 || col > size + 1) fail("compile error column out of range", err.message);
    return 0;
  }
  static const char kFrom[] = "+15551234567";
  static const char kName[] = "Ada Lovelace";
  // call.to and vars.missing stay null.
  Value values[kSlots];
  values[0] = Value::string(kFrom);
  values[2] = Value::string(kName);
  values[3] = Value::number(7);
  values[4] = Value::number(0);
  values[5] = Value::boolean(true);
  char scratch[64];
  EvalContext ctx(scratch, sizeof scratch);
  // Monday 2 March 2026, 10:00 UTC; sometimes no time or no schedules.
  if (size % 3 != 2)
    ctx.set_time(std::chrono::sys_days{std::chrono::year{2026} / std::chrono::March / 2} +
                 std::chrono::hours{10});
  if (size % 3 == 0) ctx.set_schedules(&registry());
  auto r = evaluate(expr.value(), Bindings{values, kSlots}, ctx);
  if (!r.ok()) {
    if (r.error().message.rfind("column ", 0) != 0)
      fail("eval error without column", r.error().message);
  } else if (r.value().type == Type::string) {
    const Value &v = r.value();
    const std::string &text = expr.value().source();
    bool ok = v.s.empty() || inside(v.s, scratch, sizeof scratch) ||
              inside(v.s, kFrom, sizeof kFrom) || inside(v.s, kName, sizeof kName) ||
              v.s == "true" || v.s == "false" || v.s.size() <= text.size();
    if (!ok) fail("string result points nowhere", std::string(v.s.substr(0, 32)));
  }

  // The same expression as a rule: the index must not change any decision.
  RuleSet rs;
  if (!rs.add(src, "r", resolver, options).ok()) fail("rule did not compile", std::string(src));
  if (!rs.add("true", "default", resolver).ok()) fail("rule", "true");
  check_index(rs, values, ctx);
  const Value variants[] = {Value{},
                            Value::number(0),
                            Value::number(7),
                            Value::number(-1),
                            Value::string(kFrom),
                            Value::string(""),
                            Value::boolean(true),
                            Value::boolean(false)};
  Value changed[kSlots];
  for (uint32_t slot = 0; slot < kSlots; ++slot) {
    for (const Value &v : variants) {
      for (uint32_t i = 0; i < kSlots; ++i) changed[i] = values[i];
      changed[slot] = v;
      check_index(rs, changed, ctx);
    }
  }
  detail::IndexKey key;
  if (detail::IndexKey::of(rs.rule(0).when, &key)) {
    for (const Value &v : key.values) {
      for (uint32_t i = 0; i < kSlots; ++i) changed[i] = values[i];
      changed[key.slot] = v;
      check_index(rs, changed, ctx);
    }
  }
  return 0;
}
