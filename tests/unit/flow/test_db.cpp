// The db verb: validation (literal statements, bound parameters), the query each call
// renders, typed rows into variables, and its exits, through the simulator.
#include "flow_test_util.h"

using namespace ivr::flow;
using flowtest::path_text;
using flowtest::var;

namespace {

SimulationResult run(const std::string &doc, SimulationOptions o = {}) {
  return simulate(flowtest::must_compile(doc), o);
}

SimDbReply rows(std::vector<std::string> columns, std::vector<std::vector<ivr::db::Cell>> data,
                uint32_t delay_ms = 20) {
  SimDbReply r;
  r.rows.columns = std::move(columns);
  r.rows.rows = std::move(data);
  r.delay_ms = delay_ms;
  return r;
}

SimDbReply failure(const char *reason, const char *error) {
  SimDbReply r;
  r.reason = reason;
  r.error = error;
  return r;
}

const char *kLookup = R"J({"flow": "crm", "start": "lookup", "nodes": {
  "lookup": {"verb": "db", "connector": "crm",
             "query": "SELECT tier, name, score, vip, balance FROM customers WHERE phone = $1 AND region = $2 AND note IS $3",
             "params": ["{{call.from}}", "eu-{{vars.region}}", null, 42, true],
             "timeout_ms": 1500, "max_rows": 2,
             "map": {"tier": "tier", "vars.who": "name", "missing": "no_such_column"},
             "next": "found", "on_empty": "unknown", "on_error": "failed", "on_timeout": "slow"},
  "found": {"verb": "if", "condition": "vars.tier == 'gold' && steps.lookup.row.score > 5 && steps.lookup.row.vip",
            "then": "vip", "else": "plain"},
  "vip": {"verb": "hangup", "reason": "vip {{vars.who}} {{steps.lookup.rows}} {{steps.lookup.row.balance}}"},
  "plain": {"verb": "hangup", "reason": "plain {{vars.tier}}"},
  "unknown": {"verb": "hangup", "reason": "unknown {{steps.lookup.rows}}"},
  "failed": {"verb": "hangup", "reason": "failed {{steps.lookup.reason}}: {{steps.lookup.error}}"},
  "slow": {"verb": "hangup", "reason": "slow {{steps.lookup.reason}}"}}})J";

}  // namespace

TEST_CASE("db: validation names every bad field and refuses templated statements") {
  std::string t = flowtest::problems_text(R"J({"flow": "f", "start": "a", "nodes": {
    "a": {"verb": "db", "connector": "not a name",
          "query": "SELECT * FROM t WHERE id = '{{call.from}}'", "params": [{}, [1]],
          "timeout_ms": 5, "max_rows": 0, "map": {"call.x": "a", "ok": 3, "e": ""},
          "on_empty": "nowhere", "bogus": 1, "next": "b"},
    "b": {"verb": "db", "query": "   ", "next": "c"},
    "c": {"verb": "db", "connector": "crm", "next": "d"},
    "d": {"verb": "hangup"}}})J");
  for (const char *want : {
           "/nodes/a/connector: connector names a database connector",
           "/nodes/a/query: query is literal, not a template",
           "/nodes/a/params/0: a parameter is a string (template), number, boolean or null",
           "/nodes/a/params/1: a parameter is",
           "/nodes/a/timeout_ms: must be an integer from 100 to 60000",
           "/nodes/a/max_rows: must be an integer from 1 to 10000",
           "/nodes/a/map/call.x: map sets flow variables",
           "/nodes/a/map/ok: a column name of the first row",
           "/nodes/a/map/e: a column name of the first row",
           "/nodes/a/on_empty: no node named \"nowhere\"",
           "/nodes/a/bogus: unknown field \"bogus\" for verb \"db\"",
           "/nodes/b: missing required field \"connector\"",
           "/nodes/b/query: query is empty",
           "/nodes/c: missing required field \"query\"",
       }) {
    INFO(want);
    INFO(t);
    CHECK(t.find(want) != std::string::npos);
  }
}

TEST_CASE("db: parameters are rendered and bound, never spliced into the statement") {
  SimulationOptions o;
  o.call.from = "+1555'; DROP TABLE customers; --";
  o.vars["region"] = "west";
  o.db["lookup"] = {rows({"tier", "name", "score", "vip", "balance"},
                         {{std::string("gold"), std::string("Ada"), int64_t{7}, true, 12.5}})};
  auto r = run(kLookup, o);
  CHECK(path_text(r) == "lookup > found > vip");
  CHECK(r.hangup_reason == "vip Ada 1 12.5");
  REQUIRE(r.db_queries.size() == 1);
  const DbStart &ds = r.db_queries[0].second;
  CHECK(ds.connector == "crm");
  CHECK(ds.query.statement.find("WHERE phone = $1 AND region = $2") != std::string::npos);
  REQUIRE(ds.query.params.size() == 5);
  CHECK(*ds.query.params[0] == "+1555'; DROP TABLE customers; --");
  CHECK(*ds.query.params[1] == "eu-west");
  CHECK(!ds.query.params[2].has_value());
  CHECK(*ds.query.params[3] == "42");
  CHECK(*ds.query.params[4] == "true");
  CHECK(ds.query.timeout_ms == 1500);
  CHECK(ds.query.max_rows == 2);
  CHECK(var(r, "vars.tier") == "gold");
  CHECK(var(r, "vars.who") == "Ada");
  CHECK(var(r, "vars.missing") == "");  // null: no such column
  CHECK(var(r, "steps.lookup.reason") == "");
}

