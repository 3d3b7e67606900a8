// The route, enqueue and transfer verbs: validation, what each step hands the port, the
// exits per outcome, the call's variables as the routing port reads them, cancellation on
// the caller's hang-up, and the simulator's scripts.
#include <filesystem>
#include <fstream>

#include "flow_test_util.h"

using namespace ivr::flow;
using flowtest::path_text;
using flowtest::var;

namespace {

SimulationResult run(const std::string &doc, SimulationOptions o = {}) {
  return simulate(flowtest::must_compile(doc), o);
}

SimRouteReply route_end(const char *outcome, const char *target = "", int status = 0,
                        const char *error = "") {
  SimRouteReply r;
  r.outcome = outcome;
  r.target = target;
  r.sip_status = status;
  r.error = error;
  return r;
}

// Every exit of a route node, each ending the call with its own reason.
const char *kRoute = R"J({"flow": "sales", "start": "to_sales",
  "variables": {"lead_id": "L-77", "priority": 100},
  "nodes": {
  "to_sales": {"verb": "route", "plan": "sales",
    "headers": {"X-Lead-Id": "{{vars.lead_id}}", "User-to-User": "{{vars.uui}};encoding=hex"},
    "caller_id": "{{call.from}}", "ring_timeout_ms": 15000, "max_attempts": 3,
    "queue": {"priority": "{{vars.priority}}", "max_wait_s": 300, "hold": {"file": "hold.wav"},
              "announce": {"say": "You are caller number {position}.", "every_s": 30,
                           "voice": "en-us", "rate": 180}},
    "next": "survey", "on_failed": "sorry", "on_timeout": "voicemail", "on_error": "oops"},
  "survey": {"verb": "hangup", "reason": "survey {{steps.to_sales.outcome}} {{steps.to_sales.target}} {{steps.to_sales.attempts}} {{steps.to_sales.talk_ms}}"},
  "sorry": {"verb": "hangup", "reason": "sorry {{steps.to_sales.sip_status}} {{steps.to_sales.error}}"},
  "voicemail": {"verb": "hangup", "reason": "voicemail {{steps.to_sales.queued_ms}}"},
  "oops": {"verb": "hangup", "reason": "oops {{steps.to_sales.error}}"}}})J";

// Variables: a port that records what the session asks of it and completes nothing by
// itself; the test completes steps through the session.
class RecordingPort : public CallPort {
 public:
  int answers = 0, hangups = 0;
  std::vector<std::pair<RouteStart, uint64_t>> routes;
  std::vector<uint64_t> cancelled_routes;
  std::vector<std::pair<TransferStart, uint64_t>> transfers;
  // What the route's variables gave while start_route ran.
  std::function<void(const RouteStart &)> on_route;

  void start_answer() override { ++answers; }
  void start_play(const std::string &) override {}
  void start_say(const std::string &, const std::string &, unsigned) override {}
  void start_collect(const CollectRequest &) override {}
  void start_timer(uint32_t, uint64_t) override {}
  void cancel_timer(uint64_t) override {}
  void start_custom(const std::string &, const CustomArgs &, uint64_t) override {}
  void start_http(const HttpStart &, uint64_t) override {}
  void cancel_http(uint64_t) override {}
  void start_db(const DbStart &, uint64_t) override {}
  void cancel_db(uint64_t) override {}
  void start_route(const RouteStart &req, uint64_t token) override {
    routes.emplace_back(req, token);
    if (on_route) on_route(req);
  }
  void cancel_route(uint64_t token) override { cancelled_routes.push_back(token); }
  void start_transfer(const TransferStart &req, uint64_t token) override {
    transfers.emplace_back(req, token);
  }
  void stop_prompt() override {}
  void hangup(int, const std::string &) override { ++hangups; }
};

CallInfo call_info() {
  CallInfo c;
  c.call_id = "c-1";
  c.from = "+15551234";
  c.to = "8005550100";
  c.headers = {{"X-Tier", "gold"}, {"X-Campaign", "spring"}};
  return c;
}

}  // namespace

