// The per-call interpreter's state and steps, shared by its source files: interpreter.cpp
// (variables, control flow, prompts, gathers, custom verbs; the Session API),
// lookup_steps.cpp (http and db steps, their budget and hold audio) and route_steps.cpp
// (route, enqueue and transfer steps, and the call's variables as the routing port reads
// them). Private to lib/flow.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "flow/interpreter.h"
#include "flow/template.h"

namespace ivr::flow {

namespace session_detail {

enum class Wait {
  none,
  answer,
  prompt,
  feedback_prompt,
  collect,
  timer,
  custom,
  http,
  db,
  route,
  transfer
};

// "Content-Type" -> "content_type": a header name as a step-result key.
inline std::string header_key(std::string_view name) {
  std::string out;
  for (char c : name)
    out += c == '-' ? '_' : static_cast<char>(tolower(static_cast<unsigned char>(c)));
  return out;
}

// "https://crm.example.com:8443/x" -> "crm.example.com:8443", for messages.
inline std::string host_of(const std::string &url) {
  size_t start = url.find("://");
  start = start == std::string::npos ? 0 : start + 3;
  size_t end = url.find_first_of("/?#", start);
  return url.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

inline const char *collect_end_name(CollectEnd e) {
  switch (e) {
    case CollectEnd::max_digits:
      return "max_digits";
    case CollectEnd::terminator:
      return "terminator";
    case CollectEnd::first_timeout:
      return "first_timeout";
    case CollectEnd::inter_timeout:
      return "inter_timeout";
    case CollectEnd::cancelled:
      return "cancelled";
  }
  return "?";
}

// Header names become variable names: "X-Lead-Id" -> call.headers.x_lead_id.
inline std::string header_var(std::string_view name) {
  std::string out = "call.headers.";
  for (char c : name)
    out += c == '-' ? '_' : static_cast<char>(tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace session_detail

using namespace session_detail;

struct Session::Impl {
  Session &self;
  CallPort &port;
  CallInfo info;
  SessionLimits limits;
  const Program &prog;

  // Variables: one value per slot of the program's table; strings owned beside them.
  std::vector<rules::Value> values;
  std::vector<std::string> strings;
  std::map<std::string, std::string> shown;  // vars.* / steps.* as text, for records
  // Values set under names no expression of the program reads (so without a slot): the
  // routing port may still ask for them (RouteVariables). The string is the value's storage.
  std::map<std::string, std::pair<rules::Value, std::string>, std::less<>> unslotted;
  rules::FixedEvalContext<4096> ctx;

  struct Frame {
    int graph;
    NodeIndex call;    // the calling subflow node (its on_error catches the subflow's errors)
    NodeIndex resume;  // where the caller continues after the subflow returns
  };
  int graph = 0;
  NodeIndex cur = kNoNode;
  std::vector<Frame> stack;
  Wait wait = Wait::none;
  bool answered = false;
  bool entered = false;  // the current node has been recorded in the path
  unsigned steps_since_wait = 0;
  unsigned attempts = 0;  // gather/menu attempts made
  const Prompt *feedback = nullptr;
  uint64_t next_token = 1;
  uint64_t timer_token = 0, custom_token = 0, http_token = 0, db_token = 0;
  uint64_t route_token = 0, transfer_token = 0;
  std::string route_plan, transfer_uri;  // of the step waiting, for its completion's trace
  std::chrono::system_clock::time_point lookup_started;
  uint64_t lookup_used_ms = 0;  // of the program's lookup budget (http and db steps)
  bool hold_playing = false;
  bool running = false;  // inside run(): completions must not re-enter
  std::vector<std::pair<std::string, std::string>> host_vars;

  // The call's variables as a route step's port reads them: any call.*, vars.* or steps.*
  // value the call has, and template text rendered against them (routing configuration's
  // header templates). Valid while the session lives; values may change once the step ends.
  class Variables final : public RouteVariables {
   public:
    explicit Variables(const Impl &m) : m_(m) {}
    rules::Value get(std::string_view name) const override;
    Result<std::string> render(std::string_view template_text) const override;

   private:
    // A template compiled against the program's slots; names without a slot are `extra`,
    // bound after them per rendering.
    struct Compiled {
      Template tmpl;
      std::vector<std::string> extra;
    };
    const Impl &m_;
    mutable std::map<std::string, Compiled, std::less<>> cache_;  // text -> template
  };
  Variables route_vars{*this};

  Impl(Session &s, CallPort &p, CallInfo i, SessionLimits l)
      : self(s), port(p), info(std::move(i)), limits(l), prog(*s.program_) {
    size_t n = prog.variables->size();
    values.resize(n);
    strings.resize(n);
    answered = info.answered;
    ctx.set_schedules(prog.schedules.get());
  }

  // ---- variables ----
  void set_slot(int64_t slot, rules::Value v);
  void set_var(const std::string &name, rules::Value v);
  // A value mapped from a response. A number of more than 15 digits (an account id) does
  // not survive a double: it is kept as its text.
  void set_mapped(const std::string &name, const net::Value &v);
  void set_text(const std::string &name, const std::string &text);
  rules::Bindings bindings() const { return {values.data(), values.size()}; }
  // The instant now() and in_schedule() see, and the schedule node tests: the session's
  // clock (virtual in the simulator), never read by the evaluator itself.
  std::chrono::system_clock::time_point now() const;
  Result<rules::Value> eval(const rules::Expression &e);
  Result<std::string> render(const Template &t);
  void init_facts();
  static rules::Value literal_value(const Literal &l);

  // ---- position ----
  const Graph &g() const { return prog.graphs[static_cast<size_t>(graph)]; }
  const Node &node() const { return g().nodes[static_cast<size_t>(cur)]; }
  std::string display(const Node &n) const;
  void trace(std::string detail);
  void go(NodeIndex next);

  // ---- ending ----
  void finish(EndReason r, const std::string &err, int sip_status, const std::string &reason);
  // A step failed: its on_error exit when it has one; else, inside a subflow, the on_error
  // of the nearest calling subflow node that has one (the subflows in between are left);
  // else the call ends with the error.
  void fail(const std::string &err);

  // ---- the loop ----
  void run();
  void waiting(Wait w);
  void end_of_graph();
  bool need_answer();
  void step();

  // ---- the steps (one exec per verb) ----
  void exec(const Node &n, const Answer &);
  bool start_prompt(const Prompt &p, std::string *detail);
  void exec(const Node &, const Play &p);
  void exec(const Node &, const Gather &gs);
  void gather_done(const Gather &gs, const std::string &digits, CollectEnd end);
  std::string exit_text(NodeIndex target) const;
  void exec(const Node &n, const Set &s);
  void exec(const Node &, const If &f);
  void exec(const Node &, const Switch &s);
  void pick(NodeIndex t);
  void exec(const Node &, const ScheduleBranch &b);
  void exec(const Node &, const Pause &p);
  void exec(const Node &n, const Goto &);
  void exec(const Node &n, const Subflow &s);
  void exec(const Node &, const Return &);
  void exec(const Node &, const Hangup &h);
  void exec(const Node &, const Custom &c);

  // ---- lookups (lookup_steps.cpp) ----
  // What is left of the call's lookup budget, in ms.
  uint64_t budget_left() const;
  std::string budget_spent() const;
  // Ends the wait of a lookup step: charges the budget, stops hold audio; returns the time
  // it took.
  int64_t lookup_finished();
  void exec(const Node &n, const Http &h);
  void begin_hold(const Prompt &hold);
  void start_hold(const Prompt &hold);
  // The lookup failed for `reason`: on_timeout for a timeout when the node has one, else
  // on_error (or the end of the call).
  void http_failed(const Node &n, const Http &h, const std::string &reason,
                   const std::string &error);
  void http_done(HttpDone &&d);
  void exec(const Node &n, const Db &d);
  void db_failed(const Node &n, const Db &d, const std::string &reason, const std::string &error);
  void set_cell(const std::string &name, const db::Cell &c);
  void db_done(DbDone &&r);

  // ---- routing (route_steps.cpp) ----
  void exec(const Node &n, const Route &r);
  // The route's end: steps.<node>.* and the exit for its outcome.
  void route_done(RouteDone &&d);
  void exec(const Node &n, const Transfer &t);
  void transfer_done(TransferDone &&d);

  static std::string to_text(const rules::Value &v);
};

}  // namespace ivr::flow
