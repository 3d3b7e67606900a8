#include "rules/expr.h"

#include <charconv>
#include <cmath>
#include <cstring>

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
  Type lit_type = Type::null;  // literal
  bool lit_bool = false;
  uint16_t fn = 0;   // call
  uint32_t col = 1;  // 1-based column of the operator / token
  int32_t a = -1, b = -1, c = -1;
  uint32_t slot = 0;  // variable
  double num = 0;     // literal number
  uint32_t off = 0;   // literal string in pool_; args/items in extra_
  uint32_t len = 0;
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

// ---------------------------------------------------------------- evaluation helpers

enum class Fail : uint8_t { none, type, div_zero, scratch, bool_context };

struct Evaluator {
  const Expression &e;
  const Bindings &bind;
  EvalContext &ctx;
  Fail fail = Fail::none;
  uint32_t fail_col = 0;
  const char *fail_what = "";
  Type t1 = Type::null, t2 = Type::null;
  int ntypes = 0;

  bool error(Fail f, const Node &n, const char *what) { return error(f, n, what, 0, {}, {}); }
  bool error(Fail f, const Node &n, const char *what, Type a) {
    return error(f, n, what, 1, a, {});
  }
  bool error(Fail f, const Node &n, const char *what, Type a, Type b) {
    return error(f, n, what, 2, a, b);
  }
  bool error(Fail f, const Node &n, const char *what, int count, Type a, Type b) {
    ntypes = count;
    fail = f;
    fail_col = n.col;
    fail_what = what;
    t1 = a;
    t2 = b;
    return false;
  }
  bool eval(int32_t idx, Value &out);
  bool truth(int32_t idx, const Node &op_node, const char *op, bool &out);
};

namespace {

using FnImpl = bool (*)(Evaluator &, const Node &, const Value *, size_t, Value &);

struct FunctionSpec {
  std::string_view name;
  uint8_t min_args, max_args;
  SType params[3];  // any, string or number; null always passes
  SType result;
  FnImpl impl;
};

bool fn_case(Evaluator &ev, const Node &n, const Value *a, Value &out, bool upper,
             const char *name) {
  if (a[0].is_null()) return out = Value{}, true;
  if (a[0].type != Type::string) return ev.error(Fail::type, n, name, a[0].type);
  char *p = ev.ctx.allocate(a[0].s.size());
  if (!p && !a[0].s.empty()) return ev.error(Fail::scratch, n, name);
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
  return fn_case(ev, n, a, out, false, "lower");
}
bool fn_upper(Evaluator &ev, const Node &n, const Value *a, size_t, Value &out) {
  return fn_case(ev, n, a, out, true, "upper");
}

// Two-string predicates: null in either → null.
template <int Kind>
bool fn_pred(Evaluator &ev, const Node &n, const Value *a, size_t, Value &out) {
  static constexpr const char *names[] = {"starts_with", "ends_with", "contains"};
  if (a[0].is_null() || a[1].is_null()) return out = Value{}, true;
  if (a[0].type != Type::string || a[1].type != Type::string)
    return ev.error(Fail::type, n, names[Kind], a[0].type, a[1].type);
  std::string_view s = a[0].s, t = a[1].s;
  bool r = Kind == 0 ? s.starts_with(t) : Kind == 1 ? s.ends_with(t) : s.find(t) != s.npos;
  out = Value::boolean(r);
  return true;
}

bool fn_len(Evaluator &ev, const Node &n, const Value *a, size_t, Value &out) {
  if (a[0].is_null()) return out = Value{}, true;
  if (a[0].type != Type::string) return ev.error(Fail::type, n, "len", a[0].type);
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
    return ev.error(Fail::type, n, "substr", a[0].type, a[1].type);
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
  return ev.error(Fail::type, n, "number", a[0].type);
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
      if (ec != std::errc()) return ev.error(Fail::scratch, n, "string");
      auto len = static_cast<size_t>(ptr - tmp);
      char *p = ev.ctx.allocate(len);
      if (!p) return ev.error(Fail::scratch, n, "string");
      std::memcpy(p, tmp, len);
      out = Value::string(std::string_view(p, len));
      return true;
    }
  }
  return ev.error(Fail::type, n, "string", a[0].type);
}