TEST_CASE("route: validation names every bad field by its path") {
  std::string t = flowtest::problems_text(R"J({"flow": "f", "start": "a", "nodes": {
    "a": {"verb": "route", "plan": "not a plan!",
          "headers": {"Contact": "x", "X-Ok": 3, "X-Break": "a\r\nb", "x-dup": "1", "X-DUP": "2",
                      "X-": "empty"},
          "caller_id": "Alice <sip:alice@x>", "ring_timeout_ms": 500, "max_attempts": 21,
          "queue": {"priority": 1000, "max_wait_s": 90000, "hold": {"say": "hello"},
                    "announce": {"say": "You are {{vars.n}}", "every_s": 3, "rate": 10},
                    "extra": true},
          "on_failed": "nowhere", "bogus": 1, "next": "b"},
    "b": {"verb": "route", "next": "c", "on_timeout": "d"},
    "c": {"verb": "enqueue", "plan": "sales",
          "queue": {"priority": "1200", "hold": {"file": "../etc/passwd"},
                    "announce": {"say": "Wait {minutes}"}}, "next": "d"},
    "d": {"verb": "enqueue", "plan": "sales", "queue": {"priority": true, "announce": {}},
          "next": "e"},
    "e": {"verb": "route", "plan": "", "queue": 5, "next": "f"},
    "f": {"verb": "transfer", "to": "tel:+15551234", "method": "bye", "next": "g"},
    "g": {"verb": "transfer", "method": "refer", "on_failed": "nope"},
    "h": {"verb": "transfer", "to": "x{{vars.agent}}"},
    "i": {"verb": "transfer", "to": "sip:@pbx"}}})J");
  for (const char *want : {
           "/nodes/a/plan: plan names a routing plan",
           "/nodes/a/headers/Contact: a header toward the dialing system is X-<name>",
           "/nodes/a/headers/X-Ok: must be a string (a template)",
           "/nodes/a/headers/X-Break: a header value cannot hold a line break",
           "/nodes/a/headers/X-DUP: header \"X-DUP\" is given twice",
           "/nodes/a/headers/X-: a header toward the dialing system",
           "/nodes/a/caller_id: caller_id is a number or SIP user name",
           "/nodes/a/ring_timeout_ms: must be an integer from 1000 to 300000",
           "/nodes/a/max_attempts: must be an integer from 0 to 20",
           "/nodes/a/queue/priority: priority must be an integer from 0 to 999",
           "/nodes/a/queue/max_wait_s: must be an integer from 0 to 86400",
           "/nodes/a/queue/hold: queue hold audio is a prompt file",
           "/nodes/a/queue/announce/say: announce text is spoken by the queue, not a flow "
           "template",
           "/nodes/a/queue/announce/every_s: every_s is 0 (never) or from 5 to 3600 seconds",
           "/nodes/a/queue/announce/rate: must be an integer from 80 to 450",
           "/nodes/a/queue/extra: unknown field \"extra\"",
           "/nodes/a/on_failed: no node named \"nowhere\"",
           "/nodes/a/bogus: unknown field \"bogus\" for verb \"route\"",
           "/nodes/b: missing required field \"plan\"",
           "/nodes/b/on_timeout: \"on_timeout\" is taken when max_wait_s passes in the queue",
           "/nodes/c/queue/priority: priority must be an integer from 0 to 999",
           "/nodes/c/queue/hold/file: prompt file must be a relative name",
           "/nodes/c/queue/announce/say: unknown placeholder \"{minutes}\"",
           "/nodes/d/queue/priority: priority is a number from 0 to 999 or a template",
           "/nodes/d/queue/announce: missing required field \"say\"",
           "/nodes/e/plan: plan names a routing plan",
           "/nodes/e/queue: queue is an object",
           "/nodes/f/to: to must be a sip: or sips: URI, not \"tel:+15551234\"",
           "/nodes/f/method: method is \"refer\" or \"redirect\"",
           "/nodes/f/next: \"next\" is not used by transfer",
           "/nodes/g: missing required field \"to\"",
           "/nodes/g/on_failed: no node named \"nope\"",
           "/nodes/h/to: to must be a sip: or sips: URI: write the scheme first",
           "/nodes/i/to: to has an empty user part",
       }) {
    INFO(want);
    INFO(t);
    CHECK(t.find(want) != std::string::npos);
  }
  // webhook and record stay reserved; route, enqueue and transfer are verbs now.
  CHECK(is_reserved_verb("record"));
  CHECK(is_reserved_verb("webhook"));
  CHECK(!is_reserved_verb("route"));
  CHECK(is_builtin_verb("enqueue"));
  CHECK(is_builtin_verb("transfer"));
}

