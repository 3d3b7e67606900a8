// The flow document compiler's internals, shared by its source files: compiler.cpp
// (document level: schedules, variables, rule sets, graphs, reachability), compile_fields.cpp
// (reading fields, expressions, templates, prompts and exits, with problems reported) and
// compile_verbs.cpp (one node per verb), compile_http.cpp, compile_db.cpp and
// compile_route.cpp (the verbs with many fields). Private to lib/flow.
#pragma once

#include <algorithm>
#include <charconv>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "flow/compiler.h"
#include "flow/template.h"

namespace ivr::flow::detail {

using json::Kind;
using json::Value;

inline constexpr std::string_view kReserved[] = {"webhook", "record"};
inline constexpr std::string_view kCommonFields[] = {"verb", "next", "on_error", "label", "ui"};

inline bool valid_name(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  if (!(isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

// "../x", "a/../b", ".." - as the engine refuses at play time; "a..b.wav" is fine.
inline bool has_dotdot_component(std::string_view name) {
  size_t start = 0;
  while (start <= name.size()) {
    size_t slash = name.find('/', start);
    if (name.substr(start, slash - start) == "..") return true;
    if (slash == std::string_view::npos) return false;
    start = slash + 1;
  }
  return false;
}

inline std::string quoted(std::string_view s) {
  return "\"" + std::string(s) + "\"";
}

// Column N from a rules error ("column N: reason"), or 0.
inline uint32_t error_column(const std::string &message) {
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

  CompileResult run();

 private:
  static bool valid_id(std::string_view s);

  CompileResult finish();

  // ---- problems ----
  void problem_at(uint32_t offset, std::string pointer, std::string message);
  void problem(const Value &at, std::string pointer, std::string message);
  void problem_key(const json::Member &m, std::string pointer, std::string message);

  // ---- typed field access ----
  void check_fields(const Value &obj, const std::string &ptr,
                    std::initializer_list<std::string_view> allowed);
  // The field when present with the wanted kind; a problem when of another kind, or absent
  // and required.
  const Value *field(const Value &obj, const std::string &ptr, std::string_view key, Kind kind,
                     bool required = false);
  const std::string *string_field(const Value &obj, const std::string &ptr, std::string_view key,
                                  bool required);
  // An integer field in [lo, hi]; def when absent or wrong.
  int64_t int_field(const Value &obj, const std::string &ptr, std::string_view key, int64_t lo,
                    int64_t hi, int64_t def);
  bool bool_field(const Value &obj, const std::string &ptr, std::string_view key, bool def);

  // ---- expressions and templates ----
  std::optional<rules::Expression> expression(const Value &v, const std::string &ptr,
                                              std::string_view src, size_t src_index);
  // in_schedule("name") must name a schedule of this document (checked at compile time).
  rules::CompileOptions expression_options() const;
  // "unknown schedule 'x'" for a schedule that is declared but has its own problems.
  bool names_broken_schedule(const std::string &message) const;
  std::optional<rules::Expression> expression_field(const Value &obj, const std::string &ptr,
                                                    std::string_view key, bool required);
  std::optional<Template> template_of(const Value &v, const std::string &ptr);
  // A string as a template, a number or boolean as its literal text; nullopt (with a
  // problem saying `what`) for anything else.
  std::optional<Template> template_or_literal(const Value &v, const std::string &ptr,
                                              const char *what);
  // A "map" key: "name" or "vars.name" -> "vars.name"; nullopt (with a problem) otherwise.
  std::optional<std::string> map_variable(const json::Member &m, const std::string &ptr);
  std::optional<Template> template_field(const Value &obj, const std::string &ptr,
                                         std::string_view key, bool required);

  // ---- prompts ----
  void check_prompt_file(const Value &v, const std::string &ptr, const Template &t);
  // A prompt object: {"file": "x.wav"} or {"say": "text", "voice": "en", "rate": 160}.
  Prompt prompt_object(const Value &obj, const std::string &ptr);
  void say_options(const Value &obj, const std::string &ptr, Prompt &p);
  Prompt prompt_field(const Value &obj, const std::string &ptr, std::string_view key);

  // ---- document sections ----
  void schedules(const Value &root);
  // ["09:00-17:00", ...]
  std::optional<std::vector<rules::HoursSpec>> hours_list(const Value &v, const std::string &ptr);
  void variables(const Value &root);
  static bool valid_dotted(std::string_view s);
  std::optional<Literal> literal(const Value &v, const std::string &ptr);
  void rule_sets(const Value &root);

  // ---- nodes ----
  void declare_nodes(size_t g);
  NodeIndex exit_target(size_t g, const Value &v, const std::string &ptr);
  NodeIndex exit_field(size_t g, const Value &obj, const std::string &ptr, std::string_view key,
                       bool required = false);
  // {"1": "node", ...}
  std::map<std::string, NodeIndex> exit_map(size_t g, const Value &obj, const std::string &ptr,
                                            std::string_view key, bool digits);

  void compile_nodes(size_t g);

  void compile_node(size_t g, Node &n, const Value &v, const std::string &ptr);

  // ---- the http verb (compile_http.cpp) ----
  Http compile_http(size_t g, const Value &v, const std::string &ptr);
  void http_body(const Value &v, const std::string &ptr, Http &h);
  void http_accept_status(const Value &v, const std::string &ptr, Http &h);
  void http_response_map(const Value &v, const std::string &ptr, Http &h);
  // {"name": "template", ...}; header_names: keys must be HTTP header names.
  std::vector<std::pair<std::string, Template>> template_map(const Value &obj,
                                                             const std::string &ptr,
                                                             std::string_view key,
                                                             bool header_names);
  std::optional<JsonTemplate> json_template(const Value &v, const std::string &ptr, int depth);
  bool schedule_declared(const std::string &name) const;

  // ---- the db verb (compile_db.cpp) ----
  Db compile_db(size_t g, const Value &v, const std::string &ptr);

  // ---- the route, enqueue and transfer verbs (compile_route.cpp) ----
  Route compile_route(size_t g, const Value &v, const std::string &ptr, bool enqueue);
  void compile_queue(const Value &q, const std::string &ptr, Route &r);
  void compile_escalate(const Value &q, const std::string &ptr, Route &r);
  Transfer compile_transfer(size_t g, const Value &v, const std::string &ptr);

  // Every node must be reachable from its graph's start; every subflow must be called.
  void reachability();

 public:
  static std::vector<NodeIndex> exits_of(const Node &n);

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

}  // namespace ivr::flow::detail
