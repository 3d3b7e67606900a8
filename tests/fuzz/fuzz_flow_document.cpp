// Fuzzes flow documents end to end: compile() on any bytes (JSON reader, validator, rule
// expressions, templates, schedules) with one registered custom verb; when a program
// compiles, it runs through simulate() with a short caller script, a small step limit and a
// bounded virtual call length, so the interpreter and the simulator are fuzzed too.
//
// Input layout: the bytes up to the first NUL are the document; after it, two bytes choose
// the start time, the custom verb's outcome, when the caller hangs up and how route and
// transfer steps end, and up to 32 more are the caller's keys. Without a NUL the whole
// input is the document and those choices come from its hash.
//
// Checks: a result has a program xor problems; problems are in document order with a
// position inside the document; a simulated call ends by the caller's hangup at the latest,
// has entered its start node, reports an error exactly when it ended in error, and its
// virtual time never goes backwards.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "flow/compiler.h"
#include "flow/simulator.h"

namespace {

using namespace ivr::flow;

[[noreturn]] void fail(const char *what, const std::string &detail) {
  std::fprintf(stderr, "fuzz_flow_document: %s: %s\n", what, detail.c_str());
  std::abort();
}

constexpr char kVerb[] = "crm.lookup";

const CompileOptions &options() {
  static const CompileOptions opts = [] {
    CompileOptions o;
    o.custom_verbs.insert(kVerb);
    return o;
  }();
  return opts;
}

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// Line and column of every problem lie inside the document (the column may be one past
// the end of its line: "expected more input" points there).
void check_problems(std::string_view doc, const CompileResult &r) {
  if ((r.program != nullptr) == !r.problems.empty())
    fail("program and problems", r.problems.empty() ? "neither" : "both");
  if (r.problems.empty()) return;
  std::vector<size_t> line_len;  // bytes per line, without the '\n'
  size_t start = 0;
  for (size_t i = 0; i <= doc.size(); ++i)
    if (i == doc.size() || doc[i] == '\n') {
      line_len.push_back(i - start);
      start = i + 1;
    }
  uint32_t prev_line = 0, prev_col = 0;
  for (const Problem &p : r.problems) {
    std::string text = format_problem(p);
    if (p.message.empty()) fail("problem without a message", text);
    if (p.line < 1 || p.line > line_len.size()) fail("problem line outside the document", text);
    if (p.column < 1 || p.column > line_len[p.line - 1] + 1)
      fail("problem column outside its line", text);
    if (p.line < prev_line || (p.line == prev_line && p.column < prev_col))
      fail("problems out of document order", text);
    prev_line = p.line;
    prev_col = p.column;
  }
}

void simulate_call(const std::shared_ptr<const Program> &program, uint64_t choice,
                   std::string_view keys) {
  static constexpr char kKeys[] = "0123456789*#ABCD,";  // ',' ends one input
  SimulationOptions o;
  for (unsigned char c : keys) o.digits += kKeys[c % (sizeof kKeys - 1)];
  // A fixed start (Monday 2026-03-30 06:00 UTC, plus 0-31 hours) keeps runs reproducible
  // while schedules still see both open and closed hours.
  o.call.started_at = std::chrono::system_clock::time_point(std::chrono::seconds(1774850400)) +
                      std::chrono::hours(choice & 31);
  o.call.call_id = "fuzz-call";
  o.call.from = "+15551234567";
  o.call.to = "+18005550100";
  o.call.headers = {{"X-Lead-Id", "42"}, {"X-Tier", "gold"}};
  if (choice & 32) o.vars["score"] = "95";
  switch ((choice >> 6) & 3) {
    case 0:
      break;  // no simulated result: the custom verb fails
    case 1:
      o.custom_results[kVerb] = CustomResult{"", {{"name", "Ada"}}, ""};
      break;
    case 2:
      o.custom_results[kVerb] = CustomResult{"vip", {{"tier", "gold"}}, ""};
      break;
    default:
      o.custom_results[kVerb] = CustomResult{"", {}, "CRM down"};
  }
  // Route, enqueue and transfer nodes: every node ends the same way (unscripted: failed).
  static const SimRouteReply kRouteEnds[] = {{"failed", "", 0, ""},
                                             {"ended", "vici", 0, ""},
                                             {"failed", "five9", 503, "refused"},
                                             {"timeout", "", 0, ""},
                                             {"error", "", 0, "no routing plan"},
                                             {"bogus", "", 0, ""}};
  uint64_t route_choice = (choice >> 11) & 7;  // 6, 7: unscripted
  uint64_t transfer_choice = (choice >> 14) & 3;
  for (const Graph &g : program->graphs)
    for (const Node &n : g.nodes) {
      std::string name = g.name.empty() ? n.name : g.name + "/" + n.name;
      if (std::holds_alternative<Route>(n.spec) && route_choice < 6)
        o.route[name] = {kRouteEnds[route_choice]};
      if (std::holds_alternative<Transfer>(n.spec) && transfer_choice)
        o.transfer[name] = {transfer_choice == 1 ? SimTransferReply{}
                                                 : SimTransferReply{false, 486, "busy"}};
    }
  // The caller always hangs up, within 15 s of virtual time, which bounds flows that loop
  // through waits (a pause or a gather that leads back to itself). The shortest wait in the
  // flow (a pause, or a custom verb's simulated 10 ms) caps it further, to about 300 waits,
  // so that a 1 ms pause loop does not make every run slow.
  static constexpr int64_t kHangup[] = {0, 150, 1200, 4000, 15000, 15000, 15000, 15000};
  int64_t shortest_wait = 15000;
  for (const Graph &g : program->graphs)
    for (const Node &n : g.nodes) {
      if (auto *p = std::get_if<Pause>(&n.spec))
        shortest_wait = std::min<int64_t>(shortest_wait, p->ms);
      if (std::holds_alternative<Custom>(n.spec) || std::holds_alternative<Route>(n.spec) ||
          std::holds_alternative<Transfer>(n.spec))
        shortest_wait = std::min<int64_t>(shortest_wait, 10);
    }
  o.hangup_at_ms = std::min(kHangup[(choice >> 8) & 7], 300 * shortest_wait);
  o.prompt_ms = 200;
  o.limits.max_steps_without_wait = 40;
  o.limits.max_subflow_depth = 4;

  SimulationResult r = simulate(program, o);
  if (r.path.empty()) fail("call never entered its start node", program->id);
  bool failed = r.end == EndReason::error || r.end == EndReason::step_limit;
  if (failed == r.error.empty())
    fail("error text and end reason disagree",
         std::string(end_reason_name(r.end)) + ": \"" + r.error + "\"");
  if (r.duration_ms > static_cast<uint64_t>(o.hangup_at_ms))
    fail("call outlived the caller's hangup", std::to_string(r.duration_ms) + " ms");
  uint64_t prev = 0;
  for (const SimulationStep &s : r.trace) {
    if (s.at_ms < prev)
      fail("virtual time went backwards",
           s.entry.node + " at " + std::to_string(s.at_ms) + " after " + std::to_string(prev));
    prev = s.at_ms;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string_view input(reinterpret_cast<const char *>(data), size);
  CompileResult whole = compile(input, options());
  check_problems(input, whole);

  size_t nul = input.find('\0');
  if (nul == std::string_view::npos) {
    if (!whole.program) return 0;
    uint64_t choice = fnv1a(input);
    char keys[6];
    for (size_t i = 0; i < sizeof keys; ++i)
      keys[i] = static_cast<char>((choice >> (16 + 5 * i)) % 17);
    simulate_call(whole.program, choice, std::string_view(keys, sizeof keys));
    return 0;
  }
  // JSON never holds a raw NUL: compile the head on its own and let the tail drive the call.
  if (whole.program) fail("a document with a NUL byte compiled", "");
  std::string_view doc = input.substr(0, nul), tail = input.substr(nul + 1);
  CompileResult head = compile(doc, options());
  check_problems(doc, head);
  if (!head.program) return 0;
  uint64_t choice = 0;
  for (size_t i = 0; i < 2 && i < tail.size(); ++i)
    choice |= uint64_t{static_cast<unsigned char>(tail[i])} << (8 * i);
  simulate_call(head.program, choice, tail.substr(std::min<size_t>(2, tail.size()), 32));
  return 0;
}
