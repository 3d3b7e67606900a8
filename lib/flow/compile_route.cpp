// Compiling `route`, `enqueue` and `transfer` nodes: the routing plan, the headers and caller
// id toward the dialing system, the queue's options, the transfer URI, and their exits.
// What can only be known per call (a templated plan, priority or URI) is checked when the
// step runs (route_checks.h).
#include "flow/document_compiler.h"
#include "flow/route_checks.h"

namespace ivr::flow::detail {

namespace {

// The literal text of a template without {{...}} parts; nullopt when it has parts.
std::optional<std::string> constant_text(const Template &t) {
  if (!t.constant()) return std::nullopt;
  return t.parts.empty() ? std::string() : t.parts[0].text;
}

// The literal prefix of a template: the text before its first {{...}}.
std::string literal_prefix(const Template &t) {
  return t.parts.empty() || t.parts[0].expr ? std::string() : t.parts[0].text;
}

}  // namespace

Route Compiler::compile_route(size_t g, const Value &v, const std::string &ptr, bool enqueue) {
  Route r;
  if (const Value *p = field(v, ptr, "plan", Kind::string, true)) {
    if (auto t = template_of(*p, ptr + "/plan")) {
      auto text = constant_text(*t);
      if (text && !route_checks::valid_plan(*text))
        problem(*p, ptr + "/plan", std::string(route_checks::kPlanRule));
      r.plan = std::move(*t);
    }
  }
  if (const Value *hs = field(v, ptr, "headers", Kind::object)) {
    std::string hptr = ptr + "/headers";
    std::vector<std::string> seen;
    for (const json::Member &m : hs->members) {
      std::string eptr = json::pointer_append(hptr, m.key);
      if (!route_checks::valid_header_name(m.key)) {
        problem_key(m, eptr, std::string(route_checks::kHeaderNameRule));
        continue;
      }
      std::string lower = route_checks::lower(m.key);
      if (std::find(seen.begin(), seen.end(), lower) != seen.end()) {
        problem_key(m, eptr, "header " + quoted(m.key) + " is given twice (names ignore case)");
        continue;
      }
      seen.push_back(lower);
      if (!m.value.is(Kind::string)) {
        problem(m.value, eptr, "must be a string (a template)");
        continue;
      }
      if (m.value.string.find_first_of("\r\n") != std::string::npos) {
        problem(m.value, eptr, "a header value cannot hold a line break");
        continue;
      }
      if (auto t = template_of(m.value, eptr)) r.headers.emplace_back(m.key, std::move(*t));
    }
  }
  if (const Value *c = field(v, ptr, "caller_id", Kind::string)) {
    if (auto t = template_of(*c, ptr + "/caller_id")) {
      auto text = constant_text(*t);
      if (text && !route_checks::valid_caller_id(*text))
        problem(*c, ptr + "/caller_id", std::string(route_checks::kCallerIdRule));
      r.caller_id = std::move(*t);
    }
  }
  r.ring_timeout_ms =
      static_cast<uint32_t>(int_field(v, ptr, "ring_timeout_ms", 1000, 300000, 20000));
  r.max_attempts = static_cast<unsigned>(int_field(v, ptr, "max_attempts", 0, 20, 0));
  const Value *q = v.find("queue");
  r.queue = enqueue || q != nullptr;
  if (q && !q->is(Kind::object)) {
    problem(*q, ptr + "/queue",
            "queue is an object: {\"priority\": ..., \"max_wait_s\": ..., \"hold\": ..., "
            "\"announce\": ...}");
  } else if (q) {
    compile_queue(*q, ptr + "/queue", r);
  }
  r.on_failed = exit_field(g, v, ptr, "on_failed");
  r.on_timeout = exit_field(g, v, ptr, "on_timeout");
  if (!r.queue && v.find("on_timeout"))
    problem(*v.find("on_timeout"), ptr + "/on_timeout",
            "\"on_timeout\" is taken when max_wait_s passes in the queue: add \"queue\" (or use "
            "enqueue)");
  return r;
}

void Compiler::compile_queue(const Value &q, const std::string &ptr, Route &r) {
  check_fields(q, ptr, {"priority", "max_wait_s", "hold", "announce", "escalate"});
  compile_escalate(q, ptr, r);
  if (const Value *p = q.find("priority")) {
    std::string pptr = ptr + "/priority";
    if (p->is(Kind::number)) {
      if (!p->integral || p->number < 0 || p->number > 999)
        problem(*p, pptr, std::string(route_checks::kPriorityRule));
      else
        r.priority = static_cast<uint32_t>(p->number);
    } else if (p->is(Kind::string)) {
      if (auto t = template_of(*p, pptr)) {
        if (auto text = constant_text(*t)) {
          auto n = route_checks::parse_priority(*text);
          if (!n)
            problem(*p, pptr, std::string(route_checks::kPriorityRule));
          else
            r.priority = *n;
        } else {
          r.priority_template = std::move(*t);
        }
      }
    } else {
      problem(*p, pptr,
              "priority is a number from 0 to 999 or a template that renders one (\"{{vars.vip "
              "? 10 : 500}}\")");
    }
  }
  r.max_wait_s = static_cast<uint32_t>(int_field(q, ptr, "max_wait_s", 0, 86400, 0));
  if (const Value *h = q.find("hold")) {
    std::string hptr = ptr + "/hold";
    if (!h->is(Kind::object) || !h->find("file")) {
      problem(*h, hptr, "queue hold audio is a prompt file: {\"file\": \"hold.wav\"}");
    } else {
      check_fields(*h, hptr, {"file"});
      if (auto t = template_field(*h, hptr, "file", true)) {
        check_prompt_file(*h->find("file"), hptr + "/file", *t);
        r.hold_file = std::move(*t);
      }
    }
  }
  if (const Value *a = q.find("announce")) {
    std::string aptr = ptr + "/announce";
    if (!a->is(Kind::object)) {
      problem(*a, aptr,
              "announce is {\"say\": \"You are caller number {position}.\", \"every_s\": 30}");
      return;
    }
    check_fields(*a, aptr, {"say", "every_s", "voice", "rate"});
    if (auto *say = string_field(*a, aptr, "say", true)) {
      const Value &sv = *a->find("say");
      std::string why = route_checks::announce_problem(*say);
      if (!why.empty())
        problem(sv, aptr + "/say", why);
      else
        r.announce_text = *say;
    }
    r.announce_every_s = static_cast<uint32_t>(int_field(*a, aptr, "every_s", 0, 3600, 30));
    if (r.announce_every_s > 0 && r.announce_every_s < 5)
      problem(*a->find("every_s"), aptr + "/every_s",
              "every_s is 0 (never) or from 5 to 3600 seconds");
    Prompt p;
    say_options(*a, aptr, p);
    r.announce_voice = p.voice;
    r.announce_rate_wpm = p.rate_wpm;
  }
}

// "escalate": [{"after_s": 60, "priority": 200}, ...]: literal steps, checked here.
void Compiler::compile_escalate(const Value &q, const std::string &ptr, Route &r) {
  const Value *e = q.find("escalate");
  if (!e) return;
  const std::string eptr = ptr + "/escalate";
  if (!e->is(Kind::array)) {
    problem(*e, eptr, "escalate is a list: [{\"after_s\": 60, \"priority\": 200}]");
    return;
  }
  for (size_t i = 0; i < e->items.size(); ++i) {
    const Value &step = e->items[i];
    const std::string sptr = eptr + "/" + std::to_string(i);
    if (!step.is(Kind::object)) {
      problem(step, sptr, "an escalation step is {\"after_s\": 60, \"priority\": 200}");
      continue;
    }
    check_fields(step, sptr, {"after_s", "priority"});
    if (!step.find("after_s") || !step.find("priority")) {
      problem(step, sptr, "an escalation step needs after_s and priority");
      continue;
    }
    auto after = static_cast<uint32_t>(int_field(step, sptr, "after_s", 1, 86400, 60));
    auto prio = static_cast<uint32_t>(int_field(step, sptr, "priority", 0, 999, 500));
    if (!r.escalate.empty() &&
        (after <= r.escalate.back().first || prio >= r.escalate.back().second)) {
      problem(step, sptr,
              "escalation steps come later (after_s grows) and raise the priority (the number "
              "falls)");
      continue;
    }
    r.escalate.emplace_back(after, prio);
  }
}

Transfer Compiler::compile_transfer(size_t g, const Value &v, const std::string &ptr) {
  Transfer t;
  if (const Value *to = field(v, ptr, "to", Kind::string, true)) {
    if (auto tt = template_of(*to, ptr + "/to")) {
      // A literal start must already be a SIP URI; a templated one is checked per call.
      std::string prefix = literal_prefix(*tt);
      std::string why = tt->constant() ? route_checks::sip_uri_problem(prefix)
                                       : route_checks::sip_prefix_problem(prefix);
      if (!why.empty()) problem(*to, ptr + "/to", why);
      t.to = std::move(*tt);
    }
  }
  if (auto *m = string_field(v, ptr, "method", false)) {
    if (*m == "refer")
      t.method = Transfer::Method::refer;
    else if (*m == "redirect")
      t.method = Transfer::Method::redirect;
    else
      problem(*v.find("method"), ptr + "/method", "method is \"refer\" or \"redirect\"");
  }
  t.on_failed = exit_field(g, v, ptr, "on_failed");
  return t;
}

}  // namespace ivr::flow::detail
