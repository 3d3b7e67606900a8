#include "flow/compiler.h"

#include <cstdio>
#include <deque>

#include "flow/document_compiler.h"

namespace ivr::flow {
namespace detail {

CompileResult Compiler::run() {
  const Value &root = doc_.root();
  if (!root.is(Kind::object)) {
    problem(root, "", "a flow document is a JSON object, not " + std::string(kind_name(root.kind)));
    return finish();
  }
  check_fields(root, "",
               {"flow", "version", "description", "start", "nodes", "variables", "schedules",
                "rule_sets", "subflows", "http_budget_ms"});
  program_->http_budget_ms =
      static_cast<uint32_t>(int_field(root, "", "http_budget_ms", 100, 600000, 10000));
  if (auto *id = string_field(root, "", "flow", true)) {
    if (!valid_id(*id))
      problem(*root.find("flow"), "/flow",
              "flow id must be 1-64 characters of letters, digits, '_', '-' or '.'");
    program_->id = *id;
  }
  if (auto *v = string_field(root, "", "version", false)) program_->version = *v;
  if (auto *d = string_field(root, "", "description", false)) program_->description = *d;
  schedules(root);
  variables(root);
  rule_sets(root);

  // Graphs: the main flow first, then subflows, so that subflow names resolve anywhere.
  program_->graphs.push_back(Graph{});
  graph_values_.push_back(&root);
  graph_pointers_.push_back("");
  if (const Value *subs = field(root, "", "subflows", Kind::object)) {
    for (const json::Member &m : subs->members) {
      std::string ptr = json::pointer_append("/subflows", m.key);
      if (!valid_name(m.key)) {
        problem_key(m, ptr, "subflow name must be an identifier (letters, digits, '_')");
        continue;
      }
      if (!m.value.is(Kind::object)) {
        problem(m.value, ptr, "must be an object with \"start\" and \"nodes\"");
        continue;
      }
      check_fields(m.value, ptr, {"start", "nodes", "description"});
      subflow_index_[m.key] = static_cast<int>(program_->graphs.size());
      Graph g;
      g.name = m.key;
      program_->graphs.push_back(std::move(g));
      graph_values_.push_back(&m.value);
      graph_pointers_.push_back(ptr);
    }
  }
  for (size_t g = 0; g < program_->graphs.size(); ++g) declare_nodes(g);
  for (size_t g = 0; g < program_->graphs.size(); ++g) compile_nodes(g);
  reachability();
  return finish();
}

bool Compiler::valid_id(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
}

CompileResult Compiler::finish() {
  CompileResult r;
  std::stable_sort(problems_.begin(), problems_.end(), [](const Problem &a, const Problem &b) {
    return a.line != b.line ? a.line < b.line : a.column < b.column;
  });
  r.problems = std::move(problems_);
  if (r.problems.empty()) r.program = std::move(program_);
  return r;
}

void Compiler::schedules(const Value &root) {
  const Value *s = field(root, "", "schedules", Kind::object);
  if (!s) return;
  for (const json::Member &m : s->members) {
    std::string ptr = json::pointer_append("/schedules", m.key);
    if (!m.value.is(Kind::object)) {
      problem(m.value, ptr, "a schedule is an object with \"time_zone\" and \"weekly\"");
      continue;
    }
    check_fields(m.value, ptr, {"time_zone", "weekly", "holidays", "overrides"});
    rules::ScheduleSpec spec;
    if (auto *tz = string_field(m.value, ptr, "time_zone", true)) spec.time_zone = *tz;
    bool ok = true;
    if (const Value *weekly = field(m.value, ptr, "weekly", Kind::object)) {
      std::string wptr = ptr + "/weekly";
      for (const json::Member &day : weekly->members) {
        auto it = std::find(rules::kWeekdayNames.begin(), rules::kWeekdayNames.end(), day.key);
        if (it == rules::kWeekdayNames.end()) {
          problem_key(day, json::pointer_append(wptr, day.key),
                      "unknown day " + quoted(day.key) + " (mon, tue, wed, thu, fri, sat, sun)");
          ok = false;
          continue;
        }
        auto hours = hours_list(day.value, json::pointer_append(wptr, day.key));
        if (!hours)
          ok = false;
        else
          spec.weekly[static_cast<size_t>(it - rules::kWeekdayNames.begin())] = *hours;
      }
    }
    if (const Value *hol = field(m.value, ptr, "holidays", Kind::array)) {
      for (size_t i = 0; i < hol->items.size(); ++i) {
        const Value &h = hol->items[i];
        std::string hptr = json::pointer_append(ptr + "/holidays", i);
        if (!h.is(Kind::object)) {
          problem(h, hptr, "a holiday is an object with \"date\"");
          ok = false;
          continue;
        }
        check_fields(h, hptr, {"date", "hours", "name"});
        rules::HolidaySpec hs;
        if (auto *d = string_field(h, hptr, "date", true))
          hs.date = *d;
        else
          ok = false;
        if (const Value *hv = h.find("hours")) {
          auto hours = hours_list(*hv, hptr + "/hours");
          if (!hours)
            ok = false;
          else
            hs.hours = *hours;
        }
        spec.holidays.push_back(std::move(hs));
      }
    }
    if (const Value *ov = field(m.value, ptr, "overrides", Kind::array)) {
      for (size_t i = 0; i < ov->items.size(); ++i) {
        const Value &o = ov->items[i];
        std::string optr = json::pointer_append(ptr + "/overrides", i);
        if (!o.is(Kind::object)) {
          problem(o, optr, "an override is an object with \"from\", \"to\", \"open\"");
          ok = false;
          continue;
        }
        check_fields(o, optr, {"from", "to", "open", "name"});
        rules::OverrideSpec os;
        auto *from = string_field(o, optr, "from", true);
        auto *to = string_field(o, optr, "to", true);
        if (!from || !to) {
          ok = false;
          continue;
        }
        os.from = *from;
        os.to = *to;
        os.open = bool_field(o, optr, "open", false);
        spec.overrides.push_back(std::move(os));
      }
    }
    if (!ok || spec.time_zone.empty()) continue;
    auto sched = rules::Schedule::create(spec);
    if (!sched.ok()) {
      problem(m.value, ptr, sched.error().message);
      continue;
    }
    program_->schedules->set(m.key, std::move(sched).value());
  }
}

std::optional<std::vector<rules::HoursSpec>> Compiler::hours_list(const Value &v,
                                                                  const std::string &ptr) {
  if (!v.is(Kind::array)) {
    problem(v, ptr, "hours are an array of \"HH:MM-HH:MM\" strings");
    return std::nullopt;
  }
  std::vector<rules::HoursSpec> out;
  for (size_t i = 0; i < v.items.size(); ++i) {
    const Value &h = v.items[i];
    size_t dash = h.is(Kind::string) ? h.string.find('-') : std::string::npos;
    if (dash == std::string::npos) {
      problem(h, json::pointer_append(ptr, i), "hours must be a string \"HH:MM-HH:MM\"");
      return std::nullopt;
    }
    out.push_back({h.string.substr(0, dash), h.string.substr(dash + 1)});
  }
  return out;
}

void Compiler::variables(const Value &root) {
  const Value *vars = field(root, "", "variables", Kind::object);
  if (!vars) return;
  for (const json::Member &m : vars->members) {
    std::string ptr = json::pointer_append("/variables", m.key);
    if (!valid_dotted(m.key)) {
      problem_key(m, ptr, "variable name must be identifiers joined by '.'");
      continue;
    }
    auto lit = literal(m.value, ptr);
    if (lit) program_->initial_vars.emplace_back("vars." + m.key, std::move(*lit));
  }
}

void Compiler::rule_sets(const Value &root) {
  const Value *sets = field(root, "", "rule_sets", Kind::object);
  if (!sets) return;
  for (const json::Member &m : sets->members) {
    std::string ptr = json::pointer_append("/rule_sets", m.key);
    if (!m.value.is(Kind::object)) {
      problem(m.value, ptr, "a rule set is an object with \"rules\"");
      continue;
    }
    check_fields(m.value, ptr, {"rules", "description"});
    const Value *list = field(m.value, ptr, "rules", Kind::array, true);
    if (!list) continue;
    rules::RuleSet set;
    for (size_t i = 0; i < list->items.size(); ++i) {
      const Value &r = list->items[i];
      std::string rptr = json::pointer_append(ptr + "/rules", i);
      if (!r.is(Kind::object)) {
        problem(r, rptr, "a rule is an object with \"when\" and \"then\"");
        continue;
      }
      check_fields(r, rptr, {"when", "then"});
      const Value *when = field(r, rptr, "when", Kind::string, true);
      const std::string *then = string_field(r, rptr, "then", true);
      if (!when || !then) continue;
      // Compile once here for the error position; the rule set compiles its own copy.
      if (!expression(*when, rptr + "/when", when->string, 0)) continue;
      if (auto s = set.add(when->string, *then, *program_->variables, expression_options());
          !s.ok())
        problem(*when, rptr + "/when", s.error().message);
    }
    rule_set_index_[m.key] = static_cast<int>(program_->rule_sets.size());
    program_->rule_sets.push_back(std::move(set));
    program_->rule_set_names.push_back(m.key);
  }
}

void Compiler::declare_nodes(size_t g) {
  const Value &gv = *graph_values_[g];
  const std::string &gptr = graph_pointers_[g];
  Graph &graph = program_->graphs[g];
  const Value *nodes = field(gv, gptr, "nodes", Kind::object, true);
  if (nodes) {
    for (const json::Member &m : nodes->members) {
      std::string ptr = json::pointer_append(gptr + "/nodes", m.key);
      if (!valid_name(m.key)) {
        problem_key(
            m, ptr,
            "node name must be an identifier (letters, digits, '_'; not starting with a digit)");
      }
      if (total_nodes_++ >= kMaxNodes) {
        problem_key(m, ptr, "too many nodes (the limit is " + std::to_string(kMaxNodes) + ")");
        break;
      }
      Node n;
      n.name = m.key;
      names_[g][m.key] = static_cast<NodeIndex>(graph.nodes.size());
      graph.nodes.push_back(std::move(n));
      node_values_[g].push_back(&m.value);
    }
    if (nodes->members.empty()) problem(*nodes, gptr + "/nodes", "a flow needs at least one node");
  }
  if (const Value *start = field(gv, gptr, "start", Kind::string, true)) {
    graph.start = exit_target(g, *start, gptr + "/start");
  }
}

bool Compiler::schedule_declared(const std::string &name) const {
  // A schedule with errors was reported already; do not report its uses as well.
  const Value *s = doc_.root().find("schedules");
  return s && s->find(name);
}

void Compiler::reachability() {
  std::vector<bool> graph_used(program_->graphs.size(), false);
  graph_used[0] = true;
  std::deque<size_t> graphs_todo{0};
  std::vector<std::vector<bool>> seen(program_->graphs.size());
  while (!graphs_todo.empty()) {
    size_t g = graphs_todo.front();
    graphs_todo.pop_front();
    const Graph &graph = program_->graphs[g];
    seen[g].assign(graph.nodes.size(), false);
    std::deque<NodeIndex> todo;
    if (graph.start != kNoNode) todo.push_back(graph.start);
    while (!todo.empty()) {
      NodeIndex i = todo.front();
      todo.pop_front();
      if (i == kNoNode || seen[g][static_cast<size_t>(i)]) continue;
      seen[g][static_cast<size_t>(i)] = true;
      const Node &n = graph.nodes[static_cast<size_t>(i)];
      for (NodeIndex e : exits_of(n)) todo.push_back(e);
      if (auto *s = std::get_if<Subflow>(&n.spec);
          s && s->graph >= 0 && !graph_used[static_cast<size_t>(s->graph)]) {
        graph_used[static_cast<size_t>(s->graph)] = true;
        graphs_todo.push_back(static_cast<size_t>(s->graph));
      }
    }
  }
  for (size_t g = 0; g < program_->graphs.size(); ++g) {
    const Graph &graph = program_->graphs[g];
    if (!graph_used[g]) {
      problem(*graph_values_[g], graph_pointers_[g],
              "subflow " + quoted(graph.name) + " is never called");
      continue;
    }
    if (graph.start == kNoNode) continue;  // already reported
    for (size_t i = 0; i < graph.nodes.size(); ++i)
      if (!seen[g][i])
        problem(*node_values_[g][i],
                json::pointer_append(graph_pointers_[g] + "/nodes", graph.nodes[i].name),
                "node " + quoted(graph.nodes[i].name) + " is unreachable from " +
                    quoted(graph.nodes[static_cast<size_t>(graph.start)].name));
  }
  // Step-result slots, now that every expression has been compiled.
  for (Graph &graph : program_->graphs)
    for (Node &n : graph.nodes) {
      n.slot_digits = program_->variables->slot_of("steps." + n.name + ".digits");
      n.slot_result = program_->variables->slot_of("steps." + n.name + ".result");
      n.slot_attempts = program_->variables->slot_of("steps." + n.name + ".attempts");
    }
}

std::vector<NodeIndex> Compiler::exits_of(const Node &n) {
  std::vector<NodeIndex> out{n.next, n.on_error};
  std::visit(
      [&](const auto &s) {
        using T = std::decay_t<decltype(s)>;
        if constexpr (std::is_same_v<T, Gather>) {
          out.push_back(s.on_no_input);
          out.push_back(s.on_invalid);
          for (auto &[k, e] : s.choices) out.push_back(e);
        } else if constexpr (std::is_same_v<T, If>) {
          out.push_back(s.then_node);
          out.push_back(s.else_node);
        } else if constexpr (std::is_same_v<T, Switch>) {
          for (auto &c : s.cases) out.push_back(c.node);
          for (auto &[k, e] : s.results) out.push_back(e);
          out.push_back(s.default_node);
        } else if constexpr (std::is_same_v<T, ScheduleBranch>) {
          out.push_back(s.open_node);
          out.push_back(s.closed_node);
        } else if constexpr (std::is_same_v<T, Http>) {
          out.push_back(s.on_timeout);
        } else if constexpr (std::is_same_v<T, Db>) {
          out.push_back(s.on_timeout);
          out.push_back(s.on_empty);
        } else if constexpr (std::is_same_v<T, Route>) {
          out.push_back(s.on_failed);
          out.push_back(s.on_timeout);
        } else if constexpr (std::is_same_v<T, Transfer>) {
          out.push_back(s.on_failed);
        } else if constexpr (std::is_same_v<T, Custom>) {
          for (auto &[k, e] : s.exits) out.push_back(e);
          out.push_back(s.on_timeout);
        }
      },
      n.spec);
  return out;
}

}  // namespace detail

using detail::Compiler;
using detail::kReserved;

size_t Program::node_count() const {
  size_t n = 0;
  for (const Graph &g : graphs) n += g.nodes.size();
  return n;
}

bool is_reserved_verb(std::string_view verb) {
  return std::find(std::begin(kReserved), std::end(kReserved), verb) != std::end(kReserved);
}

bool is_builtin_verb(std::string_view verb) {
  static constexpr std::string_view kBuiltin[] = {
      "answer", "play",     "say",   "gather",  "menu",    "set",    "if",
      "switch", "schedule", "pause", "goto",    "subflow", "return", "hangup",
      "http",   "db",       "route", "enqueue", "transfer"};
  return is_reserved_verb(verb) ||
         std::find(std::begin(kBuiltin), std::end(kBuiltin), verb) != std::end(kBuiltin);
}

std::string format_problem(const Problem &p) {
  std::string out =
      "line " + std::to_string(p.line) + ", column " + std::to_string(p.column) + ": ";
  out += p.pointer.empty() ? "(document)" : p.pointer;
  out += ": ";
  out += p.message;
  return out;
}

CompileResult compile(std::string_view document, const CompileOptions &options) {
  auto doc = json::parse(document);
  if (!doc.ok()) {
    CompileResult r;
    Problem p;
    p.message = doc.error().message;
    // "line L, column C: reason" -> structured.
    unsigned line = 0, col = 0;
    int consumed = 0;
    if (sscanf(p.message.c_str(), "line %u, column %u: %n", &line, &col, &consumed) == 2 &&
        consumed > 0) {
      p.line = line;
      p.column = col;
      p.message = p.message.substr(static_cast<size_t>(consumed));
    }
    p.message = "invalid JSON: " + p.message;
    r.problems.push_back(std::move(p));
    return r;
  }
  return Compiler(doc.value(), options).run();
}

}  // namespace ivr::flow
