// Proves evaluation allocates nothing: global operator new is replaced with a counting one.
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <new>
#include <string>

#include "rules/rule_set.h"
#include "rules/schedule.h"
#include "rules_test_util.h"

// The replacements below pair malloc with free on purpose; GCC's optimizer sees through
// them and reports a mismatch that is not one.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace {
std::atomic<long> g_news{0};
}

void *operator new(std::size_t n) {
  g_news.fetch_add(1, std::memory_order_relaxed);
  if (void *p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void *operator new[](std::size_t n) {
  return ::operator new(n);
}
void operator delete(void *p) noexcept {
  std::free(p);
}
void operator delete[](void *p) noexcept {
  std::free(p);
}
void operator delete(void *p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void *p, std::size_t) noexcept {
  std::free(p);
}

using namespace rt;

TEST_CASE("the counter sees allocations") {
  long before = g_news.load();
  auto *p = new std::string(100, 'x');  // a heap string: at least two news
  delete p;
  CHECK(g_news.load() - before >= 2);
}

TEST_CASE("evaluate allocates nothing") {
  const char *sources[] = {
      "1 + 2 * 3 == 7",
      "!vars.a && vars.b || vars.c",
      "upper(call.from) + '-' + lower('ABC') + string(vars.n / 3)",
      "starts_with(call.from, '+1') ? substr(call.from, 2, 3) : 'other'",
      "call.to in ['100', '200', '300'] && len(call.from) > 3",
      "number('12.5') * 2 + vars.missing",
      "vars.n % 4 >= 1 and not (call.to not in ['x'])",
  };
  Env env;
  env.set("call.from", Value::string("+15551234567"));
  env.set("call.to", Value::string("200"));
  env.set("vars.a", Value::boolean(false));
  env.set("vars.b", Value::boolean(true));
  env.set("vars.c", Value::boolean(false));
  env.set("vars.n", Value::number(10));
  FixedEvalContext<256> ctx;
  for (const char *src : sources) {
    CAPTURE(src);
    auto e = compile(src, table());
    REQUIRE(e.ok());
    Bindings b = env.bindings();
    long before = g_news.load();
    int failures = 0;
    for (int i = 0; i < 100; ++i) failures += evaluate(e.value(), b, ctx).ok() ? 0 : 1;
    long after = g_news.load();
    CHECK(failures == 0);
    CHECK(after - before == 0);
  }
}

TEST_CASE("rule set decisions allocate nothing") {
  RuleSet rules;
  for (int i = 0; i < 50; ++i)
    REQUIRE(rules
                .add("vars.n == " + std::to_string(i) + " || call.to in ['x']",
                     "r" + std::to_string(i), table())
                .ok());
  REQUIRE(rules.add("true", "default", table()).ok());
  Env env;
  env.set("vars.n", Value::number(42));
  env.set("call.to", Value::string("200"));
  FixedEvalContext<64> ctx;
  uint32_t out[64];
  Bindings b = env.bindings();
  long before = g_news.load();
  auto first = rules.first_match(b, ctx);
  auto all = rules.collect_all(b, ctx, out);
  long after = g_news.load();
  CHECK(after - before == 0);
  REQUIRE(first.ok());
  CHECK(first.value() == 42);
  REQUIRE(all.ok());
  CHECK(all.value() == 2);
}

TEST_CASE("the counter sees an allocation inside evaluate (the error message)") {
  auto e = compile("vars.n / 0", table());
  REQUIRE(e.ok());
  Env env;
  env.set("vars.n", Value::number(3));
  FixedEvalContext<16> ctx;
  Bindings b = env.bindings();
  long before = g_news.load();
  bool ok = evaluate(e.value(), b, ctx).ok();
  long after = g_news.load();
  CHECK_FALSE(ok);
  CHECK(after - before > 0);
}

TEST_CASE("indexed rule-set decisions allocate nothing") {
  RuleSet rules;
  for (int i = 0; i < 200; ++i)
    REQUIRE(rules
                .add("vars.n > " + std::to_string(i % 7) + " && call.to in ['" + std::to_string(i) +
                         "', 'x" + std::to_string(i) + "']",
                     "r" + std::to_string(i), table())
                .ok());
  REQUIRE(rules.add("vars.n > 0", "default", table()).ok());
  CHECK(rules.indexed_rules() == 200);
  Env env;
  env.set("vars.n", Value::number(10));
  env.set("call.to", Value::string("150"));
  FixedEvalContext<64> ctx;
  uint32_t out[8];
  Bindings b = env.bindings();
  long before = g_news.load();
  auto first = rules.first_match(b, ctx);
  auto all = rules.collect_all(b, ctx, out);
  long after = g_news.load();
  CHECK(after - before == 0);
  REQUIRE(first.ok());
  CHECK(first.value() == 150);
  REQUIRE(all.ok());
  CHECK(all.value() == 2);
}

TEST_CASE("matches, regex_extract, now and in_schedule allocate nothing once warm") {
  ScheduleRegistry reg;
  ScheduleSpec spec;
  spec.time_zone = "Europe/Berlin";
  for (size_t d = 0; d < 5; ++d) spec.weekly[d] = {{"09:00", "17:30"}};
  auto office = Schedule::create(spec);
  REQUIRE(office.ok());
  REQUIRE(reg.add("office", std::move(office).value()).ok());
  CompileOptions opts;
  opts.schedules = &reg;
  const char *sources[] = {
      "matches(call.from, '^\\\\+1(555|800)\\\\d{7}$')",
      "matches(call.from_name, '(?i)acme|globex') || matches(call.from, '(a+)+$')",
      "regex_extract(call.from, '\\\\d{4}$') == '4567'",
      "len(regex_extract(call.from_name, '[A-Z][a-z]+')) > 2",
      "now() - vars.created > 3600",
      "in_schedule('office') && !in_schedule('office') == false",
  };
  Env env;
  env.set("call.from", Value::string("+15551234567"));
  env.set("call.from_name", Value::string("Acme Corp"));
  env.set("vars.created", Value::number(1767225600));
  FixedEvalContext<64> ctx;
  ctx.set_schedules(&reg);
  std::chrono::system_clock::time_point t =
      std::chrono::sys_days{std::chrono::year{2026} / std::chrono::March / 2} +
      std::chrono::hours{10};
  ctx.set_time(t);
  for (const char *text : sources) {
    std::string src = text;
    CAPTURE(src);
    auto e = compile(src, table(), opts);
    REQUIRE_MESSAGE(e.ok(), (e.ok() ? "" : e.error().message));
    Bindings b = env.bindings();
    // RE2 builds its DFA states lazily: the first match over an input may allocate.
    long first = g_news.load();
    bool ok = evaluate(e.value(), b, ctx).ok();
    long first_news = g_news.load() - first;
    REQUIRE(ok);
    MESSAGE("first evaluation: " << first_news << " allocations");
    long before = g_news.load();
    int failures = 0;
    for (int i = 0; i < 100; ++i) failures += evaluate(e.value(), b, ctx).ok() ? 0 : 1;
    long after = g_news.load();
    CHECK(failures == 0);
    CHECK(after - before == 0);
  }
}

TEST_CASE("matches over ever-new inputs: allocations stop once RE2's DFA has its states") {
  auto e = compile("matches(call.from, '^\\\\+(1|44|49)\\\\d{6,12}$')", table());
  REQUIRE(e.ok());
  FixedEvalContext<16> ctx;
  std::string numbers[2000];
  for (int i = 0; i < 2000; ++i)
    numbers[i] = std::string(i % 3 == 0   ? "+1"
                             : i % 3 == 1 ? "+44"
                                          : "+49") +
                 std::to_string(1000000 + i * 7919LL % 99999999);
  long first_half = 0, second_half = 0, matched = 0;
  Env env;
  for (int i = 0; i < 2000; ++i) {
    env.set("call.from", Value::string(numbers[i]));
    Bindings b = env.bindings();
    long before = g_news.load();
    auto r = evaluate(e.value(), b, ctx);
    long delta = g_news.load() - before;
    (i < 1000 ? first_half : second_half) += delta;
    REQUIRE(r.ok());
    matched += r.value().b;
  }
  MESSAGE("allocations: " << first_half << " in the first 1000 evaluations, " << second_half
                          << " in the next 1000");
  CHECK(matched == 2000);
  CHECK(second_half == 0);
}
