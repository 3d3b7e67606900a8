// The routing steps of the interpreter: route and enqueue (the engine's routing dials the
// plan's targets and may queue the call), transfer (REFER or 302), and the call's variables
// as the routing port reads them while a route step runs.
#include "flow/document_compiler.h"
#include "flow/route_checks.h"
#include "flow/session_impl.h"

namespace ivr::flow {

namespace {

std::string seconds_text(uint32_t ms) {
  return number_text(static_cast<double>(ms) / 1000.0) + " s";
}

// "target vici, SIP 486, 2 attempts, queued 40 s": what a route's completion says.
std::string route_summary(const RouteDone &d) {
  std::string out;
  auto add = [&](const std::string &part) { out += (out.empty() ? "" : ", ") + part; };
  if (!d.target.empty()) add("target " + d.target);
  if (d.sip_status && d.outcome != "ended") add("SIP " + std::to_string(d.sip_status));
  add(std::to_string(d.attempts) + (d.attempts == 1 ? " attempt" : " attempts"));
  if (d.queued_ms) add("queued " + seconds_text(d.queued_ms));
  if (d.talk_ms) add("talked " + seconds_text(d.talk_ms));
  return out;
}

bool has_line_break(const std::string &s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos;
}

}  // namespace

// ---- the call's variables, for the routing port ----

rules::Value Session::Impl::Variables::get(std::string_view name) const {
  int64_t slot = m_.prog.variables->slot_of(name);
  if (slot >= 0 && static_cast<size_t>(slot) < m_.values.size())
    return m_.values[static_cast<size_t>(slot)];
  if (auto it = m_.unslotted.find(name); it != m_.unslotted.end()) return it->second.first;
  // Call facts no expression of the flow reads have no slot: they come from the call.
  const CallInfo &c = m_.info;
  const std::pair<std::string_view, const std::string *> facts[] = {
      {"call.id", &c.call_id},
      {"call.from", &c.from},
      {"call.to", &c.to},
      {"call.from_uri", &c.from_uri},
      {"call.to_uri", &c.to_uri},
      {"call.flow", &m_.prog.id},
      {"call.flow_version", &m_.prog.version}};
  for (const auto &[fact, value] : facts)
    if (name == fact) return rules::Value::string(*value);
  if (name.rfind("call.headers.", 0) == 0)
    for (const auto &[k, v] : c.headers)
      if (header_var(k) == name) return rules::Value::string(v);
  return {};
}

Result<std::string> Session::Impl::Variables::render(std::string_view template_text) const {
  auto it = cache_.find(template_text);
  if (it == cache_.end()) {
    // Names the program has slots for bind to them; any other name (never adding a slot to
    // the shared program) binds past them, to what get() finds, null when nothing.
    struct Resolver final : rules::VariableResolver {
      const rules::VariableTable &table;
      uint32_t base;
      std::vector<std::string> &extra;
      Resolver(const rules::VariableTable &t, uint32_t b, std::vector<std::string> &e)
          : table(t), base(b), extra(e) {}
      Result<uint32_t> resolve(std::string_view name) const override {
        int64_t slot = table.slot_of(name);
        if (slot >= 0 && slot < base) return static_cast<uint32_t>(slot);
        auto found = std::find(extra.begin(), extra.end(), name);
        if (found == extra.end()) found = extra.insert(extra.end(), std::string(name));
        return base + static_cast<uint32_t>(found - extra.begin());
      }
    };
    Compiled c;
    Resolver resolver(*m_.prog.variables, static_cast<uint32_t>(m_.values.size()), c.extra);
    rules::CompileOptions options;
    options.schedules = m_.prog.schedules.get();
    auto t = parse_template(template_text, resolver, options);
    if (!t.ok()) return t.error();
    c.tmpl = std::move(t).value();
    if (cache_.size() >= 64) cache_.clear();  // a routing configuration has a few templates
    it = cache_.emplace(std::string(template_text), std::move(c)).first;
  }
  const Compiled &c = it->second;
  std::vector<rules::Value> bound(m_.values);
  for (const std::string &name : c.extra) bound.push_back(get(name));
  rules::FixedEvalContext<4096> ctx;
  ctx.set_schedules(m_.prog.schedules.get());
  ctx.set_time(m_.now());
  rules::Bindings b{bound.data(), bound.size()};
  return render_template(c.tmpl,
                         [&](const rules::Expression &e) { return rules::evaluate(e, b, ctx); });
}

// ---- route and enqueue ----

void Session::Impl::exec(const Node &n, const Route &r) {
  const std::string prefix = "steps." + n.name + ".";
  // A value that cannot be sent: the step fails before anything is dialled.
  auto refuse = [&](const std::string &err) {
    set_text(prefix + "outcome", "error");
    fail(n.verb + ": " + err);
  };
  RouteStart rs;
  rs.node = display(n);
  auto plan = render(r.plan);
  if (!plan.ok()) return refuse("plan: " + plan.error().message);
  if (!route_checks::valid_plan(*plan))
    return refuse("plan \"" + plan->substr(0, 64) + "\": " + std::string(route_checks::kPlanRule));
  rs.plan = std::move(*plan);
  for (const auto &[name, tmpl] : r.headers) {
    auto value = render(tmpl);
    if (!value.ok()) return refuse("headers/" + name + ": " + value.error().message);
    if (has_line_break(*value))
      return refuse("headers/" + name + ": the rendered value holds a line break");
    rs.headers.emplace_back(name, std::move(*value));
  }
  if (!r.caller_id.parts.empty()) {
    auto id = render(r.caller_id);
    if (!id.ok()) return refuse("caller_id: " + id.error().message);
    // Empty (a variable not set): the caller's own number goes out.
    if (!id->empty() && !route_checks::valid_caller_id(*id))
      return refuse("caller_id \"" + id->substr(0, 64) +
                    "\": " + std::string(route_checks::kCallerIdRule));
    rs.caller_id = std::move(*id);
  }
  rs.ring_timeout_ms = r.ring_timeout_ms;
  rs.max_attempts = r.max_attempts;
  rs.queue = r.queue;
  rs.priority = r.priority;
  if (r.queue && r.priority_template) {
    auto text = render(*r.priority_template);
    if (!text.ok()) return refuse("queue/priority: " + text.error().message);
    auto p = route_checks::parse_priority(*text);
    if (!p || *p > 999)
      return refuse("queue/priority rendered \"" + text->substr(0, 32) +
                    "\": " + std::string(route_checks::kPriorityRule));
    rs.priority = *p;
  }
  rs.max_wait_s = r.max_wait_s;
  rs.escalate = r.escalate;
  if (!r.hold_file.parts.empty()) {
    auto file = render(r.hold_file);
    if (!file.ok()) return refuse("queue/hold/file: " + file.error().message);
    if (file->empty() || (*file)[0] == '/' || detail::has_dotdot_component(*file))
      return refuse("queue/hold/file \"" + *file +
                    "\": a prompt file is a relative name inside the prompt directory, without "
                    "\"..\"");
    rs.hold_file = std::move(*file);
  }
  rs.announce_text = r.announce_text;
  rs.announce_voice = r.announce_voice;
  rs.announce_rate_wpm = r.announce_rate_wpm;
  rs.announce_every_s = r.announce_text.empty() ? 0 : r.announce_every_s;
  rs.variables = &route_vars;

  std::string detail = "plan " + rs.plan;
  if (rs.queue) {
    detail += " (queue priority " + std::to_string(rs.priority);
    if (rs.max_wait_s) detail += ", max wait " + std::to_string(rs.max_wait_s) + " s";
    detail += ")";
  }
  if (!rs.headers.empty()) {
    detail += ", headers";
    for (size_t i = 0; i < rs.headers.size(); ++i) detail += (i ? ", " : " ") + rs.headers[i].first;
  }
  trace(detail);
  route_plan = rs.plan;
  route_token = next_token++;
  waiting(Wait::route);
  port.start_route(rs, route_token);
}

void Session::Impl::route_done(RouteDone &&d) {
  const Node &n = node();
  const Route &r = std::get<Route>(n.spec);
  const std::string prefix = "steps." + n.name + ".";
  set_text(prefix + "outcome", d.outcome);
  set_text(prefix + "target", d.target);
  set_text(prefix + "uri", d.uri);
  set_var(prefix + "sip_status", rules::Value::number(d.sip_status));
  set_var(prefix + "attempts", rules::Value::number(d.attempts));
  set_var(prefix + "queued_ms", rules::Value::number(d.queued_ms));
  set_var(prefix + "talk_ms", rules::Value::number(d.talk_ms));
  set_text(prefix + "error", d.error);
  std::string detail = "plan " + route_plan + " -> " + d.outcome + " (" + route_summary(d) + ")";
  auto take = [&](NodeIndex exit) {
    trace(detail + exit_text(exit));
    go(exit);
  };
  if (d.outcome == "ended") return take(n.next);
  if (d.outcome == "transferred") {  // REFER accepted or 302 sent: the call leaves us
    trace(detail);
    finish(EndReason::completed, "", 0, "transferred to " + d.target);
    return;
  }
  if (d.outcome == "failed" || d.outcome == "timeout") {
    if (d.outcome == "timeout" && r.on_timeout != kNoNode) return take(r.on_timeout);
    if (r.on_failed != kNoNode) return take(r.on_failed);
    trace(detail);
    std::string why = !d.error.empty()         ? d.error
                      : d.outcome == "timeout" ? "max_wait_s passed in the queue"
                                               : "no target took the call";
    return fail(n.verb + " " + d.outcome + ": plan " + route_plan + ": " + why);
  }
  trace(detail);
  if (d.outcome == "error")
    return fail(n.verb + " error: plan " + route_plan + ": " +
                (d.error.empty() ? "the routing port gave no reason" : d.error));
  fail(n.verb + ": the routing port reported an unknown outcome \"" + d.outcome + "\"");
}

// ---- transfer ----

void Session::Impl::exec(const Node &, const Transfer &t) {
  auto to = render(t.to);
  if (!to.ok()) return fail("transfer: to: " + to.error().message);
  if (std::string why = route_checks::sip_uri_problem(*to); !why.empty())
    return fail("transfer: " + why);
  TransferStart ts;
  ts.uri = std::move(*to);
  ts.method = t.method == Transfer::Method::redirect ? TransferStart::Method::redirect
                                                     : TransferStart::Method::refer;
  trace((t.method == Transfer::Method::redirect ? "redirect (302) to " : "refer to ") + ts.uri);
  transfer_uri = ts.uri;
  transfer_token = next_token++;
  waiting(Wait::transfer);
  port.start_transfer(ts, transfer_token);
}

void Session::Impl::transfer_done(TransferDone &&d) {
  const Node &n = node();
  const Transfer &t = std::get<Transfer>(n.spec);
  const std::string prefix = "steps." + n.name + ".";
  set_var(prefix + "sip_status", rules::Value::number(d.sip_status));
  set_text(prefix + "error", d.ok ? "" : d.error);
  if (d.ok) {
    trace("transferred to " + transfer_uri);
    finish(EndReason::completed, "", 0, "transferred");
    return;
  }
  std::string why = !d.error.empty() ? d.error
                    : d.sip_status   ? "SIP " + std::to_string(d.sip_status)
                                     : "refused";
  if (t.on_failed != kNoNode) {
    trace("failed: " + why + exit_text(t.on_failed));
    go(t.on_failed);
    return;
  }
  fail("transfer to " + transfer_uri + " failed: " + why);
}

}  // namespace ivr::flow
