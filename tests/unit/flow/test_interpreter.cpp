// The interpreter, driven through the simulator (scripted digits, virtual clock).
#include "flow_test_util.h"

#include <date/tz.h>

#include <fstream>
#include <sstream>

using namespace ivr::flow;
using flowtest::path_text;
using flowtest::var;

namespace {

const char *kMenu = R"({"flow": "m", "start": "menu", "nodes": {
  "menu": {"verb": "menu", "prompt": {"file": "menu.wav"},
           "no_input_prompt": {"file": "noinput.wav"}, "invalid_prompt": {"file": "invalid.wav"},
           "retries": 1, "choices": {"1": "sales", "2": "support"},
           "on_no_input": "noinput_end", "on_invalid": "invalid_end"},
  "sales": {"verb": "play", "file": "sales.wav"},
  "support": {"verb": "hangup", "reason": "support"},
  "noinput_end": {"verb": "hangup", "reason": "no input"},
  "invalid_end": {"verb": "hangup", "status": 486, "reason": "invalid"}}})";

SimulationResult run(const char *doc, SimulationOptions o = {}, CompileOptions c = {}) {
  return simulate(flowtest::must_compile(doc, c), o);
}

std::string trace_text(const SimulationResult &r) {
  std::string out;
  for (auto &s : r.trace) out += s.entry.node + " " + s.entry.verb + ": " + s.entry.detail + "\n";
  return out;
}

}  // namespace

TEST_CASE("interpreter: menu choice") {
  SimulationOptions o;
  o.digits = "1";
  auto r = run(kMenu, o);
  CHECK(path_text(r) == "menu > sales");
  CHECK(r.end == EndReason::completed);
  CHECK(var(r, "steps.menu.digits") == "1");
  CHECK(var(r, "steps.menu.result") == "ok");
  CHECK(trace_text(r).find("sales play: file sales.wav") != std::string::npos);
}

TEST_CASE("interpreter: no input re-prompts, then takes on_no_input") {
  auto r = run(kMenu);
  CHECK(path_text(r) == "menu > noinput_end");
  CHECK(r.end == EndReason::hangup_verb);
  CHECK(r.hangup_reason == "no input");
  std::string t = trace_text(r);
  CHECK(t.find("file noinput.wav") != std::string::npos);
  CHECK(t.find("collect attempt 2 of 2") != std::string::npos);
  CHECK(t.find("retries exhausted -> noinput_end") != std::string::npos);
}

TEST_CASE("interpreter: invalid input, then a valid retry") {
  SimulationOptions o;
  o.digits = "72";
  auto r = run(kMenu, o);
  CHECK(path_text(r) == "menu > support");
  CHECK(trace_text(r).find("file invalid.wav") != std::string::npos);
  CHECK(var(r, "steps.menu.attempts") == "2");
  o.digits = "77";
  r = run(kMenu, o);
  CHECK(path_text(r) == "menu > invalid_end");
  CHECK(r.hangup_status == 486);
}

TEST_CASE("interpreter: caller hangs up mid-gather") {
  SimulationOptions o;
  o.hangup_at_ms = 500;
  auto r = run(kMenu, o);
  CHECK(r.end == EndReason::caller_hangup);
  CHECK(path_text(r) == "menu");
}

TEST_CASE("interpreter: gather with terminator, validation and store") {
  const char *doc = R"({"flow": "g", "start": "acct", "nodes": {
    "acct": {"verb": "gather", "prompt": {"say": "Enter your account"}, "max_digits": 8,
             "min_digits": 4, "valid": "steps.acct.digits != '0000'", "store": "vars.account",
             "retries": 2, "next": "ok", "on_invalid": "bad", "on_no_input": "bad"},
    "ok": {"verb": "say", "text": "Account {{vars.account}}, caller {{call.from}}"},
    "bad": {"verb": "hangup"}}})";
  SimulationOptions o;
  o.digits = "12#0000#123456#";
  o.call.from = "+15551234";
  auto r = run(doc, o);
  CHECK(path_text(r) == "acct > ok");
  CHECK(var(r, "vars.account") == "123456");
  std::string t = trace_text(r);
  CHECK(t.find("digits \"12\" (terminator) invalid, retrying") != std::string::npos);
  CHECK(t.find("digits \"0000\" (terminator) invalid, retrying") != std::string::npos);
  CHECK(t.find("say \"Account 123456, caller +15551234\"") != std::string::npos);
  // Inter-digit timeout with partial input still counts as input.
  o.digits = "5678";
  r = run(doc, o);
  CHECK(var(r, "vars.account") == "5678");
  CHECK(trace_text(r).find("(inter_timeout) ok") != std::string::npos);
}