// The function table. New functions (regex matching, now(), in_schedule()) are rows here;
// a row may later gain a compile-time hook to prepare constant arguments.
constexpr SType S = SType::string, N = SType::number, A = SType::any;
const FunctionSpec kFunctions[] = {
    {"lower", 1, 1, {S, A, A}, S, fn_lower},
    {"upper", 1, 1, {S, A, A}, S, fn_upper},
    {"starts_with", 2, 2, {S, S, A}, SType::boolean, fn_pred<0>},
    {"ends_with", 2, 2, {S, S, A}, SType::boolean, fn_pred<1>},
    {"contains", 2, 2, {S, S, A}, SType::boolean, fn_pred<2>},
    {"len", 1, 1, {S, A, A}, N, fn_len},
    {"substr", 2, 3, {S, N, N}, S, fn_substr},
    {"number", 1, 1, {A, A, A}, N, fn_number},
    {"string", 1, 1, {A, A, A}, S, fn_string},
};

bool equal(const Value &x, const Value &y) {
  if (x.type != y.type) return false;
  switch (x.type) {
    case Type::null:
      return true;
    case Type::boolean:
      return x.b == y.b;
    case Type::number:
      return x.n == y.n;
    case Type::string:
      return x.s == y.s;
  }
  return false;
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

}  // namespace

bool Evaluator::truth(int32_t idx, const Node &op_node, const char *op, bool &out) {
  Value v;
  if (!eval(idx, v)) return false;
  if (v.type == Type::null) return out = false, true;
  if (v.type == Type::boolean) return out = v.b, true;
  return error(Fail::bool_context, op_node, op, v.type);
}

