#include "rules_test_util.h"

using namespace rt;

TEST_CASE("literals") {
  CHECK(num("42") == 42);
  CHECK(num("3.25") == 3.25);
  CHECK(num("1e3") == 1000);
  CHECK(num(".5") == 0.5);
  CHECK(str("'single'") == "single");
  CHECK(str("\"double\"") == "double");
  CHECK(str(R"('it\'s')") == "it's");
  CHECK(str(R"("a\\b\"c")") == "a\\b\"c");
  CHECK(str(R"('x\ny\t')") == "x\ny\t");
  CHECK(boolean("true"));
  CHECK_FALSE(boolean("false"));
  CHECK(is_null("null"));
}

TEST_CASE("precedence table") {
  struct Row {
    const char *src;
    double want;
  };
  const Row rows[] = {
      {"1 + 2 * 3", 7}, {"(1 + 2) * 3", 9}, {"10 - 4 - 3", 3},    {"2 * 3 % 4", 2},
      {"-2 * 3", -6},   {"- -2", 2},        {"-(1 + 2)", -3},     {"8 / 2 / 2", 2},
      {"1 - -1", 2},    {"7 % 3 + 1", 2},   {"2 + 3 * 4 - 5", 9},
  };
  for (const auto &r : rows) {
    std::string src = r.src;
    CAPTURE(src);
    CHECK(num(r.src) == r.want);
  }
  CHECK(boolean("1 + 2 * 3 == 7"));
  CHECK(boolean("1 < 2 == true"));  // relational binds tighter than equality
  CHECK(boolean("1 + 1 in [2, 3]"));
}

TEST_CASE("boolean precedence: ! over && over ||") {
  for (int bits = 0; bits < 8; ++bits) {
    bool a = bits & 1, b = bits & 2, c = bits & 4;
    Env env;
    env.set("vars.a", Value::boolean(a));
    env.set("vars.b", Value::boolean(b));
    env.set("vars.c", Value::boolean(c));
    CAPTURE(bits);
    CHECK(boolean("!vars.a && vars.b || vars.c", env) == ((!a && b) || c));
    CHECK(boolean("vars.a || vars.b && vars.c", env) == (a || (b && c)));
    CHECK(boolean("not vars.a and vars.b or vars.c", env) == ((!a && b) || c));
    CHECK(boolean("!(vars.a || vars.b)", env) == !(a || b));
  }
}

TEST_CASE("ternary nesting is right-associative") {
  CHECK(num("true ? 1 : 2") == 1);
  CHECK(num("false ? 1 : 2") == 2);
  CHECK(num("false ? 1 : true ? 2 : 3") == 2);
  CHECK(num("false ? 1 : false ? 2 : 3") == 3);
  CHECK(num("true ? false ? 1 : 2 : 3") == 2);
  CHECK(num("1 < 2 ? 10 + 1 : 20") == 11);
  CHECK(str("null ? 'a' : 'b'") == "b");  // null condition is false
}

TEST_CASE("comparisons") {
  CHECK(boolean("1 < 2"));
  CHECK(boolean("2 <= 2"));
  CHECK_FALSE(boolean("2 > 2"));
  CHECK(boolean("3 >= 2"));
  CHECK(boolean("'abc' < 'abd'"));
  CHECK(boolean("'b' > 'abc'"));
  CHECK(boolean("'x' == 'x'"));
  CHECK(boolean("'x' != 'y'"));
  CHECK_FALSE(boolean("1 == '1'"));  // different types are never equal
  CHECK(boolean("1 != '1'"));
  CHECK(boolean("true == true"));
}

TEST_CASE("variables") {
  Env env;
  env.set("call.from", Value::string("+15551234"));
  env.set("vars.lead.score", Value::number(80));
  CHECK(boolean("vars.lead.score >= 75 && starts_with(call.from, '+1555')", env));
  CHECK(num("vars.lead.score / 4", env) == 20);
  CHECK(table().slot_of("vars.lead.score") >= 0);
}

TEST_CASE("in lists") {
  Env env;
  env.set("call.to", Value::string("200"));
  CHECK(boolean("call.to in ['100', '200']", env));
  CHECK_FALSE(boolean("call.to in ['100', 200]", env));
  CHECK(boolean("call.to not in ['300']", env));
  CHECK_FALSE(boolean("call.to not in ['200']", env));
  CHECK(boolean("-1 in [1, -1]"));
  CHECK_FALSE(boolean("1 in []"));
  CHECK(boolean("null in [1, null]"));
  CHECK(boolean("true in [false, true]"));
}

