// matches() and regex_extract(): RE2 patterns compiled once, linear-time matching.
#include <chrono>
#include <string>

#include "rules_test_util.h"

using namespace rt;

TEST_CASE("matches: RE2 semantics, a match anywhere unless anchored") {
  Env env;
  env.set("call.from", Value::string("+442071234567"));
  CHECK(boolean("matches(call.from, '^\\\\+44')", env));
  CHECK(boolean("matches(call.from, '1234')", env));  // anywhere
  CHECK_FALSE(boolean("matches(call.from, '^1234')", env));
  CHECK(boolean("matches(call.from, '^\\\\+44\\\\d{10}$')", env));
  CHECK_FALSE(boolean("matches(call.from, '^\\\\+44\\\\d{9}$')", env));
  CHECK(boolean("matches(call.from, \"^\\\\+(44|33)20\")", env));
  CHECK(boolean("matches('ACME Corp', '(?i)^acme')"));
  CHECK_FALSE(boolean("matches('ACME Corp', '^acme')"));
  CHECK(boolean("matches('abc', '')"));  // the empty pattern matches everywhere
  CHECK(boolean("matches('', '^$')"));
  CHECK(boolean("matches('a\\nb', '(?m)^b$')"));
  CHECK(boolean("matches('gold', 'gold|platinum') && !matches('bronze', 'gold|platinum')"));
  // Patterns are UTF-8 (RE2's default): '.' is one code point.
  CHECK(boolean("matches('é', '^.$')"));
  CHECK_FALSE(boolean("matches('é', '^..$')"));
  // A byte that is not valid UTF-8 is matched by no '.'.
  Env bad;
  bad.set("vars.s", Value::string("\xff"));
  CHECK_FALSE(boolean("matches(vars.s, '.')", bad));
  CHECK(boolean("matches(vars.s, '')", bad));
}

TEST_CASE("regex_extract: the leftmost match as a view into the input") {
  Env env;
  env.set("call.from", Value::string("+442071234567"));
  CHECK(str("regex_extract(call.from, '\\\\d{4}$')", env) == "4567");
  CHECK(str("regex_extract(call.from, '^\\\\+\\\\d{2}')", env) == "+44");
  CHECK(str("regex_extract('order 66 and 99', '\\\\d+')") == "66");  // leftmost
  CHECK(str("regex_extract('abc', 'b*')") == "");                    // empty match at 0
  CHECK(is_null("regex_extract('abc', 'z')"));                       // no match: null
  CHECK(str("regex_extract('Ticket: AB-123', '[A-Z]{2}-(?:\\\\d+)')") == "AB-123");
  // The result is a view into the binding: no scratch needed.
  auto e = compile("regex_extract(call.from, '\\\\d{3}$')", table());
  REQUIRE(e.ok());
  EvalContext empty(nullptr, 0);
  auto r = evaluate(e.value(), env.bindings(), empty);
  REQUIRE(r.ok());
  CHECK(r.value().s == "567");
  CHECK(r.value().s.data() == env.values[table().resolve("call.from").value()].s.data() + 10);
  // Composes with the other functions.
  CHECK(num("number(regex_extract('score=42;', '\\\\d+')) + 1") == 43);
  CHECK(str("upper(regex_extract('id: abc-9', '[a-z]+-\\\\d'))") == "ABC-9");
}

TEST_CASE("regex functions and null") {
  Env env;  // everything missing
  CHECK(is_null("matches(vars.x, 'a')", env));
  CHECK(is_null("regex_extract(vars.x, 'a')", env));
  CHECK(is_null("matches(null, 'a')", env));
  CHECK_FALSE(boolean("matches(vars.x, 'a') || false", env));  // null is false in && / ||
  CHECK(boolean("!matches(vars.x, 'a')", env));
  CHECK(is_null("matches(regex_extract('abc', 'z'), '.')", env));
}