bool Evaluator::eval(int32_t idx, Value &out) {
  const Node &n = e.nodes_[static_cast<size_t>(idx)];
  switch (n.op) {
    case Op::literal:
      switch (n.lit_type) {
        case Type::null:
          out = Value{};
          break;
        case Type::boolean:
          out = Value::boolean(n.lit_bool);
          break;
        case Type::number:
          out = Value::number(n.num);
          break;
        case Type::string:
          out = Value::string(std::string_view(e.pool_.data() + n.off, n.len));
          break;
      }
      return true;
    case Op::variable:
      out = bind.get(n.slot);
      return true;
    case Op::neg: {
      Value v;
      if (!eval(n.a, v)) return false;
      if (v.is_null()) return out = Value{}, true;
      if (v.type != Type::number) return error(Fail::type, n, "-", v.type);
      out = Value::number(-v.n);
      return true;
    }
    case Op::not_: {
      bool t;
      if (!truth(n.a, n, "!", t)) return false;
      out = Value::boolean(!t);
      return true;
    }
    case Op::and_:
    case Op::or_: {
      bool t;
      if (!truth(n.a, n, op_name(n.op), t)) return false;
      if (n.op == Op::and_ ? !t : t) return out = Value::boolean(t), true;
      if (!truth(n.b, n, op_name(n.op), t)) return false;
      out = Value::boolean(t);
      return true;
    }
    case Op::cond: {
      bool t;
      if (!truth(n.a, n, "?:", t)) return false;
      return eval(t ? n.b : n.c, out);
    }
    case Op::in:
    case Op::not_in: {
      Value v;
      if (!eval(n.a, v)) return false;
      bool found = false;
      for (uint32_t i = 0; i < n.len && !found; ++i) {
        Value item;
        if (!eval(e.extra_[n.off + i], item)) return false;
        found = equal(v, item);
      }
      out = Value::boolean(n.op == Op::in ? found : !found);
      return true;
    }
    case Op::call: {
      Value args[3];
      for (uint32_t i = 0; i < n.len; ++i)
        if (!eval(e.extra_[n.off + i], args[i])) return false;
      return kFunctions[n.fn].impl(*this, n, args, n.len, out);
    }
    default:
      break;
  }
  // Binary operators over two evaluated operands.
  Value x, y;
  if (!eval(n.a, x) || !eval(n.b, y)) return false;
  const char *name = op_name(n.op);
  switch (n.op) {
    case Op::eq:
      out = Value::boolean(equal(x, y));
      return true;
    case Op::ne:
      out = Value::boolean(!equal(x, y));
      return true;
    case Op::lt:
    case Op::le:
    case Op::gt:
    case Op::ge: {
      if (x.is_null() || y.is_null()) return out = Value::boolean(false), true;
      int c;
      if (x.type == Type::number && y.type == Type::number) {
        if (std::isnan(x.n) || std::isnan(y.n)) return out = Value::boolean(false), true;
        c = x.n < y.n ? -1 : x.n > y.n ? 1 : 0;
      } else if (x.type == Type::string && y.type == Type::string) {
        int r = x.s.compare(y.s);
        c = r < 0 ? -1 : r > 0 ? 1 : 0;
      } else {
        return error(Fail::type, n, name, x.type, y.type);
      }
      bool r = n.op == Op::lt ? c < 0 : n.op == Op::le ? c <= 0 : n.op == Op::gt ? c > 0 : c >= 0;
      out = Value::boolean(r);
      return true;
    }
    case Op::add:
      if (x.is_null() || y.is_null()) return out = Value{}, true;
      if (x.type == Type::number && y.type == Type::number) {
        out = Value::number(x.n + y.n);
        return true;
      }
      if (x.type == Type::string && y.type == Type::string) {
        size_t len = x.s.size() + y.s.size();
        char *p = ctx.allocate(len);
        if (!p && len) return error(Fail::scratch, n, "+");
        if (!x.s.empty()) std::memcpy(p, x.s.data(), x.s.size());
        if (!y.s.empty()) std::memcpy(p + x.s.size(), y.s.data(), y.s.size());
        out = Value::string(std::string_view(p, len));
        return true;
      }
      return error(Fail::type, n, name, x.type, y.type);
    case Op::sub:
    case Op::mul:
    case Op::div:
    case Op::mod:
      if (x.is_null() || y.is_null()) return out = Value{}, true;
      if (x.type != Type::number || y.type != Type::number)
        return error(Fail::type, n, name, x.type, y.type);
      if ((n.op == Op::div || n.op == Op::mod) && y.n == 0) return error(Fail::div_zero, n, name);
      out = Value::number(n.op == Op::sub   ? x.n - y.n
                          : n.op == Op::mul ? x.n * y.n
                          : n.op == Op::div ? x.n / y.n
                                            : std::fmod(x.n, y.n));
      return true;
    default:
      break;
  }
  return error(Fail::type, n, "?");
}

Result<Value> evaluate(const Expression &expr, const Bindings &bindings, EvalContext &ctx) {
  ctx.reset();
  if (expr.root_ < 0) return Error{Errc::invalid_argument, "expression was not compiled"};
  Evaluator ev{expr, bindings, ctx};
  Value out;
  if (ev.eval(expr.root_, out)) return out;
  // Error path: allocating the message is allowed here.
  std::string msg = "column " + std::to_string(ev.fail_col) + ": ";
  std::string what = ev.fail_what;
  switch (ev.fail) {
    case Fail::div_zero:
      return Error{Errc::invalid_argument, msg + "division by zero in '" + what + "'"};
    case Fail::scratch:
      return Error{Errc::no_memory, msg + "scratch buffer full (" + std::to_string(ctx.capacity()) +
                                        " bytes) in '" + what + "'"};
    case Fail::bool_context:
      return Error{Errc::invalid_argument,
                   msg + "operator '" + what + "' expects a bool, got " + type_name(ev.t1)};
    default:
      break;
  }
  bool is_fn = !what.empty() && what[0] >= 'a' && what[0] <= 'z';
  msg += (is_fn ? "function '" : "operator '") + what + "' cannot take " + type_name(ev.t1);
  if (ev.ntypes == 2) msg += std::string(" and ") + type_name(ev.t2);
  return Error{Errc::invalid_argument, msg};
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

std::string at(uint32_t col) {
  return "column " + std::to_string(col) + ": ";
}

}  // namespace

