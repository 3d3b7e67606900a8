// Compiling each node of a flow document: one branch per verb.
#include "flow/document_compiler.h"

namespace ivr::flow::detail {

void Compiler::compile_nodes(size_t g) {
  Graph &graph = program_->graphs[g];
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    const Value &v = *node_values_[g][i];
    std::string ptr = json::pointer_append(graph_pointers_[g] + "/nodes", graph.nodes[i].name);
    compile_node(g, graph.nodes[i], v, ptr);
  }
}

void Compiler::compile_node(size_t g, Node &n, const Value &v, const std::string &ptr) {
  if (!v.is(Kind::object)) {
    problem(v, ptr, "a node is an object with a \"verb\"");
    return;
  }
  const std::string *verb = string_field(v, ptr, "verb", true);
  if (!verb) return;
  n.verb = *verb;
  const Value &verb_v = *v.find("verb");
  n.next = exit_field(g, v, ptr, "next");
  n.on_error = exit_field(g, v, ptr, "on_error");
  auto fields = [&](std::initializer_list<std::string_view> extra) {
    for (const json::Member &m : v.members) {
      if (std::find(std::begin(kCommonFields), std::end(kCommonFields), m.key) !=
          std::end(kCommonFields))
        continue;
      if (std::find(extra.begin(), extra.end(), m.key) != extra.end()) continue;
      problem_key(m, json::pointer_append(ptr, m.key),
                  "unknown field " + quoted(m.key) + " for verb " + quoted(*verb));
    }
  };
  auto no_next = [&](const char *why) {
    if (const Value *nx = v.find("next"))
      problem(*nx, ptr + "/next", std::string("\"next\" is not used by ") + why);
  };
  const std::string &name = n.name;
  if (*verb == "answer") {
    fields({});
    n.spec = Answer{};
  } else if (*verb == "play") {
    fields({"file"});
    Play p;
    if (const Value *f = field(v, ptr, "file", Kind::string, true)) {
      if (auto t = template_of(*f, ptr + "/file")) {
        check_prompt_file(*f, ptr + "/file", *t);
        p.prompt.kind = Prompt::Kind::file;
        p.prompt.content = std::move(*t);
      }
    }
    n.spec = std::move(p);
  } else if (*verb == "say") {
    fields({"text", "voice", "rate"});
    Play p;
    if (auto t = template_field(v, ptr, "text", true)) {
      p.prompt.kind = Prompt::Kind::say;
      p.prompt.content = std::move(*t);
    }
    say_options(v, ptr, p.prompt);
    n.spec = std::move(p);
  } else if (*verb == "gather" || *verb == "menu") {
    bool menu = *verb == "menu";
    Gather gs;
    gs.menu = menu;
    if (menu)
      fields({"prompt", "no_input_prompt", "invalid_prompt", "timeout_ms", "retries", "barge_in",
              "choices", "on_no_input", "on_invalid"});
    else
      fields({"prompt", "no_input_prompt", "invalid_prompt", "min_digits", "max_digits",
              "terminators", "first_digit_timeout_ms", "inter_digit_timeout_ms", "retries",
              "barge_in", "valid", "store", "on_no_input", "on_invalid"});
    gs.prompt = prompt_field(v, ptr, "prompt");
    gs.no_input_prompt = prompt_field(v, ptr, "no_input_prompt");
    gs.invalid_prompt = prompt_field(v, ptr, "invalid_prompt");
    gs.retries = static_cast<unsigned>(int_field(v, ptr, "retries", 0, kMaxRetries, 2));
    gs.collect.barge_in = bool_field(v, ptr, "barge_in", true);
    gs.on_no_input = exit_field(g, v, ptr, "on_no_input");
    gs.on_invalid = exit_field(g, v, ptr, "on_invalid");
    if (menu) {
      gs.min_digits = gs.collect.max_digits = 1;
      gs.collect.terminators = "";
      gs.collect.first_digit_timeout_ms =
          static_cast<uint32_t>(int_field(v, ptr, "timeout_ms", 100, kMaxTimeoutMs, 5000));
      gs.choices = exit_map(g, v, ptr, "choices", true);
      no_next("menu (its exits are \"choices\")");
    } else {
      gs.collect.max_digits =
          static_cast<unsigned>(int_field(v, ptr, "max_digits", 1, kMaxDigits, 16));
      gs.min_digits = static_cast<unsigned>(int_field(v, ptr, "min_digits", 1, kMaxDigits, 1));
      if (gs.min_digits > gs.collect.max_digits)
        problem(v, ptr + "/min_digits", "min_digits is larger than max_digits");
      gs.collect.terminators = "#";
      if (auto *t = string_field(v, ptr, "terminators", false)) {
        if (t->find_first_not_of("0123456789*#ABCD") != std::string::npos)
          problem(*v.find("terminators"), ptr + "/terminators",
                  "terminators are DTMF digits (0-9, *, #, A-D)");
        gs.collect.terminators = *t;
      }
      gs.collect.first_digit_timeout_ms = static_cast<uint32_t>(
          int_field(v, ptr, "first_digit_timeout_ms", 100, kMaxTimeoutMs, 5000));
      gs.collect.inter_digit_timeout_ms = static_cast<uint32_t>(
          int_field(v, ptr, "inter_digit_timeout_ms", 100, kMaxTimeoutMs, 3000));
      if (v.find("valid")) gs.valid = expression_field(v, ptr, "valid", false);
      if (auto *s = string_field(v, ptr, "store", false)) {
        if (s->rfind("vars.", 0) != 0 || !valid_dotted(s->substr(5)))
          problem(*v.find("store"), ptr + "/store", "store names a flow variable: \"vars.<name>\"");
        gs.store = *s;
      }
    }
    n.spec = std::move(gs);
  } else if (*verb == "set") {
    fields({"values"});
    Set s;
    if (const Value *vals = field(v, ptr, "values", Kind::object, true)) {
      for (const json::Member &m : vals->members) {
        std::string mptr = json::pointer_append(ptr + "/values", m.key);
        if (m.key.rfind("call.", 0) == 0 || m.key.rfind("steps.", 0) == 0) {
          problem_key(m, mptr,
                      "call.* and steps.* are read-only; set names flow variables (\"name\" or "
                      "\"vars.name\")");
          continue;
        }
        std::string var = m.key.rfind("vars.", 0) == 0 ? m.key : "vars." + m.key;
        if (!valid_dotted(var.substr(5))) {
          problem_key(m, mptr, "variable name must be identifiers joined by '.'");
          continue;
        }
        if (m.value.is(Kind::string)) {
          if (auto e = expression(m.value, mptr, m.value.string, 0))
            s.assignments.push_back({var, std::move(*e)});
        } else if (m.value.is(Kind::object)) {
          const Value *tv = m.value.find("template");
          if (!tv || m.value.members.size() != 1 || !tv->is(Kind::string)) {
            problem(m.value, mptr,
                    "an object value is {\"template\": \"text with {{expressions}}\"}");
            continue;
          }
          if (auto t = template_of(*tv, mptr + "/template"))
            s.assignments.push_back({var, std::move(*t)});
        } else if (auto lit = literal(m.value, mptr)) {
          s.assignments.push_back({var, std::move(*lit)});
        }
      }
    }
    n.spec = std::move(s);
  } else if (*verb == "if") {
    fields({"condition", "then", "else"});
    If f;
    if (auto e = expression_field(v, ptr, "condition", true)) f.condition = std::move(*e);
    f.then_node = exit_field(g, v, ptr, "then", true);
    f.else_node = exit_field(g, v, ptr, "else", true);
    no_next("if (its exits are \"then\" and \"else\")");
    n.spec = std::move(f);
  } else if (*verb == "switch") {
    fields({"cases", "rule_set", "results", "default"});
    Switch s;
    const Value *cases = v.find("cases");
    const Value *rs = v.find("rule_set");
    if ((cases != nullptr) == (rs != nullptr)) {
      problem(v, ptr, "a switch has exactly one of \"cases\" or \"rule_set\"");
    } else if (cases) {
      if (v.find("results"))
        problem(*v.find("results"), ptr + "/results", "\"results\" goes with \"rule_set\"");
      if (const Value *list = field(v, ptr, "cases", Kind::array, true)) {
        for (size_t i = 0; i < list->items.size(); ++i) {
          const Value &c = list->items[i];
          std::string cptr = json::pointer_append(ptr + "/cases", i);
          if (!c.is(Kind::object)) {
            problem(c, cptr, "a case is an object with \"when\" and \"next\"");
            continue;
          }
          check_fields(c, cptr, {"when", "next"});
          auto e = expression_field(c, cptr, "when", true);
          NodeIndex target = exit_field(g, c, cptr, "next", true);
          if (e) s.cases.push_back({std::move(*e), target});
        }
        if (list->items.empty()) problem(*list, ptr + "/cases", "a switch needs at least one case");
      }
    } else if (auto *rsname = string_field(v, ptr, "rule_set", true)) {
      auto it = rule_set_index_.find(*rsname);
      if (it == rule_set_index_.end()) {
        problem(*rs, ptr + "/rule_set", "no rule set named " + quoted(*rsname));
      } else {
        s.rule_set = it->second;
        s.results = exit_map(g, v, ptr, "results", false);
        const auto &names = program_->rule_sets[static_cast<size_t>(it->second)].results();
        if (const Value *rv = v.find("results")) {
          for (const json::Member &m : rv->members)
            if (std::find(names.begin(), names.end(), m.key) == names.end())
              problem_key(m, json::pointer_append(ptr + "/results", m.key),
                          "rule set " + quoted(*rsname) + " has no result " + quoted(m.key));
        }
      }
    }
    s.default_node = exit_field(g, v, ptr, "default");
    no_next("switch (its exits are the cases and \"default\")");
    n.spec = std::move(s);
  } else if (*verb == "schedule") {
    fields({"schedule", "open", "closed"});
    ScheduleBranch b;
    if (auto *sname = string_field(v, ptr, "schedule", true)) {
      if (!program_->schedules->find(*sname) && !schedule_declared(*sname))
        problem(*v.find("schedule"), ptr + "/schedule", "no schedule named " + quoted(*sname));
      b.schedule = *sname;
    }
    b.open_node = exit_field(g, v, ptr, "open", true);
    b.closed_node = exit_field(g, v, ptr, "closed", true);
    no_next("schedule (its exits are \"open\" and \"closed\")");
    n.spec = std::move(b);
  } else if (*verb == "pause") {
    fields({"ms"});
    Pause p;
    if (!v.find("ms")) problem(v, ptr, "missing required field \"ms\"");
    p.ms = static_cast<uint32_t>(int_field(v, ptr, "ms", 1, kMaxTimeoutMs, 1000));
    n.spec = p;
  } else if (*verb == "goto") {
    fields({"target"});
    no_next("goto (its exit is \"target\")");
    n.next = exit_field(g, v, ptr, "target", true);
    n.spec = Goto{};
  } else if (*verb == "subflow") {
    fields({"subflow"});
    Subflow s;
    if (auto *sname = string_field(v, ptr, "subflow", true)) {
      auto it = subflow_index_.find(*sname);
      if (it == subflow_index_.end())
        problem(*v.find("subflow"), ptr + "/subflow", "no subflow named " + quoted(*sname));
      else
        s.graph = it->second;
    }
    n.spec = s;
  } else if (*verb == "return") {
    fields({});
    if (g == 0) problem(verb_v, ptr + "/verb", "\"return\" is only allowed inside a subflow");
    no_next("return");
    n.spec = Return{};
  } else if (*verb == "hangup") {
    fields({"status", "reason"});
    no_next("hangup");
    Hangup h;
    h.sip_status = static_cast<int>(int_field(v, ptr, "status", 400, 699, 0));
    if (auto t = template_field(v, ptr, "reason", false)) h.reason = std::move(*t);
    n.spec = std::move(h);
  } else if (*verb == "http") {
    fields({"method", "url", "query", "headers", "body", "graphql", "soap", "auth", "timeout_ms",
            "retries", "retry_non_idempotent", "cache", "accept_status", "hold", "on_timeout",
            "map", "response", "namespaces"});
    n.spec = compile_http(g, v, ptr);
  } else if (*verb == "db") {
    fields({"connector", "query", "params", "timeout_ms", "max_rows", "map", "hold", "on_empty",
            "on_timeout"});
    n.spec = compile_db(g, v, ptr);
  } else if (*verb == "route" || *verb == "enqueue") {
    fields({"plan", "headers", "caller_id", "ring_timeout_ms", "max_attempts", "queue", "on_failed",
            "on_timeout"});
    n.spec = compile_route(g, v, ptr, *verb == "enqueue");
  } else if (*verb == "transfer") {
    fields({"to", "method", "on_failed"});
    no_next(
        "transfer (the call leaves the flow when it succeeds; its exits are \"on_failed\" "
        "and \"on_error\")");
    n.spec = compile_transfer(g, v, ptr);
  } else if (is_reserved_verb(*verb)) {
    problem(verb_v, ptr + "/verb",
            "verb " + quoted(*verb) + " is reserved for a later release and not available yet");
  } else if (opts_.custom_verbs.count(*verb)) {
    fields({"args", "exits", "timeout_ms", "on_timeout"});
    Custom c;
    c.verb = *verb;
    if (const Value *args = field(v, ptr, "args", Kind::object)) {
      for (const json::Member &m : args->members) {
        std::string aptr = json::pointer_append(ptr + "/args", m.key);
        if (auto t = template_or_literal(m.value, aptr,
                                         "an argument is a string (template), number or boolean"))
          c.args.emplace_back(m.key, std::move(*t));
      }
    }
    c.exits = exit_map(g, v, ptr, "exits", false);
    c.timeout_ms =
        static_cast<uint32_t>(int_field(v, ptr, "timeout_ms", 100, kMaxTimeoutMs, 10000));
    c.on_timeout = exit_field(g, v, ptr, "on_timeout");
    n.spec = std::move(c);
  } else {
    problem(verb_v, ptr + "/verb", "unknown verb " + quoted(*verb));
  }
  (void)name;
}

}  // namespace ivr::flow::detail