TEST_CASE("route: queue escalation steps are checked and carried to the port") {
  std::string t = flowtest::problems_text(R"J({"flow": "f", "start": "a", "nodes": {
    "a": {"verb": "enqueue", "plan": "p", "queue": {"escalate": {"after_s": 5}}, "next": "b"},
    "b": {"verb": "enqueue", "plan": "p", "next": "c",
          "queue": {"escalate": [{"after_s": 60, "priority": 200}, {"after_s": 30, "priority": 100},
                                 {"after_s": 90, "priority": 300}, {"after_s": 0, "priority": 1},
                                 {"priority": 5}, 7, {"after_s": 99, "priority": 1, "x": 1}]}},
    "c": {"verb": "hangup"}}})J");
  for (const char *want : {
           "/nodes/a/queue/escalate: escalate is a list",
           "/nodes/b/queue/escalate/1: escalation steps come later (after_s grows) and raise",
           "/nodes/b/queue/escalate/2: escalation steps come later",
           "/nodes/b/queue/escalate/3/after_s: must be an integer from 1 to 86400",
           "/nodes/b/queue/escalate/4: an escalation step needs after_s and priority",
           "/nodes/b/queue/escalate/5: an escalation step is",
           "/nodes/b/queue/escalate/6/x: unknown field \"x\""})
    CHECK_MESSAGE(t.find(want) != std::string::npos, want, "\n", t);

  SimulationOptions o;
  o.route["w"] = {route_end("ended", "vici")};
  auto r = run(R"J({"flow": "f", "start": "w", "nodes": {
    "w": {"verb": "enqueue", "plan": "p", "next": "bye",
          "queue": {"escalate": [{"after_s": 30, "priority": 300}, {"after_s": 90, "priority": 50}]}},
    "bye": {"verb": "hangup"}}})J",
               o);
  REQUIRE(r.routes.size() == 1);
  const auto &esc = r.routes[0].second.escalate;
  REQUIRE(esc.size() == 2);
  CHECK(esc[0] == std::pair<uint32_t, uint32_t>{30, 300});
  CHECK(esc[1] == std::pair<uint32_t, uint32_t>{90, 50});
}

