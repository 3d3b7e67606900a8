#include "rules/expr.h"

#include <re2/re2.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>

#include "rules/schedule.h"

namespace ivr::rules {

const char *type_name(Type t) {
  switch (t) {
    case Type::null:
      return "null";
    case Type::boolean:
      return "bool";
    case Type::number:
      return "number";
    case Type::string:
      return "string";
  }
  return "?";
}

Result<uint32_t> VariableTable::resolve(std::string_view name) const {
  std::string_view root = name.substr(0, name.find('.'));
  bool known = false;
  for (const auto &r : roots_) known = known || r == root;
  if (!known) return Error{Errc::parse, "unknown variable '" + std::string(name) + "'"};
  auto it = slots_.find(name);
  if (it != slots_.end()) return it->second;
  auto slot = static_cast<uint32_t>(slots_.size());
  slots_.emplace(std::string(name), slot);
  return slot;
}

int64_t VariableTable::slot_of(std::string_view name) const {
  auto it = slots_.find(name);
  return it == slots_.end() ? -1 : static_cast<int64_t>(it->second);
}

namespace detail {

enum class Op : uint8_t {
  literal,
  variable,
  neg,
  not_,
  mul,
  div,
  mod,
  add,
  sub,
  eq,
  ne,
  lt,
  le,
  gt,
  ge,
  in,
  not_in,
  and_,
  or_,
  cond,
  call,
};

// Static type: what a node yields apart from null. `any` is unknown until run time.
enum class SType : uint8_t { any, null, boolean, number, string };

struct Node {
  Op op = Op::literal;
  SType stype = SType::any;
  uint16_t fn = 0;   // call: index into kFunctions
  uint32_t col = 1;  // 1-based column of the operator / token
  int32_t a = -1, b = -1, c = -1;
  uint32_t slot = 0;  // variable: its slot; matches / regex_extract: index into regexes_
  uint32_t off = 0;   // call: arguments in extra_; in / not in: items in lists_
  uint32_t len = 0;   // their count; a string literal: its length in the source
  Value lit;          // literal (a string views into the expression's pool)
};

}  // namespace detail

using detail::Node;
using detail::Op;
using detail::SType;

Expression::Expression() = default;
Expression::~Expression() = default;
Expression::Expression(Expression &&) noexcept = default;
Expression &Expression::operator=(Expression &&) noexcept = default;
size_t Expression::node_count() const {
  return nodes_.size();
}

namespace {

// Each RE2 may use this much memory for its program and its lazily built DFA cache. A
// pattern whose program does not fit is a compile error ("pattern too large").
constexpr int64_t kRegexMaxMem = int64_t{2} << 20;

std::string at(uint32_t col) {
  return "column " + std::to_string(col) + ": ";
}

const char *op_name(Op op) {
  switch (op) {
    case Op::neg:
      return "-";
    case Op::not_:
      return "!";
    case Op::mul:
      return "*";
    case Op::div:
      return "/";
    case Op::mod:
      return "%";
    case Op::add:
      return "+";
    case Op::sub:
      return "-";
    case Op::eq:
      return "==";
    case Op::ne:
      return "!=";
    case Op::lt:
      return "<";
    case Op::le:
      return "<=";
    case Op::gt:
      return ">";
    case Op::ge:
      return ">=";
    case Op::in:
      return "in";
    case Op::not_in:
      return "not in";
    case Op::and_:
      return "&&";
    case Op::or_:
      return "||";
    case Op::cond:
      return "?:";
    default:
      return "?";
  }
}

// Byte equality of two strings of the same length; short ones (phone numbers, codes) without
// a call to memcmp.
inline bool same_bytes(const char *p, const char *q, size_t n) {
  if (n <= 16 && n >= 8) {
    uint64_t a, b, c, d;
    std::memcpy(&a, p, 8);
    std::memcpy(&b, q, 8);
    std::memcpy(&c, p + n - 8, 8);
    std::memcpy(&d, q + n - 8, 8);
    return ((a ^ b) | (c ^ d)) == 0;
  }
  if (n < 8) {
    for (size_t i = 0; i < n; ++i)
      if (p[i] != q[i]) return false;
    return true;
  }
  return std::memcmp(p, q, n) == 0;
}

inline bool equal(const Value &x, const Value &y) {
  if (x.type != y.type) return false;
  switch (x.type) {
    case Type::null:
      return true;
    case Type::boolean:
      return x.b == y.b;
    case Type::number:
      return x.n == y.n;
    case Type::string:
      return x.s.size() == y.s.size() && same_bytes(x.s.data(), y.s.data(), x.s.size());
  }
  return false;
}

}  // namespace

// ---------------------------------------------------------------- evaluation

enum class Fail : uint8_t {
  none,
  type,
  div_zero,
  scratch,
  bool_context,      // an operand of ! && || ?: is not a bool
  not_bool,          // the condition itself is not a bool (test_condition)
  no_time,           // now() / in_schedule() without EvalContext::set_time
  no_schedules,      // in_schedule() without EvalContext::set_schedules
  unknown_schedule,  // in_schedule() with a name the registry does not hold
};

// What went wrong, recorded cheaply; the message is built only after evaluation failed.
struct Failure {
  Fail kind = Fail::none;
  const Node *node = nullptr;  // the operator or function (null for Fail::not_bool)
  int ntypes = 0;
  Type t1 = Type::null, t2 = Type::null;
  std::string_view name;  // Fail::unknown_schedule
};

struct Evaluator {
  const Expression &e;
  const Node *nodes;
  const Value *lists;
  Bindings bind;
  EvalContext &ctx;
  Failure f;

  Evaluator(const Expression &ex, const Bindings &b, EvalContext &c)
      : e(ex), nodes(ex.nodes_.data()), lists(ex.lists_.data()), bind(b), ctx(c) {}

  [[gnu::cold]] bool fail(Fail kind, const Node *n, int ntypes = 0, Type a = Type::null,
                          Type b = Type::null) {
    f.kind = kind;
    f.node = n;
    f.ntypes = ntypes;
    f.t1 = a;
    f.t2 = b;
    return false;
  }

  const re2::RE2 &regex(uint32_t i) const { return *e.regexes_[i]; }
  uint32_t arg(const Node &n, uint32_t i) const {
    return static_cast<uint32_t>(e.extra_[n.off + i]);
  }

  // A leaf is read in place; anything else is evaluated.
  [[gnu::always_inline]] bool operand(int32_t idx, Value &out) {
    const Node &c = nodes[idx];
    if (c.op == Op::variable) return out = bind.get(c.slot), true;
    if (c.op == Op::literal) return out = c.lit, true;
    return eval(idx, out);
  }

  // A value in a boolean context: null is false, a non-bool fails at `parent` (the operator
  // whose operand it is), or as the condition's result when parent is null.
  bool truth(const Value &v, const Node *parent, bool &out) {
    if (v.type == Type::boolean) return out = v.b, true;
    if (v.type == Type::null) return out = false, true;
    return fail(parent ? Fail::bool_context : Fail::not_bool, parent, 1, v.type);
  }