TEST_CASE("null semantics") {
  Env env;  // every variable is missing, so null
  CHECK(is_null("vars.x", env));
  CHECK(is_null("vars.x + 1", env));
  CHECK(is_null("1 * vars.x", env));
  CHECK(is_null("-vars.x", env));
  CHECK(is_null("vars.x / 0", env));  // null wins over division by zero
  CHECK(is_null("'a' + vars.x", env));
  CHECK_FALSE(boolean("vars.x < 1", env));
  CHECK_FALSE(boolean("vars.x >= 1", env));
  CHECK_FALSE(boolean("vars.x > 'a'", env));
  CHECK_FALSE(boolean("vars.x == 0", env));
  CHECK(boolean("vars.x != 0", env));
  CHECK(boolean("vars.x == null", env));
  CHECK_FALSE(boolean("vars.x != null", env));
  CHECK_FALSE(boolean("vars.x && true", env));
  CHECK(boolean("vars.x || true", env));
  CHECK(boolean("!vars.x", env));
  CHECK(is_null("lower(vars.x)", env));
  CHECK(is_null("upper(vars.x)", env));
  CHECK(is_null("len(vars.x)", env));
  CHECK(is_null("substr(vars.x, 1)", env));
  CHECK(is_null("starts_with(vars.x, 'a')", env));
  CHECK(is_null("contains('abc', vars.x)", env));
  CHECK(is_null("number(vars.x)", env));
  CHECK(is_null("string(vars.x)", env));
  CHECK_FALSE(boolean("vars.x in [1]", env));
  // Bindings shorter than the slot table read as null.
  auto e = compile("vars.never_bound == null", table());
  REQUIRE(e.ok());
  FixedEvalContext<16> ctx;
  auto r = evaluate(e.value(), Bindings{}, ctx);
  REQUIRE(r.ok());
  CHECK(r.value().b);
}

TEST_CASE("string functions, byte semantics") {
  CHECK(str("lower('HeLLo 1')") == "hello 1");
  CHECK(str("upper('abc-z')") == "ABC-Z");
  CHECK(str("upper('é')") == "é");  // ASCII only: other bytes pass through
  CHECK(num("len('abc')") == 3);
  CHECK(num("len('é')") == 2);  // bytes, not code points
  CHECK(num("len('')") == 0);
  CHECK(boolean("starts_with('+1555', '+1')"));
  CHECK_FALSE(boolean("starts_with('+1555', '+2')"));
  CHECK(boolean("ends_with('file.wav', '.wav')"));
  CHECK(boolean("contains('hello', 'll')"));
  CHECK(boolean("contains('hello', '')"));
  CHECK(str("substr('abcdef', 2)") == "cdef");
  CHECK(str("substr('abcdef', 1, 3)") == "bcd");
  CHECK(str("substr('abc', 5)") == "");
  CHECK(str("substr('abc', -2, 2)") == "ab");
  CHECK(str("substr('abc', 1, 99)") == "bc");
  CHECK(str("substr('abc', 1.9, 1)") == "b");  // indices truncate
  CHECK(str("'con' + 'cat'") == "concat");
  CHECK(str("'a' + 'b' + 'c' + upper('d')") == "abcD");
}

TEST_CASE("number and string conversions") {
  CHECK(num("number('42')") == 42);
  CHECK(num("number('-1.5')") == -1.5);
  CHECK(is_null("number('4x')"));
  CHECK(is_null("number('')"));
  CHECK(num("number(true)") == 1);
  CHECK(num("number(7)") == 7);
  CHECK(str("string(3)") == "3");
  CHECK(str("string(2.50)") == "2.5");
  CHECK(str("string(0.1)") == "0.1");
  CHECK(str("string(-12)") == "-12");
  CHECK(str("string(1 / 4)") == "0.25");
  CHECK(str("string(true)") == "true");
  CHECK(str("string('s')") == "s");
  CHECK(str("'n=' + string(10 / 2)") == "n=5");
}