TEST_CASE("db: typed cells keep their types; huge integers arrive as text") {
  SimulationOptions o;
  o.db["lookup"] = {rows(
      {"tier", "name", "score", "vip", "balance"},
      {{std::string("gold"), std::monostate{}, int64_t{3}, false, int64_t{9007199254740993}}})};
  auto r = run(kLookup, o);
  CHECK(path_text(r) == "lookup > found > plain");  // score 3 is a number: 3 > 5 is false
  CHECK(var(r, "steps.lookup.row.balance") == "9007199254740993");
  CHECK(var(r, "vars.who") == "");
}

TEST_CASE("db: no rows take on_empty; more than max_rows are truncated") {
  SimulationOptions o;
  o.db["lookup"] = {rows({"tier"}, {})};
  auto r = run(kLookup, o);
  CHECK(path_text(r) == "lookup > unknown");
  CHECK(r.hangup_reason == "unknown 0");
  CHECK(var(r, "vars.tier") == "");

  o.db["lookup"] = {rows({"tier", "name", "score", "vip", "balance"},
                         {{std::string("gold"), std::string("A"), int64_t{9}, true, 1.0},
                          {std::string("x"), std::string("B"), int64_t{1}, false, 2.0},
                          {std::string("y"), std::string("C"), int64_t{1}, false, 3.0}})};
  r = run(kLookup, o);
  CHECK(r.hangup_reason == "vip A 2 1");
  CHECK(var(r, "steps.lookup.truncated") == "true");

  // Without on_empty, zero rows take next.
  const char *no_empty = R"J({"flow": "e", "start": "q", "nodes": {
    "q": {"verb": "db", "connector": "c", "query": "SELECT 1 WHERE 0", "next": "done"},
    "done": {"verb": "hangup", "reason": "next {{steps.q.rows}}"}}})J";
  o.db["q"] = {rows({"x"}, {})};
  r = run(no_empty, o);
  CHECK(r.hangup_reason == "next 0");
}

TEST_CASE("db: failures take on_error with their reason; timeouts on_timeout") {
  SimulationOptions o;
  o.db["lookup"] = {failure("connect", "postgresql 127.0.0.1:5432: connection refused")};
  auto r = run(kLookup, o);
  CHECK(path_text(r) == "lookup > failed");
  CHECK(r.hangup_reason ==
        "failed connect: db connect: postgresql 127.0.0.1:5432: connection refused");

  o.db["lookup"] = {failure("query", "relation \"customers\" does not exist (42P01)")};
  r = run(kLookup, o);
  CHECK(var(r, "steps.lookup.reason") == "query");

  o.db["lookup"] = {rows({"tier"}, {{std::string("gold")}}, 5000)};  // later than timeout_ms
  r = run(kLookup, o);
  CHECK(path_text(r) == "lookup > slow");
  CHECK(r.duration_ms == 1500);

  // No simulated answer: as if no connector had that name.
  o.db.clear();
  r = run(kLookup, o);
  CHECK(var(r, "steps.lookup.reason") == "connector");
}

TEST_CASE("db: http and db steps share the call's lookup budget") {
  const char *doc = R"J({"flow": "b", "start": "one", "http_budget_ms": 1000, "nodes": {
    "one": {"verb": "db", "connector": "c", "query": "GET", "params": ["k"], "timeout_ms": 900,
            "next": "two", "on_error": "out"},
    "two": {"verb": "db", "connector": "c", "query": "GET", "params": ["k"], "timeout_ms": 900,
            "next": "three", "on_error": "out", "on_timeout": "late"},
    "three": {"verb": "db", "connector": "c", "query": "GET", "params": ["k"],
              "next": "out", "on_error": "out", "on_timeout": "late"},
    "late": {"verb": "hangup", "reason": "late {{steps.three.reason}} {{steps.two.reason}}"},
    "out": {"verb": "hangup", "reason": "out"}}})J";
  SimulationOptions o;
  o.db["one"] = {rows({"value"}, {{std::string("v")}}, 600)};
  o.db["two"] = {rows({"value"}, {{std::string("v")}}, 600)};  // only 400 ms left: times out
  o.db["three"] = {rows({"value"}, {{std::string("v")}}, 10)};
  auto r = simulate(flowtest::must_compile(doc), o);
  CHECK(path_text(r) == "one > two > late");
  REQUIRE(r.db_queries.size() == 2);
  CHECK(r.db_queries[1].second.query.timeout_ms == 400);
  CHECK(r.hangup_reason == "late  timeout");
}