  bool eval(int32_t idx, Value &out);
  bool test(int32_t idx, const Node *parent, bool &out);
  bool test_op(const Node &n, bool &out);
  bool compare(const Node &n, const Value &x, const Value &y, bool &out);
  bool arithmetic(const Node &n, Value &out);
};

namespace {

using FnImpl = bool (*)(Evaluator &, const Node &, const Value *, size_t, Value &);

// Compile-time work for a function's literal arguments.
enum class Prep : uint8_t { none, regex, regex_whole, schedule };

struct FunctionSpec {
  const char *name;
  uint8_t min_args, max_args;
  SType params[3];  // any, string or number; null always passes
  SType result;
  FnImpl impl;
  // Fails only when an argument has the wrong type at run time (no scratch, no context):
  // what the rule-set index needs to know.
  bool pure = false;
  uint8_t literal_args = 0;  // bit i: argument i must be a string literal
  Prep prep = Prep::none;
};

bool fn_case(Evaluator &ev, const Node &n, const Value *a, Value &out, bool upper) {
  if (a[0].is_null()) return out = Value{}, true;
  if (a[0].type != Type::string) return ev.fail(Fail::type, &n, 1, a[0].type);
  char *p = ev.ctx.allocate(a[0].s.size());
  if (!p && !a[0].s.empty()) return ev.fail(Fail::scratch, &n);
  for (size_t i = 0; i < a[0].s.size(); ++i) {
    char ch = a[0].s[i];
    if (upper && ch >= 'a' && ch <= 'z') ch = static_cast<char>(ch - 'a' + 'A');
    if (!upper && ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
    p[i] = ch;
  }
  out = Value::string(std::string_view(p, a[0].s.size()));
  return true;
}

bool fn_lower(Evaluator &ev, const Node &n, const Value *a, size_t, Value &out) {
  return fn_case(ev, n, a, out, false);
}
bool fn_upper(Evaluator &ev, const Node &n, const Value *a, size_t, Value &out) {
  return fn_case(ev, n, a, out, true);
}

// Two-string predicates: null in either → null.
template <int Kind>
bool fn_pred(Evaluator &ev, const Node &n, const Value *a, size_t, Value &out) {
  if (a[0].is_null() || a[1].is_null()) return out = Value{}, true;
  if (a[0].type != Type::string || a[1].type != Type::string)
    return ev.fail(Fail::type, &n, 2, a[0].type, a[1].type);
  std::string_view s = a[0].s, t = a[1].s;
  bool r = Kind == 0 ? s.starts_with(t) : Kind == 1 ? s.ends_with(t) : s.find(t) != s.npos;
  out = Value::boolean(r);
  return true;
}

bool fn_len(Evaluator &ev, const Node &n, const Value *a, size_t, Value &out) {
  if (a[0].is_null()) return out = Value{}, true;
  if (a[0].type != Type::string) return ev.fail(Fail::type, &n, 1, a[0].type);
  out = Value::number(static_cast<double>(a[0].s.size()));
  return true;
}

size_t clamp_index(double d, size_t max) {
  if (!(d > 0)) return 0;  // negative or NaN
  if (d >= static_cast<double>(max)) return max;
  return static_cast<size_t>(d);
}

bool fn_substr(Evaluator &ev, const Node &n, const Value *a, size_t argc, Value &out) {
  for (size_t i = 0; i < argc; ++i)
    if (a[i].is_null()) return out = Value{}, true;
  if (a[0].type != Type::string || a[1].type != Type::number ||
      (argc == 3 && a[2].type != Type::number))
    return ev.fail(Fail::type, &n, 2, a[0].type, a[1].type);
  std::string_view s = a[0].s;
  size_t start = clamp_index(a[1].n, s.size());
  size_t count = argc == 3 ? clamp_index(a[2].n, s.size()) : s.size();
  out = Value::string(s.substr(start, count));
  return true;
}

bool fn_number(Evaluator &ev, const Node &n, const Value *a, size_t, Value &out) {
  switch (a[0].type) {
    case Type::null:
      out = Value{};
      return true;
    case Type::number:
      out = a[0];
      return true;
    case Type::boolean:
      out = Value::number(a[0].b ? 1 : 0);
      return true;
    case Type::string: {
      std::string_view s = a[0].s;
      double d = 0;
      auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
      if (s.empty() || ec != std::errc() || ptr != s.data() + s.size())
        out = Value{};  // not a number: null
      else
        out = Value::number(d);
      return true;
    }
  }
  return ev.fail(Fail::type, &n, 1, a[0].type);
}

bool fn_string(Evaluator &ev, const Node &n, const Value *a, size_t, Value &out) {
  switch (a[0].type) {
    case Type::null:
    case Type::string:
      out = a[0];
      return true;
    case Type::boolean:
      out = Value::string(a[0].b ? "true" : "false");
      return true;
    case Type::number: {
      char tmp[32];
      auto [ptr, ec] = std::to_chars(tmp, tmp + sizeof tmp, a[0].n);
      if (ec != std::errc()) return ev.fail(Fail::scratch, &n);
      auto len = static_cast<size_t>(ptr - tmp);
      char *p = ev.ctx.allocate(len);
      if (!p) return ev.fail(Fail::scratch, &n);
      std::memcpy(p, tmp, len);
      out = Value::string(std::string_view(p, len));
      return true;
    }
  }
  return ev.fail(Fail::type, &n, 1, a[0].type);
}

re2::StringPiece piece(std::string_view s) {
  return s.data() ? re2::StringPiece(s.data(), s.size()) : re2::StringPiece("", 0);
}

// matches(s, pattern): whether the pattern matches anywhere in s. No captures are asked
// for, so RE2 answers from its DFA.
bool fn_matches(Evaluator &ev, const Node &n, const Value *a, size_t, Value &out) {
  if (a[0].is_null()) return out = Value{}, true;
  if (a[0].type != Type::string) return ev.fail(Fail::type, &n, 1, a[0].type);
  re2::StringPiece text = piece(a[0].s);
  out = Value::boolean(
      ev.regex(n.slot).Match(text, 0, text.size(), re2::RE2::UNANCHORED, nullptr, 0));
  return true;
}

// regex_extract(s, pattern): the leftmost match as a view into s, or null. Only the whole
// match (RE2's forward and reverse DFAs find its bounds); capturing groups are refused at
// compile time.
bool fn_regex_extract(Evaluator &ev, const Node &n, const Value *a, size_t, Value &out) {
  if (a[0].is_null()) return out = Value{}, true;
  if (a[0].type != Type::string) return ev.fail(Fail::type, &n, 1, a[0].type);
  re2::StringPiece text = piece(a[0].s), m;
  if (!ev.regex(n.slot).Match(text, 0, text.size(), re2::RE2::UNANCHORED, &m, 1))
    return out = Value{}, true;
  out = Value::string(std::string_view(m.data(), m.size()));
  return true;
}

bool fn_now(Evaluator &ev, const Node &n, const Value *, size_t, Value &out) {
  if (!ev.ctx.has_time()) return ev.fail(Fail::no_time, &n);
  // Whole seconds and the fraction apart, so that e.g. .25 s stays exact.
  auto t = ev.ctx.time().time_since_epoch();
  auto whole = std::chrono::floor<std::chrono::seconds>(t);
  out = Value::number(static_cast<double>(whole.count()) +
                      std::chrono::duration<double>(t - whole).count());
  return true;
}

bool fn_in_schedule(Evaluator &ev, const Node &n, const Value *a, size_t, Value &out) {
  const ScheduleRegistry *registry = ev.ctx.schedules();
  if (!registry) return ev.fail(Fail::no_schedules, &n);
  if (!ev.ctx.has_time()) return ev.fail(Fail::no_time, &n);
  const Schedule *s = registry->find(a[0].s);  // a literal: always a string
  if (!s) {
    ev.f.name = a[0].s;
    return ev.fail(Fail::unknown_schedule, &n);
  }
  out = Value::boolean(s->is_open(ev.ctx.time()));
  return true;
}

// The function table: one row per function.
constexpr SType S = SType::string, N = SType::number, A = SType::any, B = SType::boolean;
const FunctionSpec kFunctions[] = {
    {"lower", 1, 1, {S, A, A}, S, fn_lower},
    {"upper", 1, 1, {S, A, A}, S, fn_upper},
    {"starts_with", 2, 2, {S, S, A}, B, fn_pred<0>, true},
    {"ends_with", 2, 2, {S, S, A}, B, fn_pred<1>, true},
    {"contains", 2, 2, {S, S, A}, B, fn_pred<2>, true},
    {"len", 1, 1, {S, A, A}, N, fn_len, true},
    {"substr", 2, 3, {S, N, N}, S, fn_substr, true},
    {"number", 1, 1, {A, A, A}, N, fn_number, true},
    {"string", 1, 1, {A, A, A}, S, fn_string},
    {"matches", 2, 2, {S, S, A}, B, fn_matches, true, 0b10, Prep::regex},
    {"regex_extract", 2, 2, {S, S, A}, S, fn_regex_extract, true, 0b10, Prep::regex_whole},
    {"now", 0, 0, {A, A, A}, N, fn_now},
    {"in_schedule", 1, 1, {S, A, A}, B, fn_in_schedule, false, 0b1, Prep::schedule},
};

const char *what_of(const Node &n) {
  return n.op == Op::call ? kFunctions[n.fn].name : op_name(n.op);
}

// Builds the message of a failed evaluation (allocating is allowed here).
Error make_error(const Failure &f, const EvalContext &ctx, std::string_view result_name) {
  if (f.kind == Fail::not_bool)
    return Error{Errc::invalid_argument,
                 std::string(result_name) + " must yield a bool, got " + type_name(f.t1)};
  std::string msg = at(f.node->col);
  std::string what = what_of(*f.node);
  switch (f.kind) {
    case Fail::div_zero:
      return Error{Errc::invalid_argument, msg + "division by zero in '" + what + "'"};
    case Fail::scratch:
      return Error{Errc::no_memory, msg + "scratch buffer full (" + std::to_string(ctx.capacity()) +
                                        " bytes) in '" + what + "'"};
    case Fail::bool_context:
      return Error{Errc::invalid_argument,
                   msg + "operator '" + what + "' expects a bool, got " + type_name(f.t1)};
    case Fail::no_time:
      return Error{Errc::bad_state,
                   msg + what + "() needs the evaluation time, and the context has none"};
    case Fail::no_schedules:
      return Error{Errc::bad_state,
                   msg + what + "() needs a schedule registry, and the context has none"};
    case Fail::unknown_schedule:
      return Error{Errc::not_found, msg + "unknown schedule '" + std::string(f.name) + "'"};
    default:
      break;
  }
  msg += (f.node->op == Op::call ? "function '" : "operator '") + what + "' cannot take " +
         type_name(f.t1);
  if (f.ntypes == 2) msg += std::string(" and ") + type_name(f.t2);
  return Error{Errc::invalid_argument, msg};
}

}  // namespace

bool Evaluator::compare(const Node &n, const Value &x, const Value &y, bool &out) {
  if (n.op == Op::eq) return out = equal(x, y), true;
  if (n.op == Op::ne) return out = !equal(x, y), true;
  if (x.is_null() || y.is_null()) return out = false, true;
  int c;
  if (x.type == Type::number && y.type == Type::number) {
    if (std::isnan(x.n) || std::isnan(y.n)) return out = false, true;
    c = x.n < y.n ? -1 : x.n > y.n ? 1 : 0;
  } else if (x.type == Type::string && y.type == Type::string) {
    int r = x.s.compare(y.s);
    c = r < 0 ? -1 : r > 0 ? 1 : 0;
  } else {
    return fail(Fail::type, &n, 2, x.type, y.type);
  }
  out = n.op == Op::lt ? c < 0 : n.op == Op::le ? c <= 0 : n.op == Op::gt ? c > 0 : c >= 0;
  return true;
}

// Operators that always yield a bool.
bool Evaluator::test_op(const Node &n, bool &out) {
  switch (n.op) {
    case Op::and_:
      if (!test(n.a, &n, out)) return false;
      return !out || test(n.b, &n, out);
    case Op::or_:
      if (!test(n.a, &n, out)) return false;
      return out || test(n.b, &n, out);
    case Op::not_:
      if (!test(n.a, &n, out)) return false;
      out = !out;
      return true;
    case Op::in:
    case Op::not_in: {
      Value v;
      if (!operand(n.a, v)) return false;
      bool found = false;
      const Value *items = lists + n.off;
      for (uint32_t i = 0; i < n.len; ++i)
        if (equal(v, items[i])) {
          found = true;
          break;
        }
      out = (n.op == Op::in) == found;
      return true;
    }
    default: {
      Value x, y;
      if (!operand(n.a, x) || !operand(n.b, y)) return false;
      return compare(n, x, y, out);
    }
  }
}

bool Evaluator::test(int32_t idx, const Node *parent, bool &out) {
  const Node &n = nodes[idx];
  switch (n.op) {
    case Op::eq:
    case Op::ne:
    case Op::lt:
    case Op::le:
    case Op::gt:
    case Op::ge:
    case Op::in:
    case Op::not_in:
    case Op::and_:
    case Op::or_:
    case Op::not_:
      return test_op(n, out);
    case Op::variable:
      return truth(bind.get(n.slot), parent, out);
    default: {
      Value v;
      if (!eval(idx, v)) return false;
      return truth(v, parent, out);
    }
  }
}

bool Evaluator::arithmetic(const Node &n, Value &out) {
  Value x, y;
  if (!operand(n.a, x) || !operand(n.b, y)) return false;
  if (x.is_null() || y.is_null()) return out = Value{}, true;
  if (n.op == Op::add && x.type == Type::string && y.type == Type::string) {
    size_t len = x.s.size() + y.s.size();
    char *p = ctx.allocate(len);
    if (!p && len) return fail(Fail::scratch, &n);
    if (!x.s.empty()) std::memcpy(p, x.s.data(), x.s.size());
    if (!y.s.empty()) std::memcpy(p + x.s.size(), y.s.data(), y.s.size());
    out = Value::string(std::string_view(p, len));
    return true;
  }
  if (x.type != Type::number || y.type != Type::number)
    return fail(Fail::type, &n, 2, x.type, y.type);
  switch (n.op) {
    case Op::add:
      out = Value::number(x.n + y.n);
      return true;
    case Op::sub:
      out = Value::number(x.n - y.n);
      return true;
    case Op::mul:
      out = Value::number(x.n * y.n);
      return true;
    default:
      if (y.n == 0) return fail(Fail::div_zero, &n);
      out = Value::number(n.op == Op::div ? x.n / y.n : std::fmod(x.n, y.n));
      return true;
  }
}

bool Evaluator::eval(int32_t idx, Value &out) {
  const Node &n = nodes[idx];
  switch (n.op) {
    case Op::literal:
      out = n.lit;
      return true;
    case Op::variable:
      out = bind.get(n.slot);
      return true;
    case Op::neg: {
      Value v;
      if (!operand(n.a, v)) return false;
      if (v.is_null()) return out = Value{}, true;
      if (v.type != Type::number) return fail(Fail::type, &n, 1, v.type);
      out = Value::number(-v.n);
      return true;
    }
    case Op::cond: {
      bool t;
      if (!test(n.a, &n, t)) return false;
      return operand(t ? n.b : n.c, out);
    }
    case Op::call: {
      Value args[3];
      for (uint32_t i = 0; i < n.len; ++i)
        if (!operand(e.extra_[n.off + i], args[i])) return false;
      return kFunctions[n.fn].impl(*this, n, args, n.len, out);
    }
    case Op::add:
    case Op::sub:
    case Op::mul:
    case Op::div:
    case Op::mod:
      return arithmetic(n, out);
    default: {
      bool r;
      if (!test_op(n, r)) return false;
      out = Value::boolean(r);
      return true;
    }
  }
}

Result<Value> evaluate(const Expression &expr, const Bindings &bindings, EvalContext &ctx) {
  ctx.reset();
  if (expr.root_ < 0) return Error{Errc::invalid_argument, "expression was not compiled"};
  Evaluator ev(expr, bindings, ctx);
  Value out;
  if (ev.eval(expr.root_, out)) return out;
  return make_error(ev.f, ctx, "expression");
}

int detail::test_condition(const Expression &expr, const Bindings &bindings, EvalContext &ctx,
                           Error *err, std::string_view what) {
  ctx.reset();
  if (expr.root_ < 0) {
    *err = Error{Errc::invalid_argument, "expression was not compiled"};
    return -1;
  }
  Evaluator ev(expr, bindings, ctx);
  bool r;
  if (ev.test(expr.root_, nullptr, r)) return r ? 1 : 0;
  *err = make_error(ev.f, ctx, what);
  return -1;
}

Result<bool> evaluate_condition(const Expression &expr, const Bindings &bindings,
                                EvalContext &ctx) {
  Error err;
  int r = detail::test_condition(expr, bindings, ctx, &err, "condition");
  if (r < 0) return err;
  return r > 0;
}

// ---------------------------------------------------------------- compiler

namespace {

enum class Tok : uint8_t { end, number, string, ident, punct };

struct Token {
  Tok kind = Tok::end;
  uint32_t col = 1;
  std::string_view text;  // in the source
  std::string value;      // decoded string literal
  double num = 0;
};

bool ident_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool ident_char(char c) {
  return ident_start(c) || (c >= '0' && c <= '9');
}
bool digit(char c) {
  return c >= '0' && c <= '9';
}

}  // namespace

struct Compiler {
  Compiler(std::string_view s, const VariableResolver &r, const CompileOptions &o, Expression &ex)
      : src(s), resolver(r), options(o), e(ex) {
    // Decoded literals are never longer than the source, so the pool never reallocates and
    // literal Values can view into it from the start (a moved vector keeps its buffer).
    e.pool_.reserve(src.size());
  }
  std::string_view src;
  const VariableResolver &resolver;
  const CompileOptions &options;
  Expression &e;
  std::vector<Token> toks;
  size_t pos = 0;
  int nesting = 0;
  Error err;
  bool failed = false;