struct Compiler {
  Compiler(std::string_view s, const VariableResolver &r, Expression &ex)
      : src(s), resolver(r), e(ex) {}
  std::string_view src;
  const VariableResolver &resolver;
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
    if (n.op == Op::call || n.op == Op::in || n.op == Op::not_in)
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
    std::vector<int32_t> items;
    if (!is("]")) {
      while (true) {
        int32_t it = parse_literal_item();
        if (it < 0) return -1;
        items.push_back(it);
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
    n.off = static_cast<uint32_t>(e.extra_.size());
    n.len = static_cast<uint32_t>(items.size());
    e.extra_.insert(e.extra_.end(), items.begin(), items.end());
    return mk(n);
  }

  int32_t parse_literal_item() {
    const Token &t = peek();
    bool negative = false;
    if (is("-") && peek(1).kind == Tok::number) {
      negative = true;
      ++pos;
    }
    const Token &v = peek();
    Node n;
    n.col = t.col;
    if (v.kind == Tok::number) {
      n.lit_type = Type::number;
      n.stype = SType::number;
      n.num = negative ? -v.num : v.num;
    } else if (v.kind == Tok::string) {
      set_string(n, v.value);
    } else if (!literal_keyword(v, n)) {
      return fail(v.col, "list items must be literals, got " + describe(v)), -1;
    }
    ++pos;
    return mk(n);
  }

  void set_string(Node &n, const std::string &s) {
    n.lit_type = Type::string;
    n.stype = SType::string;
    n.off = static_cast<uint32_t>(e.pool_.size());
    n.len = static_cast<uint32_t>(s.size());
    e.pool_ += s;
  }

  static bool literal_keyword(const Token &t, Node &n) {
    if (t.kind != Tok::ident) return false;
    if (t.text == "true" || t.text == "false") {
      n.lit_type = Type::boolean;
      n.stype = SType::boolean;
      n.lit_bool = t.text == "true";
      return true;
    }
    if (t.text == "null") {
      n.lit_type = Type::null;
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
        n.lit_type = Type::number;
        n.stype = SType::number;
        n.num = t.num;
        ++pos;
        return mk(n);
      case Tok::string:
        set_string(n, t.value);
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

  int32_t parse_call() {
    const Token &name = peek();
    uint32_t col = name.col;
    std::string fname(name.text);
    size_t fn = 0;
    while (fn < std::size(kFunctions) && kFunctions[fn].name != fname) ++fn;
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
    n.off = static_cast<uint32_t>(e.extra_.size());
    n.len = static_cast<uint32_t>(args.size());
    e.extra_.insert(e.extra_.end(), args.begin(), args.end());
    return mk(n);
  }
};

Result<Expression> compile(std::string_view source, const VariableResolver &resolver) {
  Expression e;
  e.source_ = std::string(source);
  Compiler c(e.source_, resolver, e);
  if (!c.lex()) return c.err;
  int32_t root = c.parse_expr();
  if (root < 0) return c.err;
  if (c.peek().kind != Tok::end)
    return Error{Errc::parse, at(c.peek().col) + "unexpected " + Compiler::describe(c.peek()) +
                                  " after the expression"};
  e.root_ = root;
  return e;
}

}  // namespace ivr::rules