TEST_CASE("route: the hold file must exist when a prompt directory is given") {
  auto dir = std::filesystem::temp_directory_path() / "ivr_test_route_prompts";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "hold.wav") << "RIFF";
  CompileOptions o;
  o.prompt_dir = dir.string();
  std::string doc = R"J({"flow": "f", "start": "a", "nodes": {
    "a": {"verb": "enqueue", "plan": "p", "queue": {"hold": {"file": "HOLD"}}}}})J";
  auto with = [&](const char *file) {
    std::string d = doc;
    d.replace(d.find("HOLD"), 4, file);
    return flowtest::problems_text(d, o);
  };
  CHECK(with("hold.wav").empty());
  CHECK(with("missing.wav").find("/nodes/a/queue/hold/file: missing prompt file \"missing.wav\"") !=
        std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_CASE("route: the request carries the rendered plan, headers, caller id and queue") {
  SimulationOptions o;
  o.call.from = "+15551234";
  o.vars["uui"] = "0a1b";
  o.route["to_sales"] = {route_end("ended", "vici")};
  auto r = run(kRoute, o);
  REQUIRE(r.routes.size() == 1);
  const RouteStart &rs = r.routes[0].second;
  CHECK(r.routes[0].first == "to_sales");
  CHECK(rs.node == "to_sales");
  CHECK(rs.plan == "sales");
  REQUIRE(rs.headers.size() == 2);
  CHECK(rs.headers[0] == std::pair<std::string, std::string>{"X-Lead-Id", "L-77"});
  CHECK(rs.headers[1] == std::pair<std::string, std::string>{"User-to-User", "0a1b;encoding=hex"});
  CHECK(rs.caller_id == "+15551234");
  CHECK(rs.ring_timeout_ms == 15000);
  CHECK(rs.max_attempts == 3);
  CHECK(rs.queue);
  CHECK(rs.priority == 100);
  CHECK(rs.max_wait_s == 300);
  CHECK(rs.hold_file == "hold.wav");
  CHECK(rs.announce_text == "You are caller number {position}.");
  CHECK(rs.announce_every_s == 30);
  CHECK(rs.announce_voice == "en-us");
  CHECK(rs.announce_rate_wpm == 180);
  CHECK(rs.variables == nullptr);  // the simulator's record outlives the call
}

TEST_CASE("route: enqueue queues with the defaults; route without a queue does not") {
  SimulationOptions o;
  auto r = run(R"J({"flow": "f", "start": "a", "nodes": {
    "a": {"verb": "enqueue", "plan": "support", "next": "b", "on_failed": "b"},
    "b": {"verb": "route", "plan": "{{'over' + 'flow'}}", "on_failed": "c"},
    "c": {"verb": "hangup"}}})J",
               o);
  REQUIRE(r.routes.size() == 2);
  const RouteStart &q = r.routes[0].second;
  CHECK(q.queue);
  CHECK(q.priority == 500);
  CHECK(q.max_wait_s == 0);
  CHECK(q.hold_file.empty());
  CHECK(q.announce_every_s == 0);
  CHECK(q.ring_timeout_ms == 20000);
  CHECK(q.max_attempts == 0);
  CHECK(q.caller_id.empty());
  const RouteStart &p = r.routes[1].second;
  CHECK(!p.queue);
  CHECK(p.plan == "overflow");
}

TEST_CASE("route: each outcome takes its exit and sets the step results") {
  SUBCASE("ended -> next") {
    SimulationOptions o;
    o.route["to_sales"] = {route_end("ended", "vici")};
    auto r = run(kRoute, o);
    CHECK(path_text(r) == "to_sales > survey");
    CHECK(r.hangup_reason == "survey ended vici 1 60000");
    CHECK(var(r, "steps.to_sales.sip_status") == "200");
    CHECK(var(r, "steps.to_sales.queued_ms") == "0");
    CHECK(var(r, "steps.to_sales.uri") == "");
    REQUIRE(!r.trace.empty());
    bool found = false;
    for (auto &s : r.trace)
      found = found || s.entry.detail ==
                           "plan sales -> ended (target vici, 1 attempt, talked 60 s) -> survey";
    CHECK(found);
  }
  SUBCASE("failed -> on_failed") {
    SimulationOptions o;
    o.route["to_sales"] = {route_end("failed", "vici", 486, "busy everywhere")};
    auto r = run(kRoute, o);
    CHECK(path_text(r) == "to_sales > sorry");
    CHECK(r.hangup_reason == "sorry 486 busy everywhere");
  }
  SUBCASE("timeout -> on_timeout") {
    SimulationOptions o;
    o.route["to_sales"] = {route_end("timeout")};
    auto r = run(kRoute, o);
    CHECK(path_text(r) == "to_sales > voicemail");
    CHECK(r.hangup_reason == "voicemail 300000");
    CHECK(r.duration_ms == 300000);
  }
  SUBCASE("error -> on_error, with the port's reason") {
    SimulationOptions o;
    o.route["to_sales"] = {route_end("error", "", 0, "no routing plan named \"sales\"")};
    auto r = run(kRoute, o);
    CHECK(path_text(r) == "to_sales > oops");
    CHECK(r.hangup_reason == "oops route error: plan sales: no routing plan named \"sales\"");
    CHECK(var(r, "steps.to_sales.outcome") == "error");
  }
}