  bool fail(uint32_t col, std::string reason) {
    if (!failed) err = Error{Errc::parse, at(col) + reason};
    failed = true;
    return false;
  }

  bool lex() {
    size_t i = 0;
    while (i < src.size()) {
      char c = src[i];
      auto col = static_cast<uint32_t>(i + 1);
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        ++i;
        continue;
      }
      Token t;
      t.col = col;
      size_t start = i;
      if (digit(c) || (c == '.' && i + 1 < src.size() && digit(src[i + 1]))) {
        while (i < src.size() && (digit(src[i]) || src[i] == '.')) ++i;
        if (i < src.size() && (src[i] == 'e' || src[i] == 'E')) {
          ++i;
          if (i < src.size() && (src[i] == '+' || src[i] == '-')) ++i;
          while (i < src.size() && digit(src[i])) ++i;
        }
        while (i < src.size() && ident_char(src[i])) ++i;  // "12abc": report as malformed
        t.kind = Tok::number;
        t.text = src.substr(start, i - start);
        auto [ptr, ec] = std::from_chars(t.text.data(), t.text.data() + t.text.size(), t.num);
        if (ec != std::errc() || ptr != t.text.data() + t.text.size())
          return fail(col, "malformed number '" + std::string(t.text) + "'");
      } else if (c == '\'' || c == '"') {
        ++i;
        bool closed = false;
        while (i < src.size()) {
          char d = src[i++];
          if (d == c) {
            closed = true;
            break;
          }
          if (d == '\\') {
            if (i >= src.size()) break;
            char x = src[i++];
            switch (x) {
              case '\\':
              case '\'':
              case '"':
                t.value += x;
                break;
              case 'n':
                t.value += '\n';
                break;
              case 't':
                t.value += '\t';
                break;
              default:
                return fail(static_cast<uint32_t>(i - 1),
                            std::string("unknown escape '\\") + x + "' in string");
            }
          } else {
            t.value += d;
          }
        }
        if (!closed) return fail(col, "unterminated string");
        t.kind = Tok::string;
        t.text = src.substr(start, i - start);
      } else if (ident_start(c)) {
        while (i < src.size()) {
          if (ident_char(src[i])) {
            ++i;
          } else if (src[i] == '.' && i + 1 < src.size() && ident_start(src[i + 1])) {
            ++i;
          } else {
            break;
          }
        }
        t.kind = Tok::ident;
        t.text = src.substr(start, i - start);
      } else {
        static constexpr std::string_view two[] = {"==", "!=", "<=", ">=", "&&", "||"};
        size_t n = 1;
        for (auto op : two)
          if (src.substr(i).starts_with(op)) n = 2;
        if (n == 1 && std::string_view("!<>+-*/%()[],?:").find(c) == std::string_view::npos) {
          if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f)
            return fail(col, "unexpected byte 0x" + hex(c));
          return fail(col, std::string("unexpected character '") + c + "'");
        }
        t.kind = Tok::punct;
        t.text = src.substr(i, n);
        i += n;
      }
      toks.push_back(std::move(t));
    }
    Token end;
    end.col = static_cast<uint32_t>(src.size() + 1);
    toks.push_back(std::move(end));
    return true;
  }

