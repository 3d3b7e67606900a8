#include "flow/interpreter.h"

#include "flow/session_impl.h"

namespace ivr::flow {

const char *end_reason_name(EndReason r) {
  switch (r) {
    case EndReason::completed:
      return "completed";
    case EndReason::hangup_verb:
      return "hangup";
    case EndReason::caller_hangup:
      return "caller_hangup";
    case EndReason::error:
      return "error";
    case EndReason::step_limit:
      return "step_limit";
  }
  return "?";
}

// ---- Session::Impl: variables, control flow and the steps other than lookups ----

// ---- variables ----
void Session::Impl::set_slot(int64_t slot, rules::Value v) {
  if (slot < 0 || static_cast<size_t>(slot) >= values.size()) return;
  size_t i = static_cast<size_t>(slot);
  if (v.type == rules::Type::string) {
    strings[i].assign(v.s);
    v.s = strings[i];
  }
  values[i] = v;
}

void Session::Impl::set_var(const std::string &name, rules::Value v) {
  shown[name] = to_text(v);
  int64_t slot = prog.variables->slot_of(name);
  if (slot >= 0) return set_slot(slot, v);
  auto &[value, text] = unslotted[name];
  if (v.type == rules::Type::string) {
    text.assign(v.s);
    v.s = text;
  }
  value = v;
}

// A value mapped from a response. A number of more than 15 digits (an account id) does
// not survive a double: it is kept as its text.
void Session::Impl::set_mapped(const std::string &name, const net::Value &v) {
  switch (v.kind()) {
    case net::Value::Kind::null:
      return set_var(name, {});
    case net::Value::Kind::boolean:
      return set_var(name, rules::Value::boolean(v.as_bool()));
    case net::Value::Kind::string:
      return set_text(name, v.as_string());
    case net::Value::Kind::number: {
      std::string text = v.text();
      size_t digits = 0;
      for (char c : text) digits += c >= '0' && c <= '9';
      if (digits > 15 && text.find_first_of(".eE") == std::string::npos)
        return set_text(name, text);
      return set_var(name, rules::Value::number(v.as_number()));
    }
  }
}

void Session::Impl::set_text(const std::string &name, const std::string &text) {
  set_var(name, rules::Value::string(text));
}

std::chrono::system_clock::time_point Session::Impl::now() const {
  return self.clock_ ? self.clock_() : std::chrono::system_clock::now();
}

Result<rules::Value> Session::Impl::eval(const rules::Expression &e) {
  ctx.set_time(now());
  return rules::evaluate(e, bindings(), ctx);
}

Result<std::string> Session::Impl::render(const Template &t) {
  return render_template(t, [this](const rules::Expression &e) { return eval(e); });
}

void Session::Impl::init_facts() {
  auto fact = [&](const char *name, const std::string &v) {
    set_slot(prog.variables->slot_of(name), rules::Value::string(v));
  };
  fact("call.id", info.call_id);
  fact("call.from", info.from);
  fact("call.to", info.to);
  fact("call.from_uri", info.from_uri);
  fact("call.to_uri", info.to_uri);
  fact("call.flow", prog.id);
  fact("call.flow_version", prog.version);
  for (auto &[k, v] : info.headers) {
    int64_t slot = prog.variables->slot_of(header_var(k));
    if (slot >= 0 && values[static_cast<size_t>(slot)].is_null())
      set_slot(slot, rules::Value::string(v));
  }
  for (auto &[name, lit] : prog.initial_vars) set_var(name, literal_value(lit));
}

rules::Value Session::Impl::literal_value(const Literal &l) {
  switch (l.type) {
    case rules::Type::boolean:
      return rules::Value::boolean(l.b);
    case rules::Type::number:
      return rules::Value::number(l.n);
    case rules::Type::string:
      return rules::Value::string(l.s);
    default:
      return {};
  }
}

// ---- position ----
std::string Session::Impl::display(const Node &n) const {
  return g().name.empty() ? n.name : g().name + "/" + n.name;
}

void Session::Impl::trace(std::string detail) {
  if (self.sink_) self.sink_(TraceEntry{display(node()), node().verb, std::move(detail)});
}

void Session::Impl::go(NodeIndex next) {
  cur = next;
  entered = false;
}

// ---- ending ----
void Session::Impl::finish(EndReason r, const std::string &err, int sip_status,
                           const std::string &reason) {
  if (self.finished_) return;
  self.finished_ = true;
  self.end_reason_ = r;
  self.error_ = err;
  wait = Wait::none;
  if (timer_token) port.cancel_timer(timer_token);
  if (http_token) port.cancel_http(http_token);
  http_token = 0;
  if (db_token) port.cancel_db(db_token);
  db_token = 0;
  if (route_token) port.cancel_route(route_token);
  route_token = 0;
  transfer_token = 0;  // a transfer cannot be taken back; its completion is ignored
  if (r != EndReason::caller_hangup) port.hangup(sip_status, reason);
}

// A step failed: its on_error exit when it has one; else, inside a subflow, the on_error
// of the nearest calling subflow node that has one (the subflows in between are left);
// else the call ends with the error.
void Session::Impl::fail(const std::string &err) {
  std::string where = cur == kNoNode ? "" : "node " + display(node()) + ": ";
  if (cur != kNoNode && node().on_error != kNoNode) {
    set_text("steps." + node().name + ".error", err);
    trace("error: " + err + " -> " + g().nodes[static_cast<size_t>(node().on_error)].name);
    go(node().on_error);
    return;
  }
  if (cur != kNoNode) trace("error: " + err);
  for (size_t depth = stack.size(); depth-- > 0;) {
    const Frame &f = stack[depth];
    const Node &caller =
        prog.graphs[static_cast<size_t>(f.graph)].nodes[static_cast<size_t>(f.call)];
    if (caller.on_error == kNoNode) continue;
    stack.resize(depth);
    graph = f.graph;
    cur = f.call;
    set_text("steps." + caller.name + ".error", where + err);
    trace("error in subflow: " + where + err + " -> " +
          g().nodes[static_cast<size_t>(caller.on_error)].name);
    go(caller.on_error);
    return;
  }
  finish(EndReason::error, where + err, 500, "flow error");
}

// ---- the loop ----
void Session::Impl::run() {
  if (running) return;
  running = true;
  while (!self.finished_ && wait == Wait::none) {
    if (cur == kNoNode) {
      end_of_graph();
      continue;
    }
    if (++steps_since_wait > limits.max_steps_without_wait) {
      std::string msg = "stopped after " + std::to_string(limits.max_steps_without_wait) +
                        " steps without waiting for the caller (a loop through node " +
                        display(node()) + "?)";
      if (self.sink_) self.sink_(TraceEntry{display(node()), node().verb, "error: " + msg});
      finish(EndReason::step_limit, msg, 500, "flow error");
      break;
    }
    step();
  }
  running = false;
}

void Session::Impl::waiting(Wait w) {
  wait = w;
  steps_since_wait = 0;
}

void Session::Impl::end_of_graph() {
  if (!stack.empty()) {
    Frame f = stack.back();
    stack.pop_back();
    graph = f.graph;
    go(f.resume);
    return;
  }
  finish(EndReason::completed, "", 0, "flow completed");
}

bool Session::Impl::need_answer() {
  if (answered) return false;
  port.start_answer();
  waiting(Wait::answer);
  return true;
}

void Session::Impl::step() {
  const Node &n = node();
  if (!entered) {
    entered = true;
    if (self.path_.size() < kMaxPathRecord)
      self.path_.push_back(display(n));
    else
      ++self.path_dropped_;
    attempts = 0;
    feedback = nullptr;
  }
  std::visit([&](const auto &spec) { exec(n, spec); }, n.spec);
}

void Session::Impl::exec(const Node &n, const Answer &) {
  if (answered) {
    trace("already answered");
    go(n.next);
    return;
  }
  trace("answer");
  port.start_answer();
  waiting(Wait::answer);
}

bool Session::Impl::start_prompt(const Prompt &p, std::string *detail) {
  auto text = render(p.content);
  if (!text.ok()) {
    fail(text.error().message);
    return false;
  }
  if (p.kind == Prompt::Kind::file) {
    *detail = "file " + *text;
    port.start_play(*text);
  } else {
    *detail = "say \"" + *text + "\" voice " + p.voice;
    port.start_say(*text, p.voice, p.rate_wpm);
  }
  return true;
}

void Session::Impl::exec(const Node &, const Play &p) {
  if (need_answer()) return;
  std::string detail;
  if (!start_prompt(p.prompt, &detail)) return;
  trace(detail);
  waiting(Wait::prompt);
}

void Session::Impl::exec(const Node &, const Gather &gs) {
  if (need_answer()) return;
  if (feedback) {
    const Prompt *fb = feedback;
    feedback = nullptr;
    std::string detail;
    if (!start_prompt(*fb, &detail)) return;
    trace(detail);
    waiting(Wait::feedback_prompt);
    return;
  }
  std::string detail;
  if (gs.prompt.kind != Prompt::Kind::none) {
    if (!start_prompt(gs.prompt, &detail)) return;
    trace(detail);
  }
  port.start_collect(gs.collect);
  trace("collect attempt " + std::to_string(attempts + 1) + " of " +
        std::to_string(gs.retries + 1));
  waiting(Wait::collect);
}

void Session::Impl::gather_done(const Gather &gs, const std::string &digits, CollectEnd end) {
  const Node &n = node();
  ++attempts;
  set_var("steps." + n.name + ".digits", rules::Value::string(digits));
  set_var("steps." + n.name + ".attempts", rules::Value::number(attempts));
  std::string outcome;
  NodeIndex target = kNoNode;
  if (digits.empty()) {
    outcome = "no_input";
  } else if (gs.menu) {
    auto it = gs.choices.find(digits);
    if (it == gs.choices.end())
      outcome = "invalid";
    else {
      outcome = "ok";
      target = it->second;
    }
  } else if (digits.size() < gs.min_digits) {
    outcome = "invalid";
  } else if (gs.valid) {
    auto r = eval(*gs.valid);
    if (!r.ok()) {
      fail("valid: " + r.error().message);
      return;
    }
    bool ok = r->type == rules::Type::boolean && r->b;
    outcome = ok ? "ok" : "invalid";
    target = n.next;
  } else {
    outcome = "ok";
    target = n.next;
  }
  set_text("steps." + n.name + ".result", outcome);
  std::string detail = "digits \"" + digits + "\" (" + collect_end_name(end) + ") " + outcome;
  if (outcome == "ok") {
    if (!gs.store.empty()) set_text(gs.store, digits);
    trace(detail + exit_text(target));
    go(target);
    return;
  }
  if (attempts > gs.retries) {
    NodeIndex exit = outcome == "no_input" ? gs.on_no_input : gs.on_invalid;
    trace(detail + ", retries exhausted" + exit_text(exit));
    go(exit);
    return;
  }
  feedback = outcome == "no_input" ? &gs.no_input_prompt : &gs.invalid_prompt;
  if (feedback->kind == Prompt::Kind::none) feedback = nullptr;
  trace(detail + ", retrying");
}

std::string Session::Impl::exit_text(NodeIndex target) const {
  if (target == kNoNode) return " -> (end)";
  return " -> " + g().nodes[static_cast<size_t>(target)].name;
}

void Session::Impl::exec(const Node &n, const Set &s) {
  std::string detail;
  for (const Set::Assignment &a : s.assignments) {
    rules::Value v;
    std::string text;
    if (auto *e = std::get_if<rules::Expression>(&a.value)) {
      auto r = eval(*e);
      if (!r.ok()) {
        fail(a.variable + ": " + r.error().message);
        return;
      }
      v = *r;
      if (v.type == rules::Type::string) {
        text.assign(v.s);  // the scratch buffer is reused by the next evaluation
        v.s = text;
      }
    } else if (auto *t = std::get_if<Template>(&a.value)) {
      auto r = render(*t);
      if (!r.ok()) {
        fail(a.variable + ": " + r.error().message);
        return;
      }
      text = std::move(*r);
      v = rules::Value::string(text);
    } else {
      v = literal_value(std::get<Literal>(a.value));
    }
    set_var(a.variable, v);
    if (!detail.empty()) detail += ", ";
    detail += a.variable + " = " + to_text(v);
  }
  trace(detail);
  go(n.next);
}

void Session::Impl::exec(const Node &, const If &f) {
  auto r = eval(f.condition);
  if (!r.ok()) {
    fail("condition: " + r.error().message);
    return;
  }
  bool yes = r->type == rules::Type::boolean && r->b;
  NodeIndex t = yes ? f.then_node : f.else_node;
  trace(std::string(yes ? "true" : "false") + exit_text(t));
  go(t);
}

void Session::Impl::exec(const Node &, const Switch &s) {
  if (s.rule_set >= 0) {
    const rules::RuleSet &set = prog.rule_sets[static_cast<size_t>(s.rule_set)];
    ctx.set_time(now());
    auto m = set.first_match(bindings(), ctx);
    if (!m.ok()) {
      fail(m.error().message);
      return;
    }
    if (*m >= 0) {
      const std::string &result = set.result_name(set.rule(static_cast<size_t>(*m)).then);
      auto it = s.results.find(result);
      NodeIndex t = it != s.results.end() ? it->second : s.default_node;
      set_text("steps." + node().name + ".result", result);
      if (t == kNoNode) {
        fail("rule " + std::to_string(*m + 1) + " chose result \"" + result +
             "\", which has no exit in \"results\", and there is no \"default\"");
        return;
      }
      trace("rule " + std::to_string(*m + 1) + " -> result " + result + exit_text(t));
      return pick(t);
    }
    trace("no rule matched -> default");
    return pick(s.default_node);
  }
  for (size_t i = 0; i < s.cases.size(); ++i) {
    auto r = eval(s.cases[i].when);
    if (!r.ok()) {
      fail("case " + std::to_string(i + 1) + ": " + r.error().message);
      return;
    }
    if (r->type == rules::Type::boolean && r->b) {
      trace("case " + std::to_string(i + 1) + exit_text(s.cases[i].node));
      go(s.cases[i].node);
      return;
    }
  }
  trace("no case matched -> default");
  pick(s.default_node);
}

void Session::Impl::pick(NodeIndex t) {
  if (t == kNoNode) {
    fail("no case matched and there is no \"default\" exit");
    return;
  }
  go(t);
}

void Session::Impl::exec(const Node &, const ScheduleBranch &b) {
  const rules::Schedule *s = prog.schedules->find(b.schedule);
  if (!s) {
    fail("schedule \"" + b.schedule + "\" is not defined");
    return;
  }
  bool open = s->is_open(now());
  NodeIndex t = open ? b.open_node : b.closed_node;
  trace(std::string(open ? "open" : "closed") + exit_text(t));
  go(t);
}

void Session::Impl::exec(const Node &, const Pause &p) {
  trace(std::to_string(p.ms) + " ms");
  timer_token = next_token++;
  port.start_timer(p.ms, timer_token);
  waiting(Wait::timer);
}

void Session::Impl::exec(const Node &n, const Goto &) {
  trace(exit_text(n.next).substr(1));
  go(n.next);
}

void Session::Impl::exec(const Node &n, const Subflow &s) {
  if (stack.size() >= limits.max_subflow_depth) {
    fail("subflows nested deeper than " + std::to_string(limits.max_subflow_depth));
    return;
  }
  trace("call " + prog.graphs[static_cast<size_t>(s.graph)].name);
  stack.push_back({graph, cur, n.next});
  graph = s.graph;
  go(g().start);
}

void Session::Impl::exec(const Node &, const Return &) {
  trace("return");
  go(kNoNode);  // end_of_graph() pops the frame
}

void Session::Impl::exec(const Node &, const Hangup &h) {
  std::string reason = "flow hangup";
  if (!h.reason.parts.empty()) {
    auto r = render(h.reason);
    if (r.ok()) reason = *r;
  }
  trace(h.sip_status ? std::to_string(h.sip_status) + " " + reason : reason);
  finish(EndReason::hangup_verb, "", h.sip_status, reason);
}

void Session::Impl::exec(const Node &, const Custom &c) {
  CustomArgs args;
  std::string detail = c.verb;
  for (auto &[k, t] : c.args) {
    auto r = render(t);
    if (!r.ok()) {
      fail("args/" + k + ": " + r.error().message);
      return;
    }
    detail += " " + k + "=" + *r;
    args.values.emplace_back(k, std::move(*r));
  }
  trace(detail);
  custom_token = next_token++;
  timer_token = next_token++;
  waiting(Wait::custom);
  port.start_timer(c.timeout_ms, timer_token);
  port.start_custom(c.verb, args, custom_token);
}

std::string Session::Impl::to_text(const rules::Value &v) {
  switch (v.type) {
    case rules::Type::null:
      return "";
    case rules::Type::boolean:
      return v.b ? "true" : "false";
    case rules::Type::number:
      return number_text(v.n);
    case rules::Type::string:
      return std::string(v.s);
  }
  return "";
}

// ---- Session ----

Session::Session(std::shared_ptr<const Program> program, CallPort &port, CallInfo info,
                 SessionLimits limits)
    : program_(std::move(program)) {
  impl_ = std::make_unique<Impl>(*this, port, std::move(info), limits);
}

Session::~Session() = default;

void Session::set_variable(const std::string &name, const std::string &value) {
  std::string var = name.rfind("vars.", 0) == 0 ? name : "vars." + name;
  impl_->host_vars.emplace_back(std::move(var), value);
}

void Session::start() {
  Impl &m = *impl_;
  m.init_facts();
  // Host-set variables override the document's initial values.
  for (auto &[k, v] : m.host_vars) m.set_text(k, v);
  m.graph = 0;
  m.go(program_->graphs[0].start);
  m.run();
}

void Session::on_answered() {
  Impl &m = *impl_;
  m.answered = true;
  if (finished_ || m.wait != Wait::answer) return;
  m.wait = Wait::none;
  if (std::holds_alternative<Answer>(m.node().spec)) m.go(m.node().next);
  m.run();
}

void Session::on_prompt_done(bool ok) {
  Impl &m = *impl_;
  if (finished_) return;
  if (m.wait == Wait::prompt) {
    m.wait = Wait::none;
    if (!ok)
      m.fail("the prompt could not be played");
    else
      m.go(m.node().next);
    m.run();
  } else if (m.wait == Wait::feedback_prompt) {
    m.wait = Wait::none;  // the gather continues with its next attempt (step() re-enters it)
    m.run();
  } else if ((m.wait == Wait::http || m.wait == Wait::db) && m.hold_playing) {
    m.hold_playing = false;
    // Hold audio repeats until the answer.
    if (ok)
      m.start_hold(m.wait == Wait::http ? std::get<Http>(m.node().spec).hold
                                        : std::get<Db>(m.node().spec).hold);
  }
}

void Session::on_collect_done(const std::string &digits, CollectEnd end) {
  Impl &m = *impl_;
  if (finished_ || m.wait != Wait::collect || end == CollectEnd::cancelled) return;
  m.wait = Wait::none;
  m.gather_done(std::get<Gather>(m.node().spec), digits, end);
  m.run();
}

void Session::on_timer(uint64_t token) {
  Impl &m = *impl_;
  if (finished_ || token != m.timer_token) return;
  m.timer_token = 0;
  if (m.wait == Wait::timer) {
    m.wait = Wait::none;
    m.go(m.node().next);
  } else if (m.wait == Wait::custom) {
    m.wait = Wait::none;
    m.custom_token = 0;
    const Custom &c = std::get<Custom>(m.node().spec);
    if (c.on_timeout != kNoNode) {
      m.trace("timed out" + m.exit_text(c.on_timeout));
      m.go(c.on_timeout);
    } else {
      m.fail(c.verb + " timed out after " + std::to_string(c.timeout_ms) + " ms");
    }
  } else {
    return;
  }
  m.run();
}

void Session::on_custom_done(uint64_t token, const CustomResult &result) {
  Impl &m = *impl_;
  if (finished_ || m.wait != Wait::custom || token != m.custom_token) return;
  m.wait = Wait::none;
  m.custom_token = 0;
  if (m.timer_token) {
    impl_->port.cancel_timer(m.timer_token);
    m.timer_token = 0;
  }
  const Node &n = m.node();
  const Custom &c = std::get<Custom>(n.spec);
  for (auto &[k, v] : result.values) m.set_text("steps." + n.name + "." + k, v);
  if (!result.error.empty()) {
    m.fail(c.verb + ": " + result.error);
  } else if (result.exit.empty() || result.exit == "next") {
    m.trace("done" + m.exit_text(n.next));
    m.go(n.next);
  } else if (auto it = c.exits.find(result.exit); it != c.exits.end()) {
    m.trace("done, exit " + result.exit + m.exit_text(it->second));
    m.go(it->second);
  } else {
    m.fail(c.verb + " chose exit \"" + result.exit + "\", which the node does not have");
  }
  m.run();
}

void Session::on_http_done(uint64_t token, HttpDone &&done) {
  Impl &m = *impl_;
  if (finished_ || m.wait != Wait::http || token != m.http_token) return;
  m.wait = Wait::none;
  m.http_token = 0;
  m.http_done(std::move(done));
  m.run();
}

void Session::on_db_done(uint64_t token, DbDone &&done) {
  Impl &m = *impl_;
  if (finished_ || m.wait != Wait::db || token != m.db_token) return;
  m.wait = Wait::none;
  m.db_token = 0;
  m.db_done(std::move(done));
  m.run();
}

void Session::on_route_done(uint64_t token, RouteDone &&done) {
  Impl &m = *impl_;
  if (finished_ || m.wait != Wait::route || token != m.route_token) return;
  m.wait = Wait::none;
  m.route_token = 0;
  m.route_done(std::move(done));
  m.run();
}

void Session::on_transfer_done(uint64_t token, TransferDone &&done) {
  Impl &m = *impl_;
  if (finished_ || m.wait != Wait::transfer || token != m.transfer_token) return;
  m.wait = Wait::none;
  m.transfer_token = 0;
  m.transfer_done(std::move(done));
  m.run();
}

void Session::on_call_ended() {
  Impl &m = *impl_;
  if (finished_) return;
  m.finish(EndReason::caller_hangup, "", 0, "");
}

std::string Session::path_text() const {
  std::string out;
  for (const std::string &n : path_) out += (out.empty() ? "" : " > ") + n;
  if (path_dropped_) out += " > ... (+" + std::to_string(path_dropped_) + " more)";
  return out;
}

std::string Session::current_node() const {
  if (impl_->cur == kNoNode) return "";
  return impl_->display(impl_->node());
}

std::vector<std::pair<std::string, std::string>> Session::variables() const {
  return {impl_->shown.begin(), impl_->shown.end()};
}

}  // namespace ivr::flow