TEST_CASE("interpreter: set, if, switch with cases and rule sets") {
  const char *doc = R"({"flow": "s", "start": "init",
    "variables": {"score": 80, "tier": "none"},
    "rule_sets": {"tiers": {"rules": [
      {"when": "vars.score >= 90", "then": "gold"},
      {"when": "vars.score >= 50", "then": "silver"}]}},
    "nodes": {
      "init": {"verb": "set", "values": {"big": "vars.score > 50", "greeting": {"template": "hi {{vars.score}}"}}, "next": "check"},
      "check": {"verb": "if", "condition": "vars.big", "then": "route", "else": "end"},
      "route": {"verb": "switch", "rule_set": "tiers", "results": {"gold": "gold"}, "default": "other"},
      "gold": {"verb": "hangup", "reason": "gold"},
      "other": {"verb": "switch", "cases": [{"when": "vars.score < 10", "next": "end"}, {"when": "true", "next": "end2"}]},
      "end": {"verb": "hangup", "reason": "end"},
      "end2": {"verb": "hangup", "reason": "end2"}}})";
  auto r = run(doc);
  CHECK(path_text(r) == "init > check > route > other > end2");
  CHECK(var(r, "vars.greeting") == "hi 80");
  CHECK(var(r, "vars.big") == "true");
  CHECK(var(r, "steps.route.result") == "silver");
  SimulationOptions o;
  o.vars["score"] = "95";  // host values arrive as strings
  r = run(doc, o);
  CHECK(r.end == EndReason::error);  // "95" > 50 compares a string with a number
  CHECK(r.error.find("node init") != std::string::npos);
}

TEST_CASE("interpreter: schedule branch follows the clock, across DST") {
  const char *doc = R"({"flow": "h", "start": "hours",
    "schedules": {"office": {"time_zone": "Europe/Berlin", "weekly": {"mon": ["09:00-17:00"], "sun": ["09:00-17:00"]}}},
    "nodes": {
      "hours": {"verb": "schedule", "schedule": "office", "open": "open", "closed": "closed"},
      "open": {"verb": "hangup", "reason": "open"},
      "closed": {"verb": "hangup", "reason": "closed"}}})";
  auto at = [](unsigned day, int hour, int minute) {
    date::local_seconds ls = date::local_days{date::year{2026} / 3 / day} +
                             std::chrono::hours(hour) + std::chrono::minutes(minute);
    return date::make_zoned("Europe/Berlin", ls).get_sys_time();
  };
  SimulationOptions o;
  o.call.started_at = at(29, 9, 30);  // Sunday, the day clocks go forward
  CHECK(run(doc, o).hangup_reason == "open");
  o.call.started_at = at(29, 8, 30);
  CHECK(run(doc, o).hangup_reason == "closed");
  o.call.started_at = at(30, 16, 59);
  CHECK(run(doc, o).hangup_reason == "open");
  o.call.started_at = at(31, 10, 0);  // Tuesday: no hours
  CHECK(run(doc, o).hangup_reason == "closed");
}