  static std::string hex(char c) {
    static const char d[] = "0123456789abcdef";
    auto u = static_cast<unsigned char>(c);
    return {d[u >> 4], d[u & 15]};
  }

  const Token &peek(size_t k = 0) const { return toks[std::min(pos + k, toks.size() - 1)]; }
  bool is(std::string_view p, size_t k = 0) const {
    const Token &t = peek(k);
    return (t.kind == Tok::punct || t.kind == Tok::ident) && t.text == p;
  }
  static std::string describe(const Token &t) {
    if (t.kind == Tok::end) return "end of input";
    return "'" + std::string(t.text) + "'";
  }

  int32_t add(Node n) {
    e.nodes_.push_back(n);
    return static_cast<int32_t>(e.nodes_.size() - 1);
  }
  Node &node(int32_t i) { return e.nodes_[static_cast<size_t>(i)]; }

  static const char *sname(SType t) {
    switch (t) {
      case SType::null:
        return "null";
      case SType::boolean:
        return "bool";
      case SType::number:
        return "number";
      case SType::string:
        return "string";
      default:
        return "any";
    }
  }
  static bool fits(SType have, SType want) {
    return want == SType::any || have == SType::any || have == SType::null || have == want;
  }

  // Checks a boolean-context operand.
  bool want_bool(int32_t i, const char *op, uint32_t col) {
    SType t = node(i).stype;
    if (fits(t, SType::boolean)) return true;
    return fail(col, std::string("operator '") + op + "' expects a bool, got " + sname(t));
  }