TEST_CASE("route: missing exits fall back: timeout -> on_failed -> on_error -> the call ends") {
  const char *doc = R"J({"flow": "f", "start": "a", "nodes": {
    "a": {"verb": "enqueue", "plan": "p", "queue": {"max_wait_s": 5}, "EXITS"},
    "failed": {"verb": "hangup", "reason": "failed"},
    "err": {"verb": "hangup", "reason": "err {{steps.a.error}}"}}})J";
  auto with = [&](const char *exits) {
    std::string d = doc;
    d.replace(d.find("\"EXITS\""), 7, exits);
    return d;
  };
  SimulationOptions o;
  o.route["a"] = {route_end("timeout")};
  auto r = run(with(R"("on_failed": "failed", "on_error": "err")"), o);
  CHECK(path_text(r) == "a > failed");
  CHECK(r.duration_ms == 5000);
  r = run(with(R"("on_error": "err", "next": "failed")"), o);
  CHECK(path_text(r) == "a > err");
  CHECK(r.hangup_reason == "err enqueue timeout: plan p: max_wait_s passed in the queue");
  o.route["a"] = {route_end("failed")};
  r = run(with(R"("on_error": "err", "next": "failed")"), o);
  CHECK(r.hangup_reason == "err enqueue failed: plan p: no target took the call");
  // No exit at all: the flow ends in error (SIP 500 / BYE), the message names the node.
  r = run(R"J({"flow": "f", "start": "a", "nodes": {
    "a": {"verb": "enqueue", "plan": "p", "next": "done"},
    "done": {"verb": "hangup"}}})J",
          o);
  CHECK(r.end == EndReason::error);
  CHECK(r.error == "node a: enqueue failed: plan p: no target took the call");
  // Ended without next: the flow ends as at the end of a graph.
  o.route["a"] = {route_end("ended", "t1")};
  r = run(with(R"("on_error": "err", "on_failed": "failed")"), o);
  CHECK(path_text(r) == "a");
  CHECK(r.end == EndReason::completed);
  CHECK(r.hangup_reason == "flow completed");
  // An outcome the port should never give is an error, not a silent exit.
  o.route["a"] = {route_end("delivered")};
  r = run(with(R"("on_error": "err", "next": "failed")"), o);
  CHECK(r.hangup_reason ==
        "err enqueue: the routing port reported an unknown outcome \"delivered\"");
}

