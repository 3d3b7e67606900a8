// Every class of validation problem, with its pointer and position.
#include <fstream>

#include "flow_test_util.h"

using namespace ivr::flow;
using flowtest::problems_text;

namespace {
const char *kMinimal = R"({"flow": "f", "start": "a", "nodes": {"a": {"verb": "hangup"}}})";
}

TEST_CASE("validate: a minimal flow compiles") {
  auto p = flowtest::must_compile(kMinimal);
  CHECK(p->id == "f");
  CHECK(p->node_count() == 1);
}

TEST_CASE("validate: invalid JSON is one problem with its position") {
  auto r = compile("{\"flow\": \"f\",\n \"start\": }");
  REQUIRE(r.problems.size() == 1);
  CHECK(r.problems[0].line == 2);
  CHECK(r.problems[0].message.rfind("invalid JSON", 0) == 0);
  CHECK_FALSE(r.program);
  CHECK(compile("[]").problems.size() == 1);
}

TEST_CASE("validate: required fields and wrong types") {
  std::string t = problems_text(R"({"start": 3, "nodes": {}})");
  CHECK(t.find("(document): missing required field \"flow\"") != std::string::npos);
  CHECK(t.find("/start: must be a string, not number") != std::string::npos);
  CHECK(t.find("/nodes: a flow needs at least one node") != std::string::npos);
}

TEST_CASE("validate: unknown verb, unknown field, reserved verb") {
  std::string t = problems_text(R"({"flow": "f", "start": "a", "nodes": {
    "a": {"verb": "play", "file": "x.wav", "volume": 3, "next": "b"},
    "b": {"verb": "dance", "next": "c"},
    "c": {"verb": "record", "next": "d"},
    "d": {"verb": "hangup"}}})");
  CHECK(t.find("line 2, column 44: /nodes/a/volume: unknown field \"volume\" for verb \"play\"") !=
        std::string::npos);
  CHECK(t.find("/nodes/b/verb: unknown verb \"dance\"") != std::string::npos);
  CHECK(t.find("/nodes/c/verb: verb \"record\" is reserved") != std::string::npos);
}

TEST_CASE("validate: dangling exits and unreachable nodes") {
  std::string t = problems_text(R"({"flow": "f", "start": "a", "nodes": {
    "a": {"verb": "answer", "next": "nowhere"},
    "b": {"verb": "hangup"}}})");
  CHECK(t.find("line 2, column 37: /nodes/a/next: no node named \"nowhere\"") != std::string::npos);
  // Reachability is checked once the exits resolve.
  t = problems_text(R"({"flow": "f", "start": "a", "nodes": {
    "a": {"verb": "answer"},
    "b": {"verb": "hangup"}}})");
  CHECK(t.find("line 3, column 10: /nodes/b: node \"b\" is unreachable from \"a\"") !=
        std::string::npos);
}

TEST_CASE("validate: bad expression reported at its column") {
  std::string t = problems_text(R"({"flow": "f", "start": "a", "nodes": {
    "a": {"verb": "if", "condition": "vars.x >= ", "then": "b", "else": "b"},
    "b": {"verb": "say", "text": "hi {{call.from + }}"}}})");
  CHECK(t.find("line 2, column 49: /nodes/a/condition: bad expression: column 11") !=
        std::string::npos);
  CHECK(t.find("/nodes/b/text: bad expression") != std::string::npos);
  t = problems_text(
      R"({"flow": "f", "start": "a", "nodes": {"a": {"verb": "say", "text": "hi {{x"}}})");
  CHECK(t.find("is not closed") != std::string::npos);
}

TEST_CASE("validate: missing prompt file and unsafe names") {
  CompileOptions o;
  o.prompt_dir = IVR_TEST_BUILD_DIR;
  std::string t = problems_text(R"({"flow": "f", "start": "a", "nodes": {
    "a": {"verb": "play", "file": "no-such.wav", "next": "b"},
    "b": {"verb": "play", "file": "../etc/passwd", "next": "c"},
    "c": {"verb": "play", "file": "{{vars.name}}.wav"}}})",
                                o);
  CHECK(t.find("/nodes/a/file: missing prompt file \"no-such.wav\"") != std::string::npos);
  CHECK(t.find("/nodes/b/file: prompt file must be a relative name") != std::string::npos);
  CHECK(t.find("/nodes/c/") == std::string::npos);  // templated names are checked at play time
}

TEST_CASE("validate: every problem is listed, in document order") {
  auto r = compile(R"({"flow": "f", "start": "a", "nodes": {
    "a": {"verb": "menu", "choices": {"12": "b", "1": "zz"}, "retries": 99},
    "b": {"verb": "pause"},
    "c": {"verb": "return"}}})");
  REQUIRE(r.problems.size() >= 4);
  for (size_t i = 1; i < r.problems.size(); ++i)
    CHECK(r.problems[i - 1].line <= r.problems[i].line);
  std::string t;
  for (auto &p : r.problems) t += format_problem(p) + "\n";
  CHECK(t.find("/nodes/a/choices/12: a menu choice is one DTMF digit") != std::string::npos);
  CHECK(t.find("/nodes/a/choices/1: no node named \"zz\"") != std::string::npos);
  CHECK(t.find("/nodes/a/retries: must be an integer from 0 to 10") != std::string::npos);
  CHECK(t.find("/nodes/b: missing required field \"ms\"") != std::string::npos);
  CHECK(t.find("/nodes/c/verb: \"return\" is only allowed inside a subflow") != std::string::npos);
}

