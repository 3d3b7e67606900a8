// The rule expression language: compiled once, evaluated without heap allocation.
// Grammar, types and null rules: docs/rules.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace ivr::rules {

enum class Type : uint8_t { null, boolean, number, string };

const char *type_name(Type t);

// A value: trivially copyable; strings are views (into the compiled expression, the
// bindings, or the evaluation context's scratch buffer).
struct Value {
  Type type = Type::null;
  bool b = false;
  double n = 0;
  std::string_view s;

  static Value null_value() { return {}; }
  static Value boolean(bool v) { return {Type::boolean, v, 0, {}}; }
  static Value number(double v) { return {Type::number, false, v, {}}; }
  static Value string(std::string_view v) { return {Type::string, false, 0, v}; }
  bool is_null() const { return type == Type::null; }
};

// Maps a dotted variable name to a slot at compile time.
class VariableResolver {
 public:
  virtual ~VariableResolver() = default;
  // Returns the slot, or an Error whose message is the reason ("unknown variable 'x.y'").
  virtual Result<uint32_t> resolve(std::string_view dotted_name) const = 0;
};

// A resolver that accepts any name under a fixed set of roots ("call", "vars") and
// assigns slots in order of first use.
class VariableTable : public VariableResolver {
 public:
  explicit VariableTable(std::vector<std::string> roots) : roots_(std::move(roots)) {}
  Result<uint32_t> resolve(std::string_view dotted_name) const override;
  // Slot of a name, or -1 when no expression used it.
  int64_t slot_of(std::string_view dotted_name) const;
  size_t size() const { return slots_.size(); }

 private:
  std::vector<std::string> roots_;
  mutable std::map<std::string, uint32_t, std::less<>> slots_;
};

// A value per slot; slots beyond count (or a null values pointer) read as null.
struct Bindings {
  const Value *values = nullptr;
  size_t count = 0;
  Value get(uint32_t slot) const { return slot < count ? values[slot] : Value{}; }
};

// Caller-owned scratch memory for strings made during evaluation. Each evaluate() starts
// from an empty buffer, so a string result is valid until the next evaluation with the
// same context.
class EvalContext {
 public:
  EvalContext(char *buffer, size_t capacity) : buf_(buffer), cap_(capacity) {}
  size_t capacity() const { return cap_; }
  size_t used() const { return used_; }
  void reset() { used_ = 0; }
  // nullptr when fewer than n bytes are left.
  char *allocate(size_t n) {
    if (n > cap_ - used_) return nullptr;
    char *p = buf_ + used_;
    used_ += n;
    return p;
  }

 private:
  char *buf_;
  size_t cap_;
  size_t used_ = 0;
};

template <size_t N>
class FixedEvalContext : public EvalContext {
 public:
  FixedEvalContext() : EvalContext(storage_, N) {}
  FixedEvalContext(const FixedEvalContext &) = delete;
  FixedEvalContext &operator=(const FixedEvalContext &) = delete;

 private:
  char storage_[N];
};

namespace detail {
struct Node;
}

class Expression {
 public:
  Expression();
  ~Expression();
  Expression(Expression &&) noexcept;
  Expression &operator=(Expression &&) noexcept;
  const std::string &source() const { return source_; }
  size_t node_count() const;

 private:
  friend Result<Expression> compile(std::string_view, const VariableResolver &);
  friend Result<Value> evaluate(const Expression &, const Bindings &, EvalContext &);
  friend struct Compiler;
  friend struct Evaluator;
  std::string source_;
  std::string pool_;                 // decoded string literals
  std::vector<detail::Node> nodes_;  // the tree, children before parents
  std::vector<int32_t> extra_;       // function arguments and `in` list items
  int32_t root_ = -1;
};

Result<Expression> compile(std::string_view source, const VariableResolver &resolver);

// Never allocates on success. Errors (wrong types, division by zero, scratch full) name the
// operator or function and its 1-based column.
Result<Value> evaluate(const Expression &expr, const Bindings &bindings, EvalContext &ctx);

// Maximum depth of the expression tree (bounds evaluation's stack use).
inline constexpr int kMaxDepth = 200;

}  // namespace ivr::rules