TEST_CASE("route: values checked per call fail the step before anything is dialled") {
  SUBCASE("a priority template rendering 1200") {
    SimulationOptions o;
    o.vars["priority"] = "1200";
    o.route["to_sales"] = {route_end("ended", "vici")};
    auto r = run(kRoute, o);
    CHECK(r.routes.empty());
    CHECK(path_text(r) == "to_sales > oops");
    CHECK(r.hangup_reason ==
          "oops route: queue/priority rendered \"1200\": priority must be an integer from 0 to "
          "999 (lower is served first)");
    CHECK(var(r, "steps.to_sales.outcome") == "error");
  }
  SUBCASE("an expression choosing the priority") {
    const char *doc = R"J({"flow": "f", "start": "a", "variables": {"vip": true}, "nodes": {
      "a": {"verb": "enqueue", "plan": "p", "queue": {"priority": "{{vars.vip ? 10 : 500}}"}}}})J";
    auto r = run(doc);
    REQUIRE(r.routes.size() == 1);
    CHECK(r.routes[0].second.priority == 10);
  }
  SUBCASE("plan, caller id, header and hold file") {
    const char *doc = R"J({"flow": "f", "start": "a", "nodes": {
      "a": {"verb": "route", "plan": "{{vars.plan}}", "caller_id": "{{vars.cid}}",
            "headers": {"X-Note": "{{vars.note}}"},
            "queue": {"hold": {"file": "{{vars.hold}}"}}, "on_error": "e"},
      "e": {"verb": "hangup", "reason": "{{steps.a.error}}"}}})J";
    auto attempt = [&](std::map<std::string, std::string> vars) {
      SimulationOptions o;
      o.vars = {{"plan", "sales"}, {"cid", "1000"}, {"note", "ok"}, {"hold", "h.wav"}};
      for (auto &[k, v] : vars) o.vars[k] = v;
      return run(doc, o).hangup_reason;
    };
    CHECK(attempt({{"plan", "sales plan"}}).find("route: plan \"sales plan\": plan names") == 0);
    CHECK(attempt({{"cid", "<sip:x>"}}).find("route: caller_id \"<sip:x>\": caller_id is") == 0);
    CHECK(attempt({{"note", "a\nb"}}) ==
          "route: headers/X-Note: the rendered value holds a line break");
    CHECK(attempt({{"hold", "/etc/passwd"}}).find("route: queue/hold/file \"/etc/passwd\"") == 0);
    // An empty caller id is the caller's own; everything fine reaches the port.
    CHECK(attempt({{"cid", ""}}).find("no routing in the simulator") != std::string::npos);
  }
}

TEST_CASE("route: the port reads the call's variables and renders its own templates") {
  auto program = flowtest::must_compile(R"J({"flow": "vars_flow", "version": "3", "start": "a",
    "variables": {"lead_id": "L-77", "score": 87, "unused": true},
    "nodes": {
    "a": {"verb": "set", "values": {"tier": "'gold'"}, "next": "r"},
    "r": {"verb": "route", "plan": "sales", "next": "b", "on_error": "b"},
    "b": {"verb": "hangup", "reason": "{{vars.lead_id}} {{steps.r.outcome}} {{steps.r.target}}"}}})J");
  RecordingPort port;
  Session s(program, port, call_info());
  s.set_variable("agent", "1001");
  std::map<std::string, std::string> seen;
  port.on_route = [&](const RouteStart &req) {
    REQUIRE(req.variables != nullptr);
    const RouteVariables &v = *req.variables;
    CHECK(v.get("vars.lead_id").s == "L-77");  // read by the flow: a slot
    CHECK(v.get("vars.score").n == 87);        // no expression reads it, still there, typed
    CHECK(v.get("vars.unused").type == ivr::rules::Type::boolean);
    CHECK(v.get("vars.tier").s == "gold");  // set by a set node
    CHECK(v.get("vars.agent").s == "1001");
    CHECK(v.get("call.from").s == "+15551234");
    CHECK(v.get("call.flow_version").s == "3");
    CHECK(v.get("call.headers.x_campaign").s == "spring");
    CHECK(v.get("vars.nope").is_null());
    CHECK(v.get("steps.r.outcome").is_null());  // not yet
    auto ok = v.render(
        "{{vars.lead_id}}|{{vars.nope}}|{{call.from}}|{{vars.score + 1}}|"
        "{{call.headers.x_tier}}|{{upper(vars.tier)}}");
    REQUIRE(ok.ok());
    seen["render"] = *ok;
    auto again = v.render(
        "{{vars.lead_id}}|{{vars.nope}}|{{call.from}}|{{vars.score + 1}}|"
        "{{call.headers.x_tier}}|{{upper(vars.tier)}}");  // cached
    REQUIRE(again.ok());
    CHECK(*again == *ok);
    auto bad = v.render("lead {{vars.lead_id");
    REQUIRE(!bad.ok());
    seen["bad"] = bad.error().message;
    auto bad_expr = v.render("{{vars.score +}}");
    REQUIRE(!bad_expr.ok());
    seen["bad_expr"] = bad_expr.error().message;
  };
  s.start();
  REQUIRE(port.routes.size() == 1);
  CHECK(seen["render"] == "L-77||+15551234|88|gold|GOLD");
  CHECK(seen["bad"] == "template: \"{{\" at column 6 is not closed by \"}}\"");
  CHECK(seen["bad_expr"].find("template: {{vars.score +}}: ") == 0);
  CHECK(port.answers == 0);  // routing an unanswered call is the port's business
  CHECK(!s.finished());

  // The step results are there after the completion, for the flow and for the port alike.
  const RouteVariables &v = *port.routes[0].first.variables;
  RouteDone d;
  d.outcome = "ended";
  d.target = "vici";
  d.uri = "sip:8300@10.0.0.5";
  d.sip_status = 200;
  d.attempts = 2;
  d.talk_ms = 1500;
  s.on_route_done(port.routes[0].second, std::move(d));
  CHECK(s.finished());
  CHECK(s.end_reason() == EndReason::hangup_verb);
  CHECK(v.get("steps.r.outcome").s == "ended");
  CHECK(v.get("steps.r.uri").s == "sip:8300@10.0.0.5");
  CHECK(v.get("steps.r.attempts").n == 2);
  auto r = v.render("{{steps.r.target}} {{steps.r.talk_ms}}");
  REQUIRE(r.ok());
  CHECK(*r == "vici 1500");
  bool has = false;
  for (auto &[k, val] : s.variables()) has = has || (k == "steps.r.target" && val == "vici");
  CHECK(has);
}

