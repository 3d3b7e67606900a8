// Reading a flow document's fields, expressions, templates, prompts and exits, reporting
// every problem with its JSON Pointer and position.
#include "flow/document_compiler.h"

#include <sys/stat.h>

namespace ivr::flow::detail {

void Compiler::problem_at(uint32_t offset, std::string pointer, std::string message) {
  json::Position p = doc_.position(offset);
  problems_.push_back(Problem{std::move(pointer), p.line, p.column, std::move(message)});
}

void Compiler::problem(const Value &at, std::string pointer, std::string message) {
  problem_at(at.offset, std::move(pointer), std::move(message));
}

void Compiler::problem_key(const json::Member &m, std::string pointer, std::string message) {
  problem_at(m.key_offset, std::move(pointer), std::move(message));
}

void Compiler::check_fields(const Value &obj, const std::string &ptr,
                            std::initializer_list<std::string_view> allowed) {
  for (const json::Member &m : obj.members) {
    if (std::find(allowed.begin(), allowed.end(), m.key) == allowed.end())
      problem_key(m, json::pointer_append(ptr, m.key), "unknown field " + quoted(m.key));
  }
}

const Value *Compiler::field(const Value &obj, const std::string &ptr, std::string_view key,
                             Kind kind, bool required) {
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

const std::string *Compiler::string_field(const Value &obj, const std::string &ptr,
                                          std::string_view key, bool required) {
  const Value *v = field(obj, ptr, key, Kind::string, required);
  return v ? &v->string : nullptr;
}

int64_t Compiler::int_field(const Value &obj, const std::string &ptr, std::string_view key,
                            int64_t lo, int64_t hi, int64_t def) {
  const Value *v = field(obj, ptr, key, Kind::number);
  if (!v) return def;
  if (!v->integral || v->number < static_cast<double>(lo) || v->number > static_cast<double>(hi)) {
    problem(*v, json::pointer_append(ptr, key),
            "must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
    return def;
  }
  return static_cast<int64_t>(v->number);
}

bool Compiler::bool_field(const Value &obj, const std::string &ptr, std::string_view key,
                          bool def) {
  const Value *v = field(obj, ptr, key, Kind::boolean);
  return v ? v->boolean : def;
}

std::optional<rules::Expression> Compiler::expression(const Value &v, const std::string &ptr,
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

rules::CompileOptions Compiler::expression_options() const {
  rules::CompileOptions o;
  o.schedules = program_->schedules.get();
  return o;
}

bool Compiler::names_broken_schedule(const std::string &message) const {
  static constexpr std::string_view kUnknown = "unknown schedule '";
  size_t at = message.find(kUnknown);
  if (at == std::string::npos) return false;
  size_t from = at + kUnknown.size(), to = message.find('\'', from);
  return to != std::string::npos && schedule_declared(message.substr(from, to - from));
}

std::optional<rules::Expression> Compiler::expression_field(const Value &obj,
                                                            const std::string &ptr,
                                                            std::string_view key, bool required) {
  const Value *v = field(obj, ptr, key, Kind::string, required);
  if (!v) return std::nullopt;
  return expression(*v, json::pointer_append(ptr, key), v->string, 0);
}

std::optional<Template> Compiler::template_of(const Value &v, const std::string &ptr) {
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

std::optional<Template> Compiler::template_or_literal(const Value &v, const std::string &ptr,
                                                      const char *what) {
  if (v.is(Kind::string)) return template_of(v, ptr);
  if (v.is(Kind::number) || v.is(Kind::boolean)) {
    Template t;
    t.source = v.is(Kind::boolean) ? (v.boolean ? "true" : "false") : number_text(v.number);
    t.parts.push_back({t.source, std::nullopt});
    return t;
  }
  problem(v, ptr, what);
  return std::nullopt;
}

std::optional<std::string> Compiler::map_variable(const json::Member &m, const std::string &ptr) {
  std::string var = m.key.rfind("vars.", 0) == 0 ? m.key : "vars." + m.key;
  bool read_only = m.key.rfind("call.", 0) == 0 || m.key.rfind("steps.", 0) == 0;
  if (read_only || !valid_dotted(var.substr(5))) {
    problem_key(m, ptr, "map sets flow variables: \"name\" or \"vars.name\"");
    return std::nullopt;
  }
  return var;
}

std::optional<Template> Compiler::template_field(const Value &obj, const std::string &ptr,
                                                 std::string_view key, bool required) {
  const Value *v = field(obj, ptr, key, Kind::string, required);
  if (!v) return std::nullopt;
  return template_of(*v, json::pointer_append(ptr, key));
}

void Compiler::check_prompt_file(const Value &v, const std::string &ptr, const Template &t) {
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

Prompt Compiler::prompt_object(const Value &obj, const std::string &ptr) {
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

void Compiler::say_options(const Value &obj, const std::string &ptr, Prompt &p) {
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

Prompt Compiler::prompt_field(const Value &obj, const std::string &ptr, std::string_view key) {
  const Value *v = obj.find(key);
  if (!v) return {};
  return prompt_object(*v, json::pointer_append(ptr, key));
}

bool Compiler::valid_dotted(std::string_view s) {
  size_t start = 0;
  while (true) {
    size_t dot = s.find('.', start);
    if (!valid_name(s.substr(start, dot - start))) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

std::optional<Literal> Compiler::literal(const Value &v, const std::string &ptr) {
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

NodeIndex Compiler::exit_target(size_t g, const Value &v, const std::string &ptr) {
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

NodeIndex Compiler::exit_field(size_t g, const Value &obj, const std::string &ptr,
                               std::string_view key, bool required) {
  const Value *v = obj.find(key);
  if (!v) {
    if (required) problem(obj, ptr, "missing required exit " + quoted(key));
    return kNoNode;
  }
  return exit_target(g, *v, json::pointer_append(ptr, key));
}

std::map<std::string, NodeIndex> Compiler::exit_map(size_t g, const Value &obj,
                                                    const std::string &ptr, std::string_view key,
                                                    bool digits) {
  std::map<std::string, NodeIndex> out;
  const Value *m = field(obj, ptr, key, Kind::object, digits);
  if (!m) return out;
  std::string mptr = json::pointer_append(ptr, key);
  for (const json::Member &e : m->members) {
    std::string eptr = json::pointer_append(mptr, e.key);
    if (digits && (e.key.size() != 1 ||
                   std::string_view("0123456789*#ABCD").find(e.key[0]) == std::string_view::npos)) {
      problem_key(e, eptr, "a menu choice is one DTMF digit (0-9, *, #, A-D)");
      out["?" + e.key] = exit_target(g, e.value, eptr);  // still an edge for reachability
      continue;
    }
    out[e.key] = exit_target(g, e.value, eptr);
  }
  if (digits && m->members.empty()) problem(*m, mptr, "a menu needs at least one choice");
  return out;
}

}  // namespace ivr::flow::detail
