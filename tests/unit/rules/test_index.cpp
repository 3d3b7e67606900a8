// The rule-set index: which rules it covers, and that decisions are exactly the same with it
// on and off (matches, order, errors, output overflow).
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "rules/rule_set.h"
#include "rules_test_util.h"

using namespace rt;

namespace {

bool indexed(const std::string &when) {
  RuleSet rs;
  auto st = rs.add(when, "r", table());
  REQUIRE_MESSAGE(st.ok(), when << ": " << (st.ok() ? "" : st.error().message));
  return rs.indexed_rules() == 1;
}

// A decision as text: the matches or the error, for comparing index on and off.
std::string first_of(const RuleSet &rs, const Env &env, EvalContext &ctx) {
  auto r = rs.first_match(env.bindings(), ctx);
  if (!r.ok()) return "error " + std::to_string(int(r.error().code)) + " " + r.error().message;
  return std::to_string(r.value());
}

std::string all_of(const RuleSet &rs, const Env &env, EvalContext &ctx, size_t cap) {
  std::vector<uint32_t> out(cap + 1, 9999);
  auto r = rs.collect_all(env.bindings(), ctx, std::span<uint32_t>(out.data(), cap));
  if (!r.ok()) return "error " + std::to_string(int(r.error().code)) + " " + r.error().message;
  std::string s = std::to_string(r.value()) + ":";
  for (size_t i = 0; i < r.value(); ++i) s += " " + std::to_string(out[i]);
  return s;
}

}  // namespace

TEST_CASE("index: the shapes it covers") {
  const char *yes[] = {
      "call.to == 'a'",
      "'a' == call.to",
      "call.to in ['a', 'b', 'a']",
      "vars.k == null",
      "vars.k in [1, true, null, 'x']",
      "vars.n > 1 && call.to == 'a'",            // guard: vars.n is a number or null
      "call.to == 'a' && lower(vars.s) == 'x'",  // the key first: the rest is skipped anyway
      "starts_with(call.from, '+1') ? call.to == 'a' : false",
      "vars.flag ? call.to in ['a'] : null",
      "call.to == 'a' || call.to in ['b']",
      "vars.flag && call.to == 'a'",  // guard: vars.flag is a bool or null
      "len(call.from) > 3 and not contains(call.from, '9') and call.to == 'a'",
      "vars.n / 2 > 1 && vars.n % 3 == 1 && -vars.n < 0 && call.to == 'a'",
      "matches(call.from, '^\\\\+1') && call.to == 'a'",
      "(vars.a > 1 || vars.b < 'x') && call.to == 'a'",
      "vars.a < vars.b && call.to == 'a'",
      "number(vars.s) >= 1 && substr(vars.s, 1, 2) == 'x' && call.to == 'a'",
      "vars.k == vars.n && call.to == 'a'",
      "(vars.a > 1 && call.to == 'a') || (vars.b > 2 && call.to == 'b')",
      // Scratch writers: guarded by the scratch they may need (lengths of the strings).
      "lower(vars.s) == 'x' && call.to == 'a'",
      "vars.s + 'x' == 'ax' && call.to == 'a'",
      "upper(lower(vars.s) + vars.t) == 'X' && call.to == 'a'",
      "string(vars.n) == '1' && call.to == 'a'",
      "lower(substr(vars.s, 1)) == 'x' && call.to == 'a'",
      // Of several keys, the one with the fewest values.
      "vars.tier in ['gold', 'silver'] && call.to == 'a'",
  };
  for (const char *src : yes) {
    CAPTURE(src);
    CHECK(indexed(src));
  }
  const char *no[] = {
      "true",
      "call.to != 'a'",
      "call.to not in ['a']",
      "!(call.to == 'a')",
      "call.to == vars.to",
      "lower(vars.f ? vars.s : 'y') == 'x' && call.to == 'a'",  // no bound on its scratch
      "lower(string(len(vars.s))) == '1' && call.to == 'a'",
      "vars.n / vars.m > 1 && call.to == 'a'",  // division by a variable
      "vars.n / 0 > 1 && call.to == 'a'",
      "vars.x || call.to == 'a'",
      "vars.n > 1 || call.to == 'a'",
      "now() > 0 && call.to == 'a'",  // needs the context's time
      "in_schedule('office') && call.to == 'a'",
      "(vars.f ? vars.a : vars.b) > 1 && call.to == 'a'",
      "vars.flag ? call.to == 'a' : true",
  };
  for (const char *src : no) {
    CAPTURE(src);
    CHECK_FALSE(indexed(src));
  }
}