TEST_CASE("route: the caller hanging up cancels the route; a late completion is ignored") {
  auto program = flowtest::must_compile(R"J({"flow": "f", "start": "r", "nodes": {
    "r": {"verb": "enqueue", "plan": "sales", "next": "b"},
    "b": {"verb": "hangup"}}})J");
  RecordingPort port;
  Session s(program, port, call_info());
  s.start();
  RouteDone ended;
  ended.outcome = "ended";
  REQUIRE(port.routes.size() == 1);
  uint64_t token = port.routes[0].second;
  s.on_route_done(token + 1, RouteDone(ended));  // not this step's token: ignored
  CHECK(!s.finished());
  s.on_call_ended();
  CHECK(s.finished());
  CHECK(s.end_reason() == EndReason::caller_hangup);
  REQUIRE(port.cancelled_routes.size() == 1);
  CHECK(port.cancelled_routes[0] == token);
  CHECK(port.hangups == 0);  // the caller is gone already
  s.on_route_done(token, std::move(ended));
  CHECK(s.path_text() == "r");

  // In the simulator: the caller leaves the queue after 30 s.
  SimulationOptions o;
  o.route["r"] = {route_end("ended", "vici")};
  o.hangup_at_ms = 30000;
  auto r = simulate(program, o);
  CHECK(r.end == EndReason::caller_hangup);
  CHECK(r.duration_ms == 30000);
  CHECK(path_text(r) == "r");
}