TEST_CASE("short-circuit: the right side is not evaluated") {
  CHECK_FALSE(boolean("false && 1 / 0 == 1"));
  CHECK(boolean("true || 1 / 0 == 1"));
  CHECK(boolean("null || true"));
  CHECK(num("true ? 1 : 1 / 0") == 1);
  CHECK(num("false ? 1 / 0 : 2") == 2);
  // ...and it is evaluated when needed.
  CHECK(eval_error("true && 1 / 0 == 1") == "column 11: division by zero in '/'");
}

TEST_CASE("compile errors name the column and the reason") {
  struct Row {
    const char *src;
    const char *want;
  };
  const Row rows[] = {
      {"substr('a', 1", "column 14: expected ')' after arguments of substr, got end of input"},
      {"lower(call.from x", "column 17: expected ')' after arguments of lower, got 'x'"},
      {"lowr(call.from)", "column 1: unknown function 'lowr'"},
      {"call.to == 1 && cal.from", "column 17: unknown variable 'cal.from'"},
      {"substr('a')", "column 1: substr expects 2 or 3 arguments, got 1"},
      {"len('a', 'b')", "column 1: len expects 1 argument, got 2"},
      {"'a' * 2", "column 5: operator '*' cannot take string and number"},
      {"1 + 'a'", "column 3: operator '+' cannot take number and string"},
      {"true + 1", "column 6: operator '+' cannot take bool and number"},
      {"1 < 'a'", "column 3: operator '<' cannot take number and string"},
      {"-'a'", "column 1: operator '-' cannot take string"},
      {"!1", "column 1: operator '!' expects a bool, got number"},
      {"1 && true", "column 3: operator '&&' expects a bool, got number"},
      {"'x' ? 1 : 2", "column 5: operator '?:' expects a bool, got string"},
      {"lower(1)", "column 7: argument 1 of lower must be a string, got number"},
      {"substr('a', 'b')", "column 13: argument 2 of substr must be a number, got string"},
      {"", "column 1: expected an expression, got end of input"},
      {"1 +", "column 4: expected an expression, got end of input"},
      {"(1 + 2", "column 7: expected ')', got end of input"},
      {"1 2", "column 3: unexpected '2' after the expression"},
      {"'abc", "column 1: unterminated string"},
      {"'a\\q'", "column 3: unknown escape '\\q' in string"},
      {"1 # 2", "column 3: unexpected character '#'"},
      {"1 \x01", "column 3: unexpected byte 0x01"},
      {"1 in [1", "column 8: expected ',' or ']' in list, got end of input"},
      {"not in [1]", "column 1: expected an expression, got 'not'"},
      {"call.lower('A')", "column 1: unknown function 'call.lower'"},
      {"12abc", "column 1: malformed number '12abc'"},
      {"1.2.3", "column 1: malformed number '1.2.3'"},
      {"true ? 1", "column 9: expected ':' in conditional, got end of input"},
      {"1 in 2", "column 6: expected '[' after 'in', got '2'"},
      {"1 in [call.from]", "column 7: list items must be literals, got 'call.from'"},
      {"1 in [1 2]", "column 9: expected ',' or ']' in list, got '2'"},
      {"call.from.(1)", "column 10: unexpected character '.'"},
      {"and", "column 1: expected an expression, got 'and'"},
      {"substr('a', 1, 2, 3)", "column 19: too many arguments to substr"},
  };
  for (const auto &r : rows) {
    std::string src = r.src;
    CAPTURE(src);
    CHECK(compile_error(r.src) == r.want);
  }
}

TEST_CASE("nesting depth is bounded") {
  std::string deep(300, '(');
  deep += "1";
  deep += std::string(300, ')');
  CHECK(compile_error(deep).find("nested too deeply") != std::string::npos);
  std::string chain = "1";
  for (int i = 0; i < 300; ++i) chain += " + 1";
  CHECK(compile_error(chain).find("nested too deeply") != std::string::npos);
  std::string ok = "1";
  for (int i = 0; i < 100; ++i) ok += " + 1";
  CHECK(num(ok) == 101);
}