TEST_CASE("index: a rule that would fail is still evaluated (the guard)") {
  RuleSet rs;
  REQUIRE(rs.add("vars.n > 1 && call.to == 'a'", "x", table()).ok());
  REQUIRE(rs.add("true", "y", table()).ok());
  CHECK(rs.indexed_rules() == 1);
  FixedEvalContext<16> ctx;
  Env env;
  env.set("call.to", Value::string("b"));
  env.set("vars.n", Value::string("3"));  // a string: '>' fails before call.to is looked at
  for (bool on : {true, false}) {
    rs.set_indexing(on);
    auto r = rs.first_match(env.bindings(), ctx);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message == "rule 1: column 8: operator '>' cannot take string and number");
  }
  env.set("vars.n", Value::number(3));  // a number: rule 1 is false, skipped when indexing
  for (bool on : {true, false}) {
    rs.set_indexing(on);
    auto r = rs.first_match(env.bindings(), ctx);
    REQUIRE(r.ok());
    CHECK(r.value() == 1);
  }
}

TEST_CASE("index: the scratch a skipped rule would need must be there") {
  RuleSet rs;
  REQUIRE(rs.add("lower(vars.s) + '!' == 'x' && call.to == 'a'", "x", table()).ok());
  REQUIRE(rs.add("true", "y", table()).ok());
  CHECK(rs.indexed_rules() == 1);
  Env env;
  env.set("call.to", Value::string("b"));
  env.set("vars.s", Value::string("0123456789"));  // lower: 10 bytes, then + '!': 11 more
  for (size_t cap : {size_t{20}, size_t{21}, size_t{64}}) {
    std::vector<char> buf(cap);
    EvalContext ctx(buf.data(), buf.size());
    for (bool on : {true, false}) {
      rs.set_indexing(on);
      CAPTURE(cap);
      CAPTURE(on);
      auto r = rs.first_match(env.bindings(), ctx);
      if (cap < 21) {
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().message == "rule 1: column 15: scratch buffer full (20 bytes) in '+'");
      } else {
        REQUIRE(r.ok());
        CHECK(r.value() == 1);
      }
    }
  }
}

TEST_CASE("index: keys compare like ==") {
  RuleSet rs;
  REQUIRE(rs.add("vars.k == 0", "zero", table()).ok());
  REQUIRE(rs.add("vars.k in [null]", "null", table()).ok());
  REQUIRE(rs.add("vars.k == true", "true", table()).ok());
  REQUIRE(rs.add("vars.k == '1'", "string", table()).ok());
  REQUIRE(rs.add("vars.k in [1, 2]", "number", table()).ok());
  CHECK(rs.indexed_rules() == 5);
  FixedEvalContext<16> ctx;
  struct Row {
    Value v;
    int64_t want;
  };
  const Row rows[] = {
      {Value::number(0), 0},
      {Value::number(-0.0), 0},  // -0 == 0
      {Value{}, 1},
      {Value::boolean(true), 2},
      {Value::boolean(false), -1},
      {Value::string("1"), 3},
      {Value::number(1), 4},
      {Value::number(2), 4},
      {Value::number(3), -1},
      {Value::number(std::numeric_limits<double>::quiet_NaN()), -1},
      {Value::string(""), -1},
  };
  for (const auto &row : rows) {
    Env env;
    env.set("vars.k", row.v);
    for (bool on : {true, false}) {
      rs.set_indexing(on);
      CAPTURE(on);
      CAPTURE(row.want);
      auto r = rs.first_match(env.bindings(), ctx);
      REQUIRE(r.ok());
      CHECK(r.value() == row.want);
    }
  }
}