  int32_t binary(Op op, uint32_t col, int32_t a, int32_t b) {
    Node n;
    n.op = op;
    n.col = col;
    n.a = a;
    n.b = b;
    SType x = node(a).stype, y = node(b).stype;
    const char *name = op_name(op);
    auto bad = [&]() {
      fail(col,
           std::string("operator '") + name + "' cannot take " + sname(x) + " and " + sname(y));
      return -1;
    };
    switch (op) {
      case Op::sub:
      case Op::mul:
      case Op::div:
      case Op::mod:
        if (!fits(x, SType::number) || !fits(y, SType::number)) return bad();
        n.stype = SType::number;
        break;
      case Op::add:
        if (x == SType::boolean || y == SType::boolean) return bad();
        if ((x == SType::number && y == SType::string) ||
            (x == SType::string && y == SType::number))
          return bad();
        n.stype = (x == SType::string || y == SType::string)   ? SType::string
                  : (x == SType::number || y == SType::number) ? SType::number
                                                               : SType::any;
        break;
      case Op::lt:
      case Op::le:
      case Op::gt:
      case Op::ge:
        if (x == SType::boolean || y == SType::boolean) return bad();
        if ((x == SType::number && y == SType::string) ||
            (x == SType::string && y == SType::number))
          return bad();
        n.stype = SType::boolean;
        break;
      case Op::and_:
      case Op::or_:
        if (!want_bool(a, name, col) || !want_bool(b, name, col)) return -1;
        n.stype = SType::boolean;
        break;
      default:
        n.stype = SType::boolean;
        break;
    }
    return add(n);
  }

  int32_t finish_depth_check(int32_t idx, uint32_t col) {
    if (idx < 0) return -1;
    // Depth of the new node: recomputed from children.
    Node &n = node(idx);
    int d = 0;
    for (int32_t ch : {n.a, n.b, n.c})
      if (ch >= 0) d = std::max(d, depth[static_cast<size_t>(ch)]);
    if (n.op == Op::call)
      for (uint32_t k = 0; k < n.len; ++k)
        d = std::max(d, depth[static_cast<size_t>(e.extra_[n.off + k])]);
    depth.resize(e.nodes_.size(), 0);
    depth[static_cast<size_t>(idx)] = d + 1;
    if (d + 1 > kMaxDepth) {
      fail(col, "expression nested too deeply");
      return -1;
    }
    return idx;
  }
  std::vector<int> depth;

  int32_t mk(Node n) {
    int32_t i = add(n);
    return finish_depth_check(i, n.col);
  }
  int32_t done(int32_t i, uint32_t col) { return finish_depth_check(i, col); }

  // ---- grammar: ternary < || < && < equality < relational/in < additive < mult < unary
  int32_t parse_expr() {
    if (++nesting > kMaxDepth) {
      fail(peek().col, "expression nested too deeply");
      --nesting;
      return -1;
    }
    int32_t r = parse_ternary();
    --nesting;
    return r;
  }

  int32_t parse_ternary() {
    int32_t c = parse_or();
    if (c < 0 || !is("?")) return c;
    uint32_t col = peek().col;
    ++pos;
    if (!want_bool(c, "?:", col)) return -1;
    int32_t a = parse_expr();
    if (a < 0) return -1;
    if (!is(":"))
      return fail(peek().col, "expected ':' in conditional, got " + describe(peek())), -1;
    ++pos;
    int32_t b = parse_expr();
    if (b < 0) return -1;
    Node n;
    n.op = Op::cond;
    n.col = col;
    n.a = c;
    n.b = a;
    n.c = b;
    SType ta = node(a).stype, tb = node(b).stype;
    n.stype = ta == tb ? ta : ta == SType::null ? tb : tb == SType::null ? ta : SType::any;
    return mk(n);
  }

  int32_t parse_or() {
    int32_t l = parse_and();
    while (l >= 0 && (is("||") || is("or"))) {
      uint32_t col = peek().col;
      ++pos;
      int32_t r = parse_and();
      if (r < 0) return -1;
      l = done(binary(Op::or_, col, l, r), col);
    }
    return l;
  }

  int32_t parse_and() {
    int32_t l = parse_eq();
    while (l >= 0 && (is("&&") || is("and"))) {
      uint32_t col = peek().col;
      ++pos;
      int32_t r = parse_eq();
      if (r < 0) return -1;
      l = done(binary(Op::and_, col, l, r), col);
    }
    return l;
  }

  int32_t parse_eq() {
    int32_t l = parse_rel();
    while (l >= 0 && (is("==") || is("!="))) {
      Op op = is("==") ? Op::eq : Op::ne;
      uint32_t col = peek().col;
      ++pos;
      int32_t r = parse_rel();
      if (r < 0) return -1;
      l = done(binary(op, col, l, r), col);
    }
    return l;
  }

  int32_t parse_rel() {
    int32_t l = parse_add();
    while (l >= 0) {
      Op op;
      if (is("<")) {
        op = Op::lt;
      } else if (is("<=")) {
        op = Op::le;
      } else if (is(">")) {
        op = Op::gt;
      } else if (is(">=")) {
        op = Op::ge;
      } else if (is("in")) {
        op = Op::in;
      } else if (is("not") && is("in", 1)) {
        op = Op::not_in;
      } else {
        break;
      }
      uint32_t col = peek().col;
      pos += op == Op::not_in ? 2 : 1;
      if (op == Op::in || op == Op::not_in) {
        l = parse_list(op, col, l);
        continue;
      }
      int32_t r = parse_add();
      if (r < 0) return -1;
      l = done(binary(op, col, l, r), col);
    }
    return l;
  }

