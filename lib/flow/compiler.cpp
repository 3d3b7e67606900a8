#include "flow/compiler.h"

#include <sys/stat.h>

#include <algorithm>
#include <charconv>
#include <deque>
#include <map>

#include "common/json.h"
#include "flow/template.h"

namespace ivr::flow {

namespace {

using json::Kind;
using json::Value;

constexpr std::string_view kReserved[] = {"http",    "db",       "webhook", "route",
                                          "enqueue", "transfer", "record"};
constexpr std::string_view kCommonFields[] = {"verb", "next", "on_error", "label", "ui"};

bool valid_name(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  if (!(isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

// "../x", "a/../b", ".." - as the engine refuses at play time; "a..b.wav" is fine.
bool has_dotdot_component(std::string_view name) {
  size_t start = 0;
  while (start <= name.size()) {
    size_t slash = name.find('/', start);
    if (name.substr(start, slash - start) == "..") return true;
    if (slash == std::string_view::npos) return false;
    start = slash + 1;
  }
  return false;
}

std::string quoted(std::string_view s) {
  return "\"" + std::string(s) + "\"";
}

// Column N from a rules error ("column N: reason"), or 0.
uint32_t error_column(const std::string &message) {
  if (message.rfind("column ", 0) != 0) return 0;
  uint32_t col = 0;
  auto r = std::from_chars(message.data() + 7, message.data() + message.size(), col);
  return r.ec == std::errc() ? col : 0;
}

class Compiler {
 public:
  Compiler(const json::Document &doc, const CompileOptions &opts) : doc_(doc), opts_(opts) {
    program_ = std::make_shared<Program>();
    program_->variables =
        std::make_shared<rules::VariableTable>(std::vector<std::string>{"call", "vars", "steps"});
    program_->schedules = std::make_shared<rules::ScheduleRegistry>();
  }

  CompileResult run() {
    const Value &root = doc_.root();
    if (!root.is(Kind::object)) {
      problem(root, "",
              "a flow document is a JSON object, not " + std::string(kind_name(root.kind)));
      return finish();
    }
    check_fields(root, "",
                 {"flow", "version", "description", "start", "nodes", "variables", "schedules",
                  "rule_sets", "subflows"});
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

 private:
  static bool valid_id(std::string_view s) {
    if (s.empty() || s.size() > 64) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
      return isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
    });
  }

  CompileResult finish() {
    CompileResult r;
    std::stable_sort(problems_.begin(), problems_.end(), [](const Problem &a, const Problem &b) {
      return a.line != b.line ? a.line < b.line : a.column < b.column;
    });
    r.problems = std::move(problems_);
    if (r.problems.empty()) r.program = std::move(program_);
    return r;
  }

  // ---- problems ----
  void problem_at(uint32_t offset, std::string pointer, std::string message) {
    json::Position p = doc_.position(offset);
    problems_.push_back(Problem{std::move(pointer), p.line, p.column, std::move(message)});
  }
  void problem(const Value &at, std::string pointer, std::string message) {
    problem_at(at.offset, std::move(pointer), std::move(message));
  }
  void problem_key(const json::Member &m, std::string pointer, std::string message) {
    problem_at(m.key_offset, std::move(pointer), std::move(message));
  }

  // ---- typed field access ----
  void check_fields(const Value &obj, const std::string &ptr,
                    std::initializer_list<std::string_view> allowed) {
    for (const json::Member &m : obj.members) {
      if (std::find(allowed.begin(), allowed.end(), m.key) == allowed.end())
        problem_key(m, json::pointer_append(ptr, m.key), "unknown field " + quoted(m.key));
    }
  }
  // The field when present with the wanted kind; a problem when of another kind, or absent
  // and required.
  const Value *field(const Value &obj, const std::string &ptr, std::string_view key, Kind kind,
                     bool required = false) {
    const Value *v = obj.find(key);
    if (!v) {
      if (required) problem(obj, ptr, "missing required field " + quoted(key));
      return nullptr;
    }
    if (!v->is(kind)) {
      problem(*v, json::pointer_append(ptr, key),
              "must be " + std::string(kind == Kind::object ? "an " : "a ") + kind_name(kind) +
                  ", not " + kind_name(v->kind));
      return nullptr;
    }
    return v;
  }
  const std::string *string_field(const Value &obj, const std::string &ptr, std::string_view key,
                                  bool required) {
    const Value *v = field(obj, ptr, key, Kind::string, required);
    return v ? &v->string : nullptr;
  }
  // An integer field in [lo, hi]; def when absent or wrong.
  int64_t int_field(const Value &obj, const std::string &ptr, std::string_view key, int64_t lo,
                    int64_t hi, int64_t def) {
    const Value *v = field(obj, ptr, key, Kind::number);
    if (!v) return def;
    if (!v->integral || v->number < static_cast<double>(lo) ||
        v->number > static_cast<double>(hi)) {
      problem(*v, json::pointer_append(ptr, key),
              "must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
      return def;
    }
    return static_cast<int64_t>(v->number);
  }
  bool bool_field(const Value &obj, const std::string &ptr, std::string_view key, bool def) {
    const Value *v = field(obj, ptr, key, Kind::boolean);
    return v ? v->boolean : def;
  }

  // ---- expressions and templates ----
  std::optional<rules::Expression> expression(const Value &v, const std::string &ptr,
                                              std::string_view src, size_t src_index) {
    auto r = rules::compile(src, *program_->variables, expression_options());
    if (r.ok()) return std::move(r).value();
    if (names_broken_schedule(r.error().message)) return std::nullopt;  // reported already
    uint32_t col = error_column(r.error().message);
    // The string starts after its quote; escapes inside would shift this slightly.
    uint32_t offset = v.offset + 1 + static_cast<uint32_t>(src_index) + (col ? col - 1 : 0);
    problem_at(offset, ptr, "bad expression: " + r.error().message);
    return std::nullopt;
  }
  // in_schedule("name") must name a schedule of this document (checked at compile time).
  rules::CompileOptions expression_options() const {
    rules::CompileOptions o;
    o.schedules = program_->schedules.get();
    return o;
  }
  // "unknown schedule 'x'" for a schedule that is declared but has its own problems.
  bool names_broken_schedule(const std::string &message) const {
    static constexpr std::string_view kUnknown = "unknown schedule '";
    size_t at = message.find(kUnknown);
    if (at == std::string::npos) return false;
    size_t from = at + kUnknown.size(), to = message.find('\'', from);
    return to != std::string::npos && schedule_declared(message.substr(from, to - from));
  }
  std::optional<rules::Expression> expression_field(const Value &obj, const std::string &ptr,
                                                    std::string_view key, bool required) {
    const Value *v = field(obj, ptr, key, Kind::string, required);
    if (!v) return std::nullopt;
    return expression(*v, json::pointer_append(ptr, key), v->string, 0);
  }
  std::optional<Template> template_of(const Value &v, const std::string &ptr) {
    Template t;
    t.source = v.string;
    const std::string &s = v.string;
    size_t pos = 0;
    bool ok = true;
    while (pos < s.size()) {
      size_t open = s.find("{{", pos);
      if (open == std::string::npos) {
        t.parts.push_back({s.substr(pos), std::nullopt});
        break;
      }
      if (open > pos) t.parts.push_back({s.substr(pos, open - pos), std::nullopt});
      size_t close = s.find("}}", open + 2);
      if (close == std::string::npos) {
        problem_at(
            v.offset + 1 + static_cast<uint32_t>(open), ptr,
            "template: \"{{\" at column " + std::to_string(open + 1) + " is not closed by \"}}\"");
        return std::nullopt;
      }
      auto e = expression(v, ptr, std::string_view(s).substr(open + 2, close - open - 2), open + 2);
      if (e)
        t.parts.push_back({"", std::move(e)});
      else
        ok = false;
      pos = close + 2;
    }
    if (!ok) return std::nullopt;
    return t;
  }
  std::optional<Template> template_field(const Value &obj, const std::string &ptr,
                                         std::string_view key, bool required) {
    const Value *v = field(obj, ptr, key, Kind::string, required);
    if (!v) return std::nullopt;
    return template_of(*v, json::pointer_append(ptr, key));
  }

  // ---- prompts ----
  void check_prompt_file(const Value &v, const std::string &ptr, const Template &t) {
    if (!t.constant()) return;
    std::string name = t.parts.empty() ? "" : t.parts[0].text;
    if (name.empty() || name[0] == '/' || has_dotdot_component(name)) {
      problem(v, ptr,
              "prompt file must be a relative name inside the prompt directory, without \"..\"");
      return;
    }
    if (opts_.prompt_dir.empty()) return;
    struct stat st {};
    std::string path = opts_.prompt_dir + "/" + name;
    if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
      problem(v, ptr, "missing prompt file " + quoted(name) + " in " + opts_.prompt_dir);
  }
  // A prompt object: {"file": "x.wav"} or {"say": "text", "voice": "en", "rate": 160}.
  Prompt prompt_object(const Value &obj, const std::string &ptr) {
    Prompt p;
    if (!obj.is(Kind::object)) {
      problem(obj, ptr, "a prompt is an object: {\"file\": ...} or {\"say\": ...}");
      return p;
    }
    check_fields(obj, ptr, {"file", "say", "voice", "rate"});
    const Value *file = obj.find("file");
    const Value *say = obj.find("say");
    if ((file != nullptr) == (say != nullptr)) {
      problem(obj, ptr, "a prompt has exactly one of \"file\" or \"say\"");
      return p;
    }
    if (file) {
      if (auto t = template_field(obj, ptr, "file", true)) {
        check_prompt_file(*file, json::pointer_append(ptr, "file"), *t);
        p.kind = Prompt::Kind::file;
        p.content = std::move(*t);
      }
      if (obj.find("voice") || obj.find("rate"))
        problem(obj, ptr, "\"voice\" and \"rate\" apply to \"say\" prompts only");
    } else {
      if (auto t = template_field(obj, ptr, "say", true)) {
        p.kind = Prompt::Kind::say;
        p.content = std::move(*t);
      }
      say_options(obj, ptr, p);
    }
    return p;
  }
  void say_options(const Value &obj, const std::string &ptr, Prompt &p) {
    if (auto *voice = string_field(obj, ptr, "voice", false)) {
      if (voice->empty() || voice->size() > 64 ||
          voice->find_first_of("/\\ \"'") != std::string::npos)
        problem(*obj.find("voice"), json::pointer_append(ptr, "voice"),
                "voice must be an espeak-ng voice name such as \"en\" or \"en-us\"");
      else
        p.voice = *voice;
    }
    p.rate_wpm = static_cast<unsigned>(int_field(obj, ptr, "rate", 80, 450, 160));
  }
  Prompt prompt_field(const Value &obj, const std::string &ptr, std::string_view key) {
    const Value *v = obj.find(key);
    if (!v) return {};
    return prompt_object(*v, json::pointer_append(ptr, key));
  }

  // ---- document sections ----
  void schedules(const Value &root) {
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
  // ["09:00-17:00", ...]
  std::optional<std::vector<rules::HoursSpec>> hours_list(const Value &v, const std::string &ptr) {
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
  void variables(const Value &root) {
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
  static bool valid_dotted(std::string_view s) {
    size_t start = 0;
    while (true) {
      size_t dot = s.find('.', start);
      if (!valid_name(s.substr(start, dot - start))) return false;
      if (dot == std::string_view::npos) return true;
      start = dot + 1;
    }
  }
  std::optional<Literal> literal(const Value &v, const std::string &ptr) {
    Literal l;
    switch (v.kind) {
      case Kind::null:
        break;
      case Kind::boolean:
        l.type = rules::Type::boolean;
        l.b = v.boolean;
        break;
      case Kind::number:
        l.type = rules::Type::number;
        l.n = v.number;
        break;
      case Kind::string:
        l.type = rules::Type::string;
        l.s = v.string;
        break;
      default:
        problem(v, ptr, "must be a string, number, boolean or null");
        return std::nullopt;
    }
    return l;
  }
  void rule_sets(const Value &root) {
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

  // ---- nodes ----
  void declare_nodes(size_t g) {
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
      if (nodes->members.empty())
        problem(*nodes, gptr + "/nodes", "a flow needs at least one node");
    }
    if (const Value *start = field(gv, gptr, "start", Kind::string, true)) {
      graph.start = exit_target(g, *start, gptr + "/start");
    }
  }
  NodeIndex exit_target(size_t g, const Value &v, const std::string &ptr) {
    if (!v.is(Kind::string)) {
      problem(v, ptr, "must be a node name (string), not " + std::string(kind_name(v.kind)));
      return kNoNode;
    }
    auto it = names_[g].find(v.string);
    if (it == names_[g].end()) {
      problem(v, ptr,
              "no node named " + quoted(v.string) +
                  (g == 0 ? std::string() : " in subflow " + quoted(program_->graphs[g].name)));
      return kNoNode;
    }
    return it->second;
  }
  NodeIndex exit_field(size_t g, const Value &obj, const std::string &ptr, std::string_view key,
                       bool required = false) {
    const Value *v = obj.find(key);
    if (!v) {
      if (required) problem(obj, ptr, "missing required exit " + quoted(key));
      return kNoNode;
    }
    return exit_target(g, *v, json::pointer_append(ptr, key));
  }
  // {"1": "node", ...}
  std::map<std::string, NodeIndex> exit_map(size_t g, const Value &obj, const std::string &ptr,
                                            std::string_view key, bool digits) {
    std::map<std::string, NodeIndex> out;
    const Value *m = field(obj, ptr, key, Kind::object, digits);
    if (!m) return out;
    std::string mptr = json::pointer_append(ptr, key);
    for (const json::Member &e : m->members) {
      std::string eptr = json::pointer_append(mptr, e.key);
      if (digits && (e.key.size() != 1 || std::string_view("0123456789*#ABCD").find(e.key[0]) ==
                                              std::string_view::npos)) {
        problem_key(e, eptr, "a menu choice is one DTMF digit (0-9, *, #, A-D)");
        out["?" + e.key] = exit_target(g, e.value, eptr);  // still an edge for reachability
        continue;
      }
      out[e.key] = exit_target(g, e.value, eptr);
    }
    if (digits && m->members.empty()) problem(*m, mptr, "a menu needs at least one choice");
    return out;
  }

  void compile_nodes(size_t g) {
    Graph &graph = program_->graphs[g];
    for (size_t i = 0; i < graph.nodes.size(); ++i) {
      const Value &v = *node_values_[g][i];
      std::string ptr = json::pointer_append(graph_pointers_[g] + "/nodes", graph.nodes[i].name);
      compile_node(g, graph.nodes[i], v, ptr);
    }
  }

  void compile_node(size_t g, Node &n, const Value &v, const std::string &ptr) {
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
            problem(*v.find("store"), ptr + "/store",
                    "store names a flow variable: \"vars.<name>\"");
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
          if (list->items.empty())
            problem(*list, ptr + "/cases", "a switch needs at least one case");
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
          if (m.value.is(Kind::string)) {
            if (auto t = template_of(m.value, aptr)) c.args.emplace_back(m.key, std::move(*t));
          } else if (m.value.is(Kind::number) || m.value.is(Kind::boolean)) {
            Template t;
            t.source = m.value.is(Kind::boolean) ? (m.value.boolean ? "true" : "false")
                                                 : number_text(m.value.number);
            t.parts.push_back({t.source, std::nullopt});
            c.args.emplace_back(m.key, std::move(t));
          } else {
            problem(m.value, aptr, "an argument is a string (template), number or boolean");
          }
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
  bool schedule_declared(const std::string &name) const {
    // A schedule with errors was reported already; do not report its uses as well.
    const Value *s = doc_.root().find("schedules");
    return s && s->find(name);
  }

  // Every node must be reachable from its graph's start; every subflow must be called.
  void reachability() {
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

 public:
  static std::vector<NodeIndex> exits_of(const Node &n) {
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
          } else if constexpr (std::is_same_v<T, Custom>) {
            for (auto &[k, e] : s.exits) out.push_back(e);
            out.push_back(s.on_timeout);
          }
        },
        n.spec);
    return out;
  }

 private:
  const json::Document &doc_;
  const CompileOptions &opts_;
  std::shared_ptr<Program> program_;
  std::vector<Problem> problems_;
  std::vector<const Value *> graph_values_;
  std::vector<std::string> graph_pointers_;
  std::map<size_t, std::map<std::string, NodeIndex, std::less<>>> names_;
  std::map<size_t, std::vector<const Value *>> node_values_;
  std::map<std::string, int, std::less<>> subflow_index_;
  std::map<std::string, int, std::less<>> rule_set_index_;
  size_t total_nodes_ = 0;
};

}  // namespace

size_t Program::node_count() const {
  size_t n = 0;
  for (const Graph &g : graphs) n += g.nodes.size();
  return n;
}

bool is_reserved_verb(std::string_view verb) {
  return std::find(std::begin(kReserved), std::end(kReserved), verb) != std::end(kReserved);
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