TEST_CASE("regex compile errors carry a column and RE2's reason") {
  struct Row {
    const char *src;
    const char *want;
  };
  const Row rows[] = {
      // The column points into the literal when it has no escapes...
      {"matches(call.from, '(a')", "column 21: bad pattern for matches: missing ): (a"},
      {"matches(call.from, 'ab**')",
       "column 23: bad pattern for matches: bad repetition operator: **"},
      {"matches(call.from, 'x{2000}')",
       "column 22: bad pattern for matches: invalid repetition size: {2000}"},
      {"regex_extract(call.from, '[z-a]')",
       "column 28: bad pattern for regex_extract: invalid character class range: z-a"},
      // ...and at the literal when escapes moved the text.
      {"matches(call.from, '\\\\q')",
       "column 20: bad pattern for matches: invalid escape sequence: \\q"},
      // Too big for the pattern's memory budget.
      {"matches(call.from, '\\\\pL{1000}')",
       "column 20: bad pattern for matches: pattern too large - compile failed"},
      // The pattern must be a literal (compiled once), a string.
      {"matches(call.from, call.to)",
       "column 20: argument 2 of matches must be a string literal (patterns are compiled once)"},
      {"matches(call.from, 'a' + 'b')",
       "column 24: argument 2 of matches must be a string literal (patterns are compiled once)"},
      {"matches(call.from, null)",
       "column 20: argument 2 of matches must be a string literal (patterns are compiled once)"},
      {"matches(call.from, 1)", "column 20: argument 2 of matches must be a string, got number"},
      {"matches(1, 'a')", "column 9: argument 1 of matches must be a string, got number"},
      {"matches(call.from)", "column 1: matches expects 2 arguments, got 1"},
      {"regex_extract(call.from, '(\\\\d+)')",
       "column 26: regex_extract returns the whole match: write (?:...) instead of a capturing "
       "group"},
      {"macthes(call.from, 'a')", "column 1: unknown function 'macthes'"},
  };
  for (const auto &r : rows) {
    std::string src = r.src;
    CAPTURE(src);
    CHECK(compile_error(r.src) == r.want);
  }
  // The lexer's escapes come first: RE2's backslash must be written twice.
  CHECK(compile_error("matches(call.from, '^\\+44')") ==
        "column 22: unknown escape '\\+' in string");
}

TEST_CASE("regex run-time type errors name the function") {
  Env env;
  env.set("vars.n", Value::number(3));
  CHECK(eval_error("matches(vars.n, 'a')", env) ==
        "column 1: function 'matches' cannot take number");
  CHECK(eval_error("1 + len(regex_extract(vars.n, 'a'))", env) ==
        "column 9: function 'regex_extract' cannot take number");
}

TEST_CASE("no catastrophic backtracking: (a+)+$ over 100 000 a's and a b") {
  // A backtracking engine needs about 2^n steps here; RE2 is linear in the input.
  std::string text(100000, 'a');
  text += 'b';
  Env env;
  env.set("vars.s", Value::string(text));
  const char *patterns[] = {"(a+)+$", "^(a|aa)+$", "(a*)*b$", "^(a|a?)+c", "(?:a+a+)+c"};
  for (const char *p : patterns) {
    std::string src = std::string("matches(vars.s, '") + p + "')";
    CAPTURE(src);
    auto t0 = std::chrono::steady_clock::now();
    bool want = std::string(p) == "(a*)*b$";
    CHECK(boolean(src, env) == want);
    auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0);
    MESSAGE(src << " over " << text.size() << " bytes: " << ms.count() << " ms");
  }
  CHECK(num("len(regex_extract(vars.s, 'a+b'))", env) == 100001);
}

TEST_CASE("a compiled pattern is shared by every evaluation and survives a move") {
  auto compiled = compile(
      "matches(call.from, '^\\\\+1') ? regex_extract(call.from, '\\\\d{4}$') : 'x'", table());
  REQUIRE(compiled.ok());
  Expression e = std::move(compiled).value();
  Expression moved = std::move(e);
  FixedEvalContext<16> ctx;
  Env us, uk;
  us.set("call.from", Value::string("+15551234567"));
  uk.set("call.from", Value::string("+442071234567"));
  for (int i = 0; i < 3; ++i) {
    auto a = evaluate(moved, us.bindings(), ctx);
    REQUIRE(a.ok());
    CHECK(a.value().s == "4567");
    auto b = evaluate(moved, uk.bindings(), ctx);
    REQUIRE(b.ok());
    CHECK(b.value().s == "x");
  }
}