  int32_t parse_list(Op op, uint32_t col, int32_t left) {
    if (!is("["))
      return fail(peek().col,
                  std::string("expected '[' after '") + op_name(op) + "', got " + describe(peek())),
             -1;
    ++pos;
    std::vector<Value> items;
    if (!is("]")) {
      while (true) {
        Value item;
        if (!parse_literal_item(item)) return -1;
        items.push_back(item);
        if (is(",")) {
          ++pos;
          continue;
        }
        if (is("]")) break;
        return fail(peek().col, "expected ',' or ']' in list, got " + describe(peek())), -1;
      }
    }
    ++pos;  // ']'
    Node n;
    n.op = op;
    n.col = col;
    n.a = left;
    n.stype = SType::boolean;
    n.off = static_cast<uint32_t>(e.lists_.size());
    n.len = static_cast<uint32_t>(items.size());
    e.lists_.insert(e.lists_.end(), items.begin(), items.end());
    return mk(n);
  }

  // An item of an `in` list: a literal, stored as a Value.
  bool parse_literal_item(Value &out) {
    bool negative = false;
    if (is("-") && peek(1).kind == Tok::number) {
      negative = true;
      ++pos;
    }
    const Token &v = peek();
    Node n;
    if (v.kind == Tok::number) {
      n.lit = Value::number(negative ? -v.num : v.num);
    } else if (v.kind == Tok::string) {
      set_string(n, v);
    } else if (!literal_keyword(v, n)) {
      return fail(v.col, "list items must be literals, got " + describe(v));
    }
    ++pos;
    out = n.lit;
    return true;
  }

  // A string literal: decoded into the pool; `len` keeps its length in the source.
  void set_string(Node &n, const Token &t) {
    const std::string &s = t.value;
    size_t start = e.pool_.size();
    e.pool_.insert(e.pool_.end(), s.begin(), s.end());
    n.stype = SType::string;
    n.lit = Value::string(std::string_view(e.pool_.data() + start, s.size()));
    n.len = static_cast<uint32_t>(t.text.size());
  }

  static bool literal_keyword(const Token &t, Node &n) {
    if (t.kind != Tok::ident) return false;
    if (t.text == "true" || t.text == "false") {
      n.lit = Value::boolean(t.text == "true");
      n.stype = SType::boolean;
      return true;
    }
    if (t.text == "null") {
      n.lit = Value{};
      n.stype = SType::null;
      return true;
    }
    return false;
  }

  int32_t parse_add() {
    int32_t l = parse_mul();
    while (l >= 0 && (is("+") || is("-"))) {
      Op op = is("+") ? Op::add : Op::sub;
      uint32_t col = peek().col;
      ++pos;
      int32_t r = parse_mul();
      if (r < 0) return -1;
      l = done(binary(op, col, l, r), col);
    }
    return l;
  }

  int32_t parse_mul() {
    int32_t l = parse_unary();
    while (l >= 0 && (is("*") || is("/") || is("%"))) {
      Op op = is("*") ? Op::mul : is("/") ? Op::div : Op::mod;
      uint32_t col = peek().col;
      ++pos;
      int32_t r = parse_unary();
      if (r < 0) return -1;
      l = done(binary(op, col, l, r), col);
    }
    return l;
  }

  int32_t parse_unary() {
    if (is("!") || (is("not") && !is("in", 1)) || is("-")) {
      bool neg = is("-");
      uint32_t col = peek().col;
      ++pos;
      if (++nesting > kMaxDepth) return fail(col, "expression nested too deeply"), -1;
      int32_t a = parse_unary();
      --nesting;
      if (a < 0) return -1;
      Node n;
      n.col = col;
      n.a = a;
      if (neg) {
        if (!fits(node(a).stype, SType::number))
          return fail(col, std::string("operator '-' cannot take ") + sname(node(a).stype)), -1;
        n.op = Op::neg;
        n.stype = SType::number;
      } else {
        if (!want_bool(a, "!", col)) return -1;
        n.op = Op::not_;
        n.stype = SType::boolean;
      }
      return mk(n);
    }
    return parse_primary();
  }

  int32_t parse_primary() {
    const Token &t = peek();
    Node n;
    n.col = t.col;
    switch (t.kind) {
      case Tok::end:
        return fail(t.col, "expected an expression, got end of input"), -1;
      case Tok::number:
        n.lit = Value::number(t.num);
        n.stype = SType::number;
        ++pos;
        return mk(n);
      case Tok::string:
        set_string(n, t);
        ++pos;
        return mk(n);
      case Tok::punct:
        if (t.text == "(") {
          ++pos;
          int32_t inner = parse_expr();
          if (inner < 0) return -1;
          if (!is(")")) return fail(peek().col, "expected ')', got " + describe(peek())), -1;
          ++pos;
          return inner;
        }
        return fail(t.col, "expected an expression, got " + describe(t)), -1;
      case Tok::ident:
        break;
    }
    if (literal_keyword(t, n)) {
      ++pos;
      return mk(n);
    }
    static constexpr std::string_view reserved[] = {"not", "and", "or", "in"};
    for (auto r : reserved)
      if (t.text == r) return fail(t.col, "expected an expression, got " + describe(t)), -1;
    if (is("(", 1)) return parse_call();
    auto slot = resolver.resolve(t.text);
    if (!slot.ok()) return fail(t.col, slot.error().message), -1;
    n.op = Op::variable;
    n.slot = slot.value();
    ++pos;
    return mk(n);
  }

  // Compiles the pattern literal `pat` of matches / regex_extract once, into n.slot.
  bool prepare_regex(const FunctionSpec &spec, const std::string &fname, const Node &pat, Node &n) {
    re2::RE2::Options opts;
    opts.set_log_errors(false);
    opts.set_max_mem(kRegexMaxMem);
    auto re = std::make_unique<re2::RE2>(piece(pat.lit.s), opts);
    if (!re->ok()) {
      // Point into the literal when it has no escapes (its text is the pattern verbatim).
      uint32_t col = pat.col;
      size_t where =
          re->error_arg().empty() ? std::string_view::npos : pat.lit.s.find(re->error_arg());
      if (pat.len == pat.lit.s.size() + 2 && where != std::string_view::npos)
        col = pat.col + 1 + static_cast<uint32_t>(where);
      return fail(col, "bad pattern for " + fname + ": " + re->error());
    }
    if (spec.prep == Prep::regex_whole && re->NumberOfCapturingGroups() > 0)
      return fail(pat.col, fname +
                               " returns the whole match: write (?:...) instead of a "
                               "capturing group");
    // Builds the DFA start states (and the reverse program of an end-anchored pattern) now
    // rather than in the first evaluation.
    re2::StringPiece empty("", 0), m;
    (void)re->Match(empty, 0, 0, re2::RE2::UNANCHORED, nullptr, 0);
    (void)re->Match(empty, 0, 0, re2::RE2::UNANCHORED, &m, 1);
    n.slot = static_cast<uint32_t>(e.regexes_.size());
    e.regexes_.push_back(std::move(re));
    return true;
  }