TEST_CASE("interpreter: in_schedule() and now() in expressions see the call's clock") {
  // Two zones, each across its own DST change: New York springs forward on 8 March 2026,
  // Berlin on 29 March. A rule set and an if both read the schedules; now() is Unix seconds.
  const char *doc = R"J({"flow": "t", "start": "route",
    "schedules": {
      "ny": {"time_zone": "America/New_York", "weekly": {"sun": ["09:00-17:00"], "mon": ["09:00-17:00"]}},
      "berlin": {"time_zone": "Europe/Berlin", "weekly": {"sun": ["09:00-17:00"], "mon": ["09:00-17:00"]}}},
    "rule_sets": {"desk": {"rules": [
      {"when": "in_schedule('ny')", "then": "ny"},
      {"when": "in_schedule('berlin')", "then": "berlin"}]}},
    "nodes": {
      "route": {"verb": "switch", "rule_set": "desk", "results": {"ny": "stamp", "berlin": "stamp"}, "default": "check"},
      "check": {"verb": "if", "condition": "!in_schedule('ny') && !in_schedule('berlin')", "then": "stamp", "else": "bad"},
      "stamp": {"verb": "set", "values": {"t": "now()"}, "next": "done"},
      "done": {"verb": "hangup", "reason": "{{steps.route.result}}"},
      "bad": {"verb": "hangup", "reason": "bad"}}})J";
  auto at = [](const char *zone, unsigned month, unsigned day, int hour, int minute) {
    date::local_seconds ls = date::local_days{date::year{2026} / month / day} +
                             std::chrono::hours(hour) + std::chrono::minutes(minute);
    return date::make_zoned(zone, ls).get_sys_time();
  };
  SimulationOptions o;
  o.call.started_at = at("America/New_York", 3, 8, 9, 30);  // Sunday, EDT from 02:00
  auto r = run(doc, o);
  CHECK(r.hangup_reason == "ny");
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(o.call.started_at.time_since_epoch())
                  .count();
  CHECK(var(r, "vars.t") == std::to_string(secs));
  o.call.started_at = at("America/New_York", 3, 8, 8, 59);  // 13:59 in Berlin: open there
  CHECK(run(doc, o).hangup_reason == "berlin");
  o.call.started_at = at("Europe/Berlin", 3, 29, 8, 59);  // Sunday, CEST from 02:00; 02:59 NY
  r = run(doc, o);
  CHECK(r.hangup_reason == "");
  CHECK(path_text(r) == "route > check > stamp > done");
  o.call.started_at = at("Europe/Berlin", 3, 29, 9, 0);
  CHECK(run(doc, o).hangup_reason == "berlin");
  o.call.started_at = at("Europe/Berlin", 3, 30, 16, 59);  // Monday 10:59 NY: both open
  CHECK(run(doc, o).hangup_reason == "ny");
}

TEST_CASE("interpreter: subflow call and return, pause, goto") {
  const char *doc = R"({"flow": "sub", "start": "a",
    "subflows": {"auth": {"start": "ask", "nodes": {
      "ask": {"verb": "gather", "max_digits": 4, "store": "vars.pin", "next": "done", "on_no_input": "done"},
      "done": {"verb": "return"}}}},
    "nodes": {
      "a": {"verb": "subflow", "subflow": "auth", "next": "b"},
      "b": {"verb": "pause", "ms": 250, "next": "c"},
      "c": {"verb": "goto", "target": "d"},
      "d": {"verb": "hangup", "reason": "pin {{vars.pin}}"}}})";
  SimulationOptions o;
  o.digits = "4321";
  auto r = run(doc, o);
  CHECK(path_text(r) == "a > auth/ask > auth/done > b > c > d");
  CHECK(r.hangup_reason == "pin 4321");
}

TEST_CASE("interpreter: an error in a subflow goes to the nearest calling node's on_error") {
  // outer calls inner; inner's failing set has no on_error, inner's caller (in outer) has
  // none either, so the main flow's subflow node catches it and outer and inner are left.
  const char *doc = R"J({"flow": "sub", "start": "a",
    "subflows": {
      "outer": {"start": "call_inner", "nodes": {
        "call_inner": {"verb": "subflow", "subflow": "inner", "next": "after"},
        "after": {"verb": "hangup", "reason": "not reached"}}},
      "inner": {"start": "bad", "nodes": {
        "bad": {"verb": "set", "values": {"x": "call.from + 1"}, "next": "done"},
        "done": {"verb": "return"}}}},
    "nodes": {
      "a": {"verb": "subflow", "subflow": "outer", "next": "b", "on_error": "oops"},
      "b": {"verb": "hangup", "reason": "not reached"},
      "oops": {"verb": "hangup", "reason": "caught: {{steps.a.error}}"}}})J";
  auto r = run(doc);
  CHECK(path_text(r) == "a > outer/call_inner > inner/bad > oops");
  CHECK(r.end == EndReason::hangup_verb);
  CHECK(r.hangup_reason.find("caught: node inner/bad: ") == 0);
  CHECK(r.hangup_reason.find("operator '+' cannot take string and number") != std::string::npos);
  CHECK(trace_text(r).find("error in subflow: node inner/bad") != std::string::npos);

  // Without any on_error on the way up, the call ends with the error as before.
  const char *plain = R"J({"flow": "sub", "start": "a",
    "subflows": {"inner": {"start": "bad", "nodes": {
        "bad": {"verb": "set", "values": {"x": "call.from + 1"}, "next": "done"},
        "done": {"verb": "return"}}}},
    "nodes": {
      "a": {"verb": "subflow", "subflow": "inner", "next": "b"},
      "b": {"verb": "hangup", "reason": "not reached"}}})J";
  r = run(plain);
  CHECK(r.end == EndReason::error);
  CHECK(r.error.find("node inner/bad: ") == 0);
  CHECK(path_text(r) == "a > inner/bad");
}

