#include "rules/rule_set.h"
#include "rules_test_util.h"

using namespace rt;

namespace {
RuleSet routing() {
  RuleSet rs;
  REQUIRE(rs.add("vars.lead.score >= 90", "vip", table()).ok());
  REQUIRE(rs.add("starts_with(call.from, '+44')", "uk", table()).ok());
  REQUIRE(rs.add("vars.lead.score >= 50", "warm", table()).ok());
  REQUIRE(rs.add("call.from == null", "anonymous", table()).ok());
  REQUIRE(rs.add("true", "warm", table()).ok());  // same result name, same index
  return rs;
}
}  // namespace

TEST_CASE("rule set: first match") {
  RuleSet rs = routing();
  CHECK(rs.size() == 5);
  CHECK(rs.results().size() == 4);
  CHECK(rs.rule(4).then == rs.rule(2).then);
  FixedEvalContext<64> ctx;

  Env vip;
  vip.set("vars.lead.score", Value::number(95));
  vip.set("call.from", Value::string("+4420"));
  auto r = rs.first_match(vip.bindings(), ctx);
  REQUIRE(r.ok());
  CHECK(r.value() == 0);
  CHECK(rs.result_name(rs.rule(0).then) == "vip");

  Env uk;
  uk.set("vars.lead.score", Value::number(60));
  uk.set("call.from", Value::string("+4420"));
  r = rs.first_match(uk.bindings(), ctx);
  REQUIRE(r.ok());
  CHECK(rs.result_name(rs.rule(static_cast<size_t>(r.value())).then) == "uk");

  Env anon;  // no score, no caller: null comparisons are false
  r = rs.first_match(anon.bindings(), ctx);
  REQUIRE(r.ok());
  CHECK(r.value() == 3);
}

TEST_CASE("rule set: no match") {
  RuleSet rs;
  REQUIRE(rs.add("vars.x == 1", "one", table()).ok());
  REQUIRE(rs.add("vars.x", "truthy", table()).ok());  // null when → no match
  FixedEvalContext<16> ctx;
  auto r = rs.first_match(Bindings{}, ctx);
  REQUIRE(r.ok());
  CHECK(r.value() == -1);
  uint32_t out[4];
  auto all = rs.collect_all(Bindings{}, ctx, out);
  REQUIRE(all.ok());
  CHECK(all.value() == 0);
}

TEST_CASE("rule set: collect all") {
  RuleSet rs = routing();
  FixedEvalContext<64> ctx;
  Env env;
  env.set("vars.lead.score", Value::number(95));
  env.set("call.from", Value::string("+4420"));
  uint32_t out[8];
  auto all = rs.collect_all(env.bindings(), ctx, out);
  REQUIRE(all.ok());
  REQUIRE(all.value() == 4);
  CHECK(out[0] == 0);
  CHECK(out[1] == 1);
  CHECK(out[2] == 2);
  CHECK(out[3] == 4);
  uint32_t small[2];
  auto over = rs.collect_all(env.bindings(), ctx, small);
  REQUIRE_FALSE(over.ok());
  CHECK(over.error().code == ivr::Errc::no_memory);
  CHECK(over.error().message.find("rule 3:") == 0);
}

TEST_CASE("rule set: errors carry the rule number") {
  RuleSet rs;
  REQUIRE(rs.add("true", "a", table()).ok());
  auto bad = rs.add("lowr(call.from)", "b", table());
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == ivr::Errc::parse);
  CHECK(bad.error().message == "rule 2: column 1: unknown function 'lowr'");
  CHECK(rs.size() == 1);

  RuleSet rt;
  REQUIRE(rt.add("vars.n / 0 == 1", "x", table()).ok());
  REQUIRE(rt.add("1 + 1", "y", table()).ok());
  Env env;
  env.set("vars.n", Value::number(3));
  FixedEvalContext<16> ctx;
  auto r = rt.first_match(env.bindings(), ctx);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message == "rule 1: column 8: division by zero in '/'");

  RuleSet nb;
  REQUIRE(nb.add("1 + 1", "y", table()).ok());
  r = nb.first_match(env.bindings(), ctx);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message == "rule 1: 'when' must yield a bool, got number");
}
