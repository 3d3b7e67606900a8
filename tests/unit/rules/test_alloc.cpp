// Proves evaluation allocates nothing: global operator new is replaced with a counting one.
#include <atomic>
#include <cstdlib>
#include <new>

#include "rules/rule_set.h"
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