  int32_t parse_call() {
    const Token &name = peek();
    uint32_t col = name.col;
    std::string fname(name.text);
    size_t fn = 0;
    while (fn < std::size(kFunctions) && fname != kFunctions[fn].name) ++fn;
    if (fn == std::size(kFunctions)) return fail(col, "unknown function '" + fname + "'"), -1;
    const FunctionSpec &spec = kFunctions[fn];
    pos += 2;  // name and '('
    std::vector<int32_t> args;
    if (!is(")")) {
      while (true) {
        if (args.size() == 3) return fail(peek().col, "too many arguments to " + fname), -1;
        int32_t a = parse_expr();
        if (a < 0) return -1;
        args.push_back(a);
        if (is(",")) {
          ++pos;
          continue;
        }
        break;
      }
    }
    if (!is(")"))
      return fail(peek().col,
                  "expected ')' after arguments of " + fname + ", got " + describe(peek())),
             -1;
    ++pos;
    if (args.size() < spec.min_args || args.size() > spec.max_args) {
      std::string want = std::to_string(spec.min_args);
      if (spec.max_args != spec.min_args) want += " or " + std::to_string(spec.max_args);
      return fail(col, fname + " expects " + want + " argument" + (spec.max_args == 1 ? "" : "s") +
                           ", got " + std::to_string(args.size())),
             -1;
    }
    for (size_t i = 0; i < args.size(); ++i) {
      SType have = node(args[i]).stype;
      if (!fits(have, spec.params[i]))
        return fail(node(args[i]).col, "argument " + std::to_string(i + 1) + " of " + fname +
                                           " must be a " + sname(spec.params[i]) + ", got " +
                                           sname(have)),
               -1;
    }
    Node n;
    n.op = Op::call;
    n.col = col;
    n.fn = static_cast<uint16_t>(fn);
    n.stype = spec.result;
    for (size_t i = 0; i < args.size(); ++i) {
      const Node &an = node(args[i]);
      if ((spec.literal_args & (1u << i)) && (an.op != Op::literal || an.lit.type != Type::string))
        return fail(an.col, "argument " + std::to_string(i + 1) + " of " + fname +
                                " must be a string literal" +
                                (spec.prep == Prep::schedule ? " (a schedule name)"
                                                             : " (patterns are compiled once)")),
               -1;
    }
    if (spec.prep == Prep::regex || spec.prep == Prep::regex_whole) {
      if (!prepare_regex(spec, fname, node(args[1]), n)) return -1;
    } else if (spec.prep == Prep::schedule && options.schedules) {
      const Node &an = node(args[0]);
      if (!options.schedules->find(an.lit.s))
        return fail(an.col, "unknown schedule '" + std::string(an.lit.s) + "'"), -1;
    }
    n.off = static_cast<uint32_t>(e.extra_.size());
    n.len = static_cast<uint32_t>(args.size());
    e.extra_.insert(e.extra_.end(), args.begin(), args.end());
    return mk(n);
  }
};

Result<Expression> compile(std::string_view source, const VariableResolver &resolver,
                           const CompileOptions &options) {
  Expression e;
  e.source_ = std::string(source);
  Compiler c(e.source_, resolver, options, e);
  if (!c.lex()) return c.err;
  int32_t root = c.parse_expr();
  if (root < 0) return c.err;
  if (c.peek().kind != Tok::end)
    return Error{Errc::parse, at(c.peek().col) + "unexpected " + Compiler::describe(c.peek()) +
                                  " after the expression"};
  e.root_ = root;
  return e;
}

// ---------------------------------------------------------------- rule-set index key

namespace {

constexpr uint8_t type_bit(Type t) {
  return static_cast<uint8_t>(1u << static_cast<unsigned>(t));
}

// Proves, for one candidate variable, that a rule is false or null without error whenever
// that variable holds none of a set of literals and the guard's type requirements hold.
// Every rule here mirrors what Evaluator does; see docs/rules.md, "Rule-set index".
struct KeyProver {
  const std::vector<Node> &nodes;
  const std::vector<Value> &lists;
  const std::vector<int32_t> &extra;
  uint32_t slot;
  std::vector<Value> values;
  std::vector<detail::IndexKey::Guard> guard;
  std::vector<uint32_t> scratch_slots;  // scratch written: their lengths...
  uint64_t scratch_bytes = 0;           // ...plus this

  const Node &nd(int32_t i) const { return nodes[static_cast<size_t>(i)]; }

  struct Saved {
    size_t values;
    std::vector<detail::IndexKey::Guard> guard;
    size_t scratch_slots;
    uint64_t scratch_bytes;
  };
  Saved save() const { return {values.size(), guard, scratch_slots.size(), scratch_bytes}; }
  void restore(Saved s) {
    values.resize(s.values);
    guard = std::move(s.guard);
    scratch_slots.resize(s.scratch_slots);
    scratch_bytes = s.scratch_bytes;
  }

  // An upper bound of the length of the string node i yields, as slots whose lengths count
  // and a constant; false when none is known. Only for nodes already proven safe and
  // string-typed (or null).
  bool length_bound(int32_t i, std::vector<uint32_t> *slots, uint64_t *bytes) {
    const Node &n = nd(i);
    switch (n.op) {
      case Op::literal:
        *bytes += n.lit.s.size();
        return true;
      case Op::variable:
        slots->push_back(n.slot);
        return true;
      case Op::add:
        return length_bound(n.a, slots, bytes) && length_bound(n.b, slots, bytes);
      case Op::call: {
        FnImpl f = kFunctions[n.fn].impl;
        if (f == fn_lower || f == fn_upper || f == fn_substr || f == fn_regex_extract)
          return length_bound(extra[n.off], slots, bytes);
        // string(x) is x itself for a string, else at most kMaxNumberText bytes.
        if (f == fn_string && length_bound(extra[n.off], slots, bytes))
          return *bytes += kMaxNumberText, true;
        return false;
      }
      default:
        return false;
    }
  }

  // Node i writes a string as long as its value to the scratch buffer: account for it.
  bool writes_scratch(int32_t i) {
    std::vector<uint32_t> slots;
    uint64_t bytes = 0;
    if (!length_bound(i, &slots, &bytes)) return false;
    scratch_slots.insert(scratch_slots.end(), slots.begin(), slots.end());
    scratch_bytes += bytes;
    return true;
  }

  // The longest text string() writes for a number (std::to_chars, shortest form).
  static constexpr uint64_t kMaxNumberText = 32;

  void require(uint32_t s, uint8_t types) {
    for (auto &g : guard)
      if (g.slot == s) {
        g.types &= types;
        return;
      }
    guard.push_back({s, types});
  }

  // The node yields `want` (number or string) or null: statically, or as a variable whose
  // type the guard then requires.
  bool typed(int32_t i, SType want) {
    const Node &n = nd(i);
    if (want == SType::any || n.stype == want || n.stype == SType::null) return true;
    if (n.op != Op::variable) return false;
    require(n.slot,
            type_bit(Type::null) | type_bit(want == SType::number ? Type::number : Type::string));
    return true;
  }