TEST_CASE("transfer: ok ends the flow; a failure takes on_failed, else on_error") {
  const char *doc = R"J({"flow": "f", "start": "x", "nodes": {
    "x": {"verb": "transfer", "to": "sip:{{vars.agent}}@pbx.example.com", "method": "redirect",
          "on_failed": "sorry", "on_error": "oops"},
    "sorry": {"verb": "transfer", "to": "sips:desk@pbx.example.com", "on_error": "oops"},
    "oops": {"verb": "hangup", "reason": "oops {{steps.x.sip_status}} {{steps.sorry.sip_status}} {{steps.sorry.error}}"}}})J";
  SimulationOptions o;
  o.vars["agent"] = "1001";
  o.transfer["x"] = {SimTransferReply{}};
  auto r = run(doc, o);
  CHECK(path_text(r) == "x");
  CHECK(r.end == EndReason::completed);
  CHECK(r.hangup_reason == "transferred");
  REQUIRE(r.transfers.size() == 1);
  CHECK(r.transfers[0].second.uri == "sip:1001@pbx.example.com");
  CHECK(r.transfers[0].second.method == TransferStart::Method::redirect);
  REQUIRE(r.trace.size() == 2);
  CHECK(r.trace[0].entry.detail == "redirect (302) to sip:1001@pbx.example.com");
  CHECK(r.trace[1].entry.detail == "transferred to sip:1001@pbx.example.com");
  CHECK(r.trace[1].at_ms == 100);

  o.transfer["x"] = {SimTransferReply{false, 486, "Busy Here"}};
  o.transfer["sorry"] = {SimTransferReply{false, 603, ""}};
  r = run(doc, o);
  CHECK(path_text(r) == "x > sorry > oops");
  CHECK(r.hangup_reason == "oops 486 603 transfer to sips:desk@pbx.example.com failed: SIP 603");
  REQUIRE(r.transfers.size() == 2);
  CHECK(r.transfers[1].second.method == TransferStart::Method::refer);

  // The URI is checked after rendering.
  o.vars["agent"] = "";
  r = run(doc, o);
  CHECK(r.transfers.empty());
  CHECK(path_text(r) == "x > oops");
  CHECK(var(r, "steps.x.error") == "transfer: to has an empty user part: \"sip:@pbx.example.com\"");
  r = run(R"J({"flow": "f", "start": "x", "nodes": {
    "x": {"verb": "transfer", "to": "{{vars.uri}}"}}})J",
          [] {
            SimulationOptions so;
            so.vars["uri"] = "tel:+15551234";
            return so;
          }());
  CHECK(r.end == EndReason::error);
  CHECK(r.error == "node x: transfer: to must be a sip: or sips: URI, not \"tel:+15551234\"");
}

TEST_CASE("transfer: the caller hanging up first: the completion is ignored") {
  auto program = flowtest::must_compile(R"J({"flow": "f", "start": "x", "nodes": {
    "x": {"verb": "transfer", "to": "sip:desk@pbx"}}})J");
  RecordingPort port;
  Session s(program, port, call_info());
  s.start();
  REQUIRE(port.transfers.size() == 1);
  s.on_call_ended();
  s.on_transfer_done(port.transfers[0].second, TransferDone{true, 0, ""});
  CHECK(s.end_reason() == EndReason::caller_hangup);
  CHECK(port.hangups == 0);
}

TEST_CASE("simulator: route scripts answer in turn; unscripted nodes fail with a hint") {
  const char *doc = R"J({"flow": "f", "start": "a", "nodes": {
    "a": {"verb": "route", "plan": "sales", "next": "a", "on_failed": "b"},
    "b": {"verb": "transfer", "to": "sip:desk@pbx", "on_failed": "c"},
    "c": {"verb": "hangup", "reason": "{{steps.a.error}} / {{steps.b.error}}"}}})J";
  auto r = run(doc);
  CHECK(path_text(r) == "a > b > c");
  CHECK(r.hangup_reason ==
        "no routing in the simulator (use --route a=OUTCOME[:TARGET]) / no transfer in the "
        "simulator (use --transfer b=ok|STATUS)");
  CHECK(r.duration_ms == 110);

  SimulationOptions o;
  o.route["a"] = {route_end("ended", "t1"), route_end("ended", "t2"), route_end("failed", "t3")};
  o.transfer["b"] = {SimTransferReply{false, 486, "busy"}};
  r = run(doc, o);
  CHECK(path_text(r) == "a > a > a > b > c");
  REQUIRE(r.routes.size() == 3);
  CHECK(var(r, "steps.a.target") == "t3");
  CHECK(var(r, "steps.a.sip_status") == "486");
  CHECK(r.hangup_reason == " / busy");  // failed without an error text
  CHECK(r.duration_ms == 62000 + 62000 + 2000 + 100);
}