TEST_CASE("interpreter: a loop that never waits hits the step limit") {
  const char *doc = R"({"flow": "loop", "start": "a", "nodes": {
    "a": {"verb": "set", "values": {"n": 1}, "next": "b"},
    "b": {"verb": "goto", "target": "a"}}})";
  auto r = run(doc);
  CHECK(r.end == EndReason::step_limit);
  CHECK(r.error.find("stopped after 1000 steps") != std::string::npos);
  CHECK(r.hangup_status == 500);
  // A loop that waits (pause) is fine until something else ends it.
  const char *waits = R"({"flow": "loop", "start": "a", "nodes": {
    "a": {"verb": "pause", "ms": 1000, "next": "a"}}})";
  SimulationOptions o;
  o.hangup_at_ms = 3000000;
  r = run(waits, o);
  CHECK(r.end == EndReason::caller_hangup);
  CHECK(r.path.size() == kMaxPathRecord);  // the record is bounded; the rest is counted
  CHECK(r.path_text.find(" > ... (+") !=
        std::string::npos);  // Without a hangup the simulation stops itself, and says so.
  r = run(waits);
  CHECK(r.cut_off == "stopped after 14400 s of simulated time");
  CHECK_FALSE(r.path.empty());
  SimulationOptions few;
  few.max_events = 10;
  CHECK(run(waits, few).cut_off == "stopped after 10 simulated events");
}

TEST_CASE("interpreter: custom verbs pick exits, set step values, fail and time out") {
  const char *doc = R"({"flow": "c", "start": "lookup", "nodes": {
    "lookup": {"verb": "crm.lookup", "args": {"phone": "{{call.from}}", "n": 3},
               "exits": {"vip": "vip"}, "next": "normal", "on_error": "err",
               "timeout_ms": 2000, "on_timeout": "slow"},
    "vip": {"verb": "hangup", "reason": "vip {{steps.lookup.name}}"},
    "normal": {"verb": "hangup", "reason": "normal"},
    "err": {"verb": "hangup", "reason": "error {{steps.lookup.error}}"},
    "slow": {"verb": "hangup", "reason": "slow"}}})";
  CompileOptions c;
  c.custom_verbs.insert("crm.lookup");
  SimulationOptions o;
  o.custom_results["crm.lookup"] = CustomResult{"vip", {{"name", "Ada"}}, ""};
  CHECK(run(doc, o, c).hangup_reason == "vip Ada");
  o.custom_results["crm.lookup"] = CustomResult{"", {}, ""};
  CHECK(run(doc, o, c).hangup_reason == "normal");
  o.custom_results["crm.lookup"] = CustomResult{"", {}, "CRM down"};
  CHECK(run(doc, o, c).hangup_reason == "error crm.lookup: CRM down");
  o.custom_results["crm.lookup"] = CustomResult{"nope", {}, ""};
  CHECK(run(doc, o, c).hangup_reason.find("error crm.lookup chose exit \"nope\"") == 0);
}

TEST_CASE("interpreter: errors without on_error end the call with a reason") {
  const char *doc = R"({"flow": "e", "start": "a", "nodes": {
    "a": {"verb": "if", "condition": "call.from + 1 > 2", "then": "b", "else": "b"},
    "b": {"verb": "hangup"}}})";
  auto r = run(doc);
  CHECK(r.end == EndReason::error);
  CHECK(r.error.find("node a: condition:") == 0);
  CHECK(r.hangup_status == 500);
}

TEST_CASE("interpreter: the demo flow") {
  std::ifstream f(std::string(IVR_SOURCE_DIR) + "/examples/flows/demo.json");
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto p = flowtest::must_compile(text);
  SimulationOptions o;
  o.digits = "2";
  auto r = simulate(p, o);
  CHECK(path_text(r) == "welcome > menu > support > support_msg > goodbye > bye");
  CHECK(r.hangup_reason == "demo finished, department support");
}