TEST_CASE("validate: schedules, rule sets, subflows") {
  std::string t = problems_text(R"({"flow": "f", "start": "a",
    "schedules": {"office": {"time_zone": "Mars/Olympus", "weekly": {"mon": ["09:00-17:00"], "xyz": []}}},
    "rule_sets": {"tier": {"rules": [{"when": "vars.score >", "then": "gold"}]}},
    "subflows": {"unused": {"start": "s", "nodes": {"s": {"verb": "return"}}}},
    "nodes": {
      "a": {"verb": "schedule", "schedule": "nope", "open": "b", "closed": "b"},
      "b": {"verb": "switch", "rule_set": "missing", "default": "c"},
      "c": {"verb": "subflow", "subflow": "ghost"}}})");
  CHECK(t.find("/schedules/office/weekly/xyz: unknown day") != std::string::npos);
  CHECK(t.find("/rule_sets/tier/rules/0/when: bad expression") != std::string::npos);
  CHECK(t.find("/nodes/a/schedule: no schedule named \"nope\"") != std::string::npos);
  CHECK(t.find("/nodes/b/rule_set: no rule set named \"missing\"") != std::string::npos);
  CHECK(t.find("/nodes/c/subflow: no subflow named \"ghost\"") != std::string::npos);
  t = problems_text(R"({"flow": "f", "start": "a",
    "schedules": {"office": {"time_zone": "Mars/Olympus", "weekly": {"mon": ["09:00-17:00"]}}},
    "nodes": {"a": {"verb": "hangup"}}})");
  CHECK(t.find("/schedules/office") != std::string::npos);
  CHECK(t.find("Mars/Olympus") != std::string::npos);
  t = problems_text(R"({"flow": "f", "start": "a",
    "subflows": {"unused": {"start": "s", "nodes": {"s": {"verb": "return"}}}},
    "nodes": {"a": {"verb": "hangup"}}})");
  CHECK(t.find("/subflows/unused: subflow \"unused\" is never called") != std::string::npos);
}

TEST_CASE("validate: in_schedule() must name a schedule of the document") {
  std::string t = problems_text(R"J({"flow": "f", "start": "a",
    "schedules": {"office": {"time_zone": "Europe/Berlin", "weekly": {"mon": ["09:00-17:00"]}},
                  "broken": {"time_zone": "Mars/Olympus", "weekly": {}}},
    "rule_sets": {"r": {"rules": [{"when": "in_schedule('ofice')", "then": "x"}]}},
    "nodes": {
      "a": {"verb": "if", "condition": "in_schedule('office') || in_schedule('nope')", "then": "b", "else": "b"},
      "b": {"verb": "if", "condition": "in_schedule('broken')", "then": "c", "else": "c"},
      "c": {"verb": "switch", "rule_set": "r", "default": "d"},
      "d": {"verb": "hangup"}}})J");
  // The column points at the name inside the expression: 'nope' is at column 38.
  CHECK(t.find("/nodes/a/condition: bad expression: column 38: unknown schedule 'nope'") !=
        std::string::npos);
  CHECK(t.find("/rule_sets/r/rules/0/when: bad expression: column 13: unknown schedule 'ofice'") !=
        std::string::npos);
  // A declared schedule with its own problems is reported there, not at each use.
  CHECK(t.find("Mars/Olympus") != std::string::npos);
  CHECK(t.find("unknown schedule 'broken'") == std::string::npos);
  CHECK(t.find("unknown schedule 'office'") == std::string::npos);
}

TEST_CASE("validate: custom verbs must be registered") {
  const char *doc = R"({"flow": "f", "start": "a", "nodes": {
    "a": {"verb": "crm.lookup", "args": {"phone": "{{call.from}}"}, "exits": {"found": "b"}, "next": "b"},
    "b": {"verb": "hangup"}}})";
  CHECK(problems_text(doc).find("unknown verb \"crm.lookup\"") != std::string::npos);
  CompileOptions o;
  o.custom_verbs.insert("crm.lookup");
  flowtest::must_compile(doc, o);
}

TEST_CASE("validate: the demo flow and the examples in docs are valid") {
  for (const char *name : {"demo.json"}) {
    std::ifstream f(std::string(IVR_SOURCE_DIR) + "/examples/flows/" + name);
    REQUIRE(f.good());
    std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    flowtest::must_compile(text);
  }
}

TEST_CASE("validate: every ```json example in docs/flows.md is a valid flow") {
  std::ifstream f(std::string(IVR_SOURCE_DIR) + "/docs/flows.md");
  REQUIRE(f.good());
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  CompileOptions o;
  o.custom_verbs.insert("crm.lookup");
  size_t pos = 0, examples = 0;
  while ((pos = text.find("```json\n", pos)) != std::string::npos) {
    size_t start = pos + 8, end = text.find("```", start);
    REQUIRE(end != std::string::npos);
    std::string block = text.substr(start, end - start);
    pos = end + 3;
    if (block.find("\"nodes\"") == std::string::npos) continue;  // a fragment, not a flow
    ++examples;
    INFO(block);
    flowtest::must_compile(block, o);
  }
  CHECK(examples >= 5);
}

TEST_CASE("validate: set cannot write call facts; '..' is refused only as a path part") {
  std::string t = problems_text(R"({"flow": "f", "start": "a", "nodes": {
    "a": {"verb": "set", "values": {"call.from": "'x'"}, "next": "b"},
    "b": {"verb": "play", "file": "intro..v2.wav"}}})");
  CHECK(t.find("/nodes/a/values/call.from: call.* and steps.* are read-only") != std::string::npos);
  CHECK(t.find("/nodes/b") == std::string::npos);
}