TEST_CASE("run-time errors name the operator and its column") {
  Env env;
  env.set("vars.s", Value::string("abc"));
  env.set("vars.n", Value::number(2));
  env.set("vars.b", Value::boolean(true));
  CHECK(eval_error("vars.n * vars.s", env) ==
        "column 8: operator '*' cannot take number and string");
  CHECK(eval_error("vars.s + vars.n", env) ==
        "column 8: operator '+' cannot take string and number");
  CHECK(eval_error("vars.s < vars.n", env) ==
        "column 8: operator '<' cannot take string and number");
  CHECK(eval_error("-vars.s", env) == "column 1: operator '-' cannot take string");
  CHECK(eval_error("vars.n && true", env) == "column 8: operator '&&' expects a bool, got number");
  CHECK(eval_error("vars.b && vars.s", env) ==
        "column 8: operator '&&' expects a bool, got string");
  CHECK(eval_error("vars.s ? 1 : 2", env) == "column 8: operator '?:' expects a bool, got string");
  CHECK(eval_error("!vars.s", env) == "column 1: operator '!' expects a bool, got string");
  CHECK(eval_error("lower(vars.n)", env) == "column 1: function 'lower' cannot take number");
  CHECK(eval_error("substr(vars.n, 1)", env) ==
        "column 1: function 'substr' cannot take number and number");
  CHECK(eval_error("vars.n / 0", env) == "column 8: division by zero in '/'");
  CHECK(eval_error("5 % (vars.n - 2)", env) == "column 3: division by zero in '%'");
  auto r = run("vars.n / 0", env);
  CHECK(r.error().code == ivr::Errc::invalid_argument);
}

TEST_CASE("scratch exhaustion is an error, not an allocation") {
  Env env;
  env.set("vars.s", Value::string("0123456789"));
  auto ok = run("vars.s + vars.s", env, 20);
  REQUIRE(ok.ok());
  CHECK(ok.value().s == "01234567890123456789");
  auto full = run("vars.s + vars.s", env, 19);
  REQUIRE_FALSE(full.ok());
  CHECK(full.error().code == ivr::Errc::no_memory);
  CHECK(full.error().message == "column 8: scratch buffer full (19 bytes) in '+'");
  CHECK(eval_error("upper(vars.s) + 'x'", env, 10) ==
        "column 15: scratch buffer full (10 bytes) in '+'");
  CHECK(eval_error("upper(vars.s)", env, 9) ==
        "column 1: scratch buffer full (9 bytes) in 'upper'");
  CHECK(eval_error("string(1.5)", env, 2) == "column 1: scratch buffer full (2 bytes) in 'string'");
  // Functions that return views (substr, string of a string) need no scratch.
  auto view = run("substr(vars.s, 2, 3)", env, 0);
  REQUIRE(view.ok());
  CHECK(view.value().s == "234");
}

TEST_CASE("compiled once, evaluated many times; survives a move") {
  auto compiled = compile(
      "call.from == 'a long literal that does not fit in a small string buffer' ? 'yes' : 'no'",
      table());
  REQUIRE(compiled.ok());
  Expression moved = std::move(compiled).value();
  Expression e;
  e = std::move(moved);
  CHECK(e.node_count() > 0);
  FixedEvalContext<8> ctx;
  Env hit, miss;
  hit.set("call.from", Value::string("a long literal that does not fit in a small string buffer"));
  miss.set("call.from", Value::string("other"));
  for (int i = 0; i < 3; ++i) {
    auto a = evaluate(e, hit.bindings(), ctx);
    auto b = evaluate(e, miss.bindings(), ctx);
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    CHECK(a.value().s == "yes");
    CHECK(b.value().s == "no");
  }
  Expression empty;
  auto r = evaluate(empty, Bindings{}, ctx);
  CHECK_FALSE(r.ok());
}

TEST_CASE("variable table: roots and slots") {
  VariableTable t({"call"});
  auto a = t.resolve("call.from");
  auto b = t.resolve("call.to");
  auto c = t.resolve("call.from");
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  REQUIRE(c.ok());
  CHECK(a.value() != b.value());
  CHECK(a.value() == c.value());
  CHECK(t.size() == 2);
  auto bad = t.resolve("vars.x");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message == "unknown variable 'vars.x'");
  CHECK(t.slot_of("call.nope") == -1);
  auto e = compile("call.from == 1 && vars.x", t);
  REQUIRE_FALSE(e.ok());
  CHECK(e.error().message == "column 19: unknown variable 'vars.x'");
}