  // Evaluating the node cannot fail (given the guard).
  bool safe(int32_t i) {
    const Node &n = nd(i);
    switch (n.op) {
      case Op::literal:
      case Op::variable:
        return true;
      case Op::eq:
      case Op::ne:
        return safe(n.a) && safe(n.b);
      case Op::in:
      case Op::not_in:
        return safe(n.a);
      case Op::lt:
      case Op::le:
      case Op::gt:
      case Op::ge: {
        if (!safe(n.a) || !safe(n.b)) return false;
        SType x = nd(n.a).stype, y = nd(n.b).stype;
        if (x == SType::null || y == SType::null) return true;  // always false
        SType t = x != SType::any ? x : y != SType::any ? y : SType::number;
        if (t != SType::number && t != SType::string) return false;
        return typed(n.a, t) && typed(n.b, t);
      }
      case Op::and_:
      case Op::or_:
        return truth_safe(n.a) && truth_safe(n.b);
      case Op::not_:
        return truth_safe(n.a);
      case Op::cond:
        return truth_safe(n.a) && safe(n.b) && safe(n.c);
      case Op::neg:
        return safe(n.a) && typed(n.a, SType::number);
      case Op::add:
        if (!safe(n.a) || !safe(n.b)) return false;
        if (n.stype == SType::string) {
          // Concatenation: both strings (or null), written to the scratch buffer.
          return typed(n.a, SType::string) && typed(n.b, SType::string) && writes_scratch(i);
        }
        return typed(n.a, SType::number) && typed(n.b, SType::number);
      case Op::sub:
      case Op::mul:
        return safe(n.a) && safe(n.b) && typed(n.a, SType::number) && typed(n.b, SType::number);
      case Op::div:
      case Op::mod: {
        const Node &d = nd(n.b);
        bool nonzero = d.op == Op::literal &&
                       (d.lit.type == Type::null || (d.lit.type == Type::number && d.lit.n != 0));
        return nonzero && safe(n.a) && typed(n.a, SType::number);
      }
      case Op::call: {
        const FunctionSpec &spec = kFunctions[n.fn];
        bool scratch = spec.impl == fn_lower || spec.impl == fn_upper;
        if (spec.impl == fn_string) {
          // Writes at most kMaxNumberText bytes (a number); any type of argument.
          if (!safe(extra[n.off])) return false;
          scratch_bytes += kMaxNumberText;
          return true;
        }
        if (!spec.pure && !scratch) return false;
        for (uint32_t k = 0; k < n.len; ++k) {
          int32_t arg = extra[n.off + k];
          if (!safe(arg) || !typed(arg, spec.params[k])) return false;
        }
        return !scratch || writes_scratch(i);
      }
    }
    return false;
  }

  // Safe, and its value is a bool or null (so a boolean context cannot fail either).
  bool truth_safe(int32_t i) {
    if (!safe(i)) return false;
    const Node &n = nd(i);
    if (n.stype == SType::boolean || n.stype == SType::null) return true;
    if (n.op != Op::variable) return false;
    require(n.slot, type_bit(Type::null) | type_bit(Type::boolean));
    return true;
  }

  void add(const Value &v) {
    for (const auto &have : values)
      if (equal(have, v)) return;
    values.push_back(v);
  }

  // Whenever the variable holds none of `values`, the node is false or null without error.
  bool keyed(int32_t i) {
    const Node &n = nd(i);
    switch (n.op) {
      case Op::literal:
        return n.lit.type == Type::null || (n.lit.type == Type::boolean && !n.lit.b);
      case Op::eq: {
        const Node &x = nd(n.a), &y = nd(n.b);
        const Node *lit = x.op == Op::variable && x.slot == slot   ? &y
                          : y.op == Op::variable && y.slot == slot ? &x
                                                                   : nullptr;
        if (!lit || lit->op != Op::literal) return false;
        add(lit->lit);
        return true;
      }
      case Op::in: {
        const Node &x = nd(n.a);
        if (x.op != Op::variable || x.slot != slot) return false;
        for (uint32_t k = 0; k < n.len; ++k) add(lists[n.off + k]);
        return true;
      }
      case Op::and_: {
        // a false: short-circuit. Else a is evaluated (must be safe) and b decides.
        Saved saved = save();
        if (keyed(n.a)) return true;
        restore(std::move(saved));
        return truth_safe(n.a) && keyed(n.b);
      }
      case Op::or_:
        return keyed(n.a) && keyed(n.b);
      case Op::cond:
        return truth_safe(n.a) && keyed(n.b) && keyed(n.c);
      default:
        return false;
    }
  }
};

// Variables compared with literals by `==` or `in` anywhere in the tree, in order.
void key_candidates(const std::vector<Node> &nodes, std::vector<uint32_t> *out) {
  for (const Node &n : nodes) {
    uint32_t s;
    if (n.op == Op::eq) {
      const Node &x = nodes[static_cast<size_t>(n.a)], &y = nodes[static_cast<size_t>(n.b)];
      if (x.op == Op::variable && y.op == Op::literal) {
        s = x.slot;
      } else if (y.op == Op::variable && x.op == Op::literal) {
        s = y.slot;
      } else {
        continue;
      }
    } else if (n.op == Op::in && nodes[static_cast<size_t>(n.a)].op == Op::variable) {
      s = nodes[static_cast<size_t>(n.a)].slot;
    } else {
      continue;
    }
    if (std::find(out->begin(), out->end(), s) == out->end()) out->push_back(s);
  }
}

}  // namespace

bool detail::IndexKey::of(const Expression &expr, IndexKey *out) {
  if (expr.root_ < 0) return false;
  std::vector<uint32_t> candidates;
  key_candidates(expr.nodes_, &candidates);
  // Of the variables that key the rule, the most selective guess: the fewest values (then
  // the smallest guard, then the first in the text).
  bool found = false;
  for (uint32_t slot : candidates) {
    KeyProver p{expr.nodes_, expr.lists_, expr.extra_, slot, {}, {}};
    if (!p.keyed(expr.root_)) continue;
    if (found && (p.values.size() > out->values.size() ||
                  (p.values.size() == out->values.size() && p.guard.size() >= out->guard.size())))
      continue;
    out->slot = slot;
    out->values = std::move(p.values);
    out->guard = std::move(p.guard);
    out->scratch_slots = std::move(p.scratch_slots);
    out->scratch_bytes = p.scratch_bytes;
    found = true;
  }
  return found;
}

bool detail::guard_holds(const IndexKey::Guard *guard, size_t guard_count,
                         const uint32_t *scratch_slots, size_t scratch_count,
                         uint64_t scratch_bytes, const Bindings &bindings, const EvalContext &ctx) {
  for (size_t k = 0; k < guard_count; ++k)
    if (!(type_bit(bindings.get(guard[k].slot).type) & guard[k].types)) return false;
  if (scratch_count == 0 && scratch_bytes == 0) return true;
  uint64_t need = scratch_bytes;
  for (size_t k = 0; k < scratch_count; ++k) {
    Value v = bindings.get(scratch_slots[k]);
    if (v.type == Type::string) need += v.s.size();
  }
  return need <= ctx.capacity();
}

}  // namespace ivr::rules