TEST_CASE("index: several variables, more than the index holds") {
  RuleSet rs;
  for (size_t v = 0; v < RuleSet::kMaxIndexes + 3; ++v)
    REQUIRE(rs.add("vars.v" + std::to_string(v) + " == 'x'", "r", table()).ok());
  CHECK(rs.indexed_rules() == RuleSet::kMaxIndexes);
  FixedEvalContext<16> ctx;
  for (size_t v = 0; v < RuleSet::kMaxIndexes + 3; ++v) {
    Env env;
    env.set("vars.v" + std::to_string(v), Value::string("x"));
    CHECK(first_of(rs, env, ctx) == std::to_string(v));
    uint32_t out[4];
    auto all = rs.collect_all(env.bindings(), ctx, out);
    REQUIRE(all.ok());
    CHECK(all.value() == 1);
    CHECK(out[0] == v);
  }
}

TEST_CASE("index: decisions are identical with and without it (random rule sets)") {
  const char *keys[] = {
      "call.to == 'A'",
      "call.to == 'B'",
      "'C' == call.to",
      "call.to in ['A', 'C']",
      "call.to in ['B', 'B', 'D']",
      "vars.k == 1",
      "vars.k in [1, 2, null]",
      "vars.k == -0",
      "vars.k == null",
      "vars.k == true",
      "vars.k in ['1', false]",
  };
  const char *preds[] = {
      "vars.n > 3",
      "vars.n <= 5",
      "vars.s < 'm'",
      "vars.flag",
      "!vars.flag",
      "starts_with(vars.s, 'a')",
      "vars.n / vars.m > 1",
      "vars.n % 2 == 0",
      "vars.n / 0 > 1",
      "lower(vars.s) == 'abc'",
      "vars.n + 1 > 2",
      "len(vars.s) > 2",
      "vars.n < vars.m",
      "matches(vars.s, '^a')",
      "vars.s + vars.s == 'aa'",
      "-vars.n < 0",
      "vars.n",
      "number(vars.s) > 1",
      "substr(vars.s, vars.n) == 'b'",
      "(vars.flag ? vars.n : vars.m) > 1",
      "vars.k == vars.n",
      "vars.n != null",
      "contains(vars.s, 'b') or vars.flag",
      "vars.m / 2 >= 0",
      "regex_extract(vars.s, 'b+') == 'bb'",
      "upper(vars.s + 'b') == 'AB'",
      "string(vars.n) == '4'",
      "lower(string(vars.s)) + vars.s == 'abcabc'",
      "upper(substr(vars.s, 1)) == 'BC'",
  };
  const char *shapes[] = {
      "K",
      "(P) && K",
      "K && (P)",
      "(P) && (Q) && K",
      "(P) ? K : false",
      "(P) ? K : null",
      "(P) ? K : L",
      "K || L",
      "(P) || K",
      "((P) && K) || ((Q) && L)",
      "K && ((P) || (Q))",
      "!(K)",
      "(P) ? K : (Q)",
      "(P) and (K)",
      "(P) && (K || L)",
      "not (P) && K",
      "(P) && K && (Q)",
      "(P) ? ((Q) ? K : false) : L",
  };
  std::vector<Value> to_vals = {Value{},
                                Value::string("A"),
                                Value::string("B"),
                                Value::string("C"),
                                Value::string("D"),
                                Value::string("E"),
                                Value::number(1),
                                Value::boolean(true)};
  std::vector<Value> k_vals = {Value{},
                               Value::number(1),
                               Value::number(2),
                               Value::number(-0.0),
                               Value::number(0),
                               Value::boolean(true),
                               Value::boolean(false),
                               Value::string("1"),
                               Value::number(std::numeric_limits<double>::quiet_NaN())};
  std::vector<Value> n_vals = {Value{},
                               Value::number(0),
                               Value::number(1),
                               Value::number(4),
                               Value::number(7),
                               Value::number(-2),
                               Value::number(std::numeric_limits<double>::quiet_NaN()),
                               Value::string("x"),
                               Value::boolean(true)};
  std::vector<Value> m_vals = {Value{}, Value::number(0), Value::number(2), Value::string("y"),
                               Value::boolean(false)};
  std::vector<Value> s_vals = {Value{},
                               Value::string(""),
                               Value::string("abc"),
                               Value::string("Abc"),
                               Value::string("bbd"),
                               Value::string("aa"),
                               Value::string("zz"),
                               Value::number(5)};
  std::vector<Value> flag_vals = {Value{}, Value::boolean(true), Value::boolean(false),
                                  Value::number(1), Value::string("y")};

  std::mt19937 rng(20261124);
  auto pick = [&](auto &list) -> decltype(list[0]) { return list[rng() % std::size(list)]; };
  auto fill = [&](std::string shape) {
    auto put = [&](char c, const char *with) {
      for (size_t at; (at = shape.find(c)) != std::string::npos;) shape.replace(at, 1, with);
    };
    put('K', pick(keys));
    put('L', pick(keys));
    put('P', pick(preds));
    put('Q', pick(preds));
    return shape;
  };

  size_t sets = 0, rules_total = 0, rules_indexed = 0, decisions = 0, errors = 0, matches = 0;
  for (int set = 0; set < 400; ++set) {
    RuleSet rs;
    size_t n = 1 + rng() % 12;
    for (size_t i = 0; i < n; ++i) {
      std::string src = fill(pick(shapes));
      auto st = rs.add(src, "r" + std::to_string(i % 3), table());
      REQUIRE_MESSAGE(st.ok(), src << ": " << (st.ok() ? "" : st.error().message));
    }
    ++sets;
    rules_total += rs.size();
    rules_indexed += rs.indexed_rules();
    for (int b = 0; b < 60; ++b) {
      Env env;
      env.set("call.to", pick(to_vals));
      env.set("vars.k", pick(k_vals));
      env.set("vars.n", pick(n_vals));
      env.set("vars.m", pick(m_vals));
      env.set("vars.s", pick(s_vals));
      env.set("vars.flag", pick(flag_vals));
      size_t scratch_sizes[] = {0, 2, 8, 64};
      std::vector<char> buf(scratch_sizes[rng() % 4]);
      EvalContext ctx(buf.data(), buf.size());
      size_t cap = rng() % 4 == 0 ? rng() % 3 : 16;
      rs.set_indexing(false);
      std::string first_off = first_of(rs, env, ctx), all_off = all_of(rs, env, ctx, cap);
      rs.set_indexing(true);
      std::string first_on = first_of(rs, env, ctx), all_on = all_of(rs, env, ctx, cap);
      if (first_on != first_off || all_on != all_off) {
        std::string rules;
        for (size_t i = 0; i < rs.size(); ++i) rules += "\n  " + rs.rule(i).when.source();
        FAIL_CHECK("index changed a decision; rules:" << rules << "\nfirst: " << first_off << " / "
                                                      << first_on << "\nall: " << all_off << " / "
                                                      << all_on);
      }
      ++decisions;
      errors += first_off.rfind("error", 0) == 0;
      matches += first_off != "-1" && first_off.rfind("error", 0) != 0;
    }
  }
  MESSAGE(sets << " sets, " << rules_total << " rules (" << rules_indexed << " indexed), "
               << decisions << " decisions: " << matches << " matched, " << errors << " failed");
  // Not vacuous: the index covers many rules, and decisions cover matches and errors.
  CHECK(rules_indexed * 4 > rules_total);
  CHECK(errors * 10 > decisions);
  CHECK(matches * 10 > decisions);
}
