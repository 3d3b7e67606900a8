// The rule expression language: compiled once, evaluated without heap allocation.
// Grammar, types and null rules: docs/rules.md.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace re2 {
class RE2;
}

namespace ivr::rules {

class ScheduleRegistry;

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

// What an evaluation may use besides the bindings: caller-owned scratch memory for strings
// made during evaluation, the evaluation time and the schedules.
//
// Each evaluation starts from an empty scratch buffer, so a string result is valid until the
// next evaluation with the same context. The time and the schedule registry are kept across
// evaluations until changed (reset() clears only the scratch).
class EvalContext {
 public:
  using time_point = std::chrono::system_clock::time_point;

  EvalContext(char *buffer, size_t capacity) : buf_(buffer), cap_(capacity) {}

  // The instant now() returns and in_schedule() tests: the call's clock, never read from the
  // wall clock by the evaluator. Without it, now() and in_schedule() are evaluation errors.
  void set_time(time_point t) {
    time_ = t;
    has_time_ = true;
  }
  void clear_time() { has_time_ = false; }
  bool has_time() const { return has_time_; }
  time_point time() const { return time_; }

  // The schedules in_schedule("name") looks names up in; not owned, must outlive the
  // evaluations. Without it (nullptr), in_schedule() is an evaluation error.
  void set_schedules(const ScheduleRegistry *schedules) { schedules_ = schedules; }
  const ScheduleRegistry *schedules() const { return schedules_; }

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
  time_point time_{};
  bool has_time_ = false;
  const ScheduleRegistry *schedules_ = nullptr;
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

// Options for compile().
struct CompileOptions {
  // When set, in_schedule("name") must name a schedule of this registry: an unknown name is
  // a compile error with its column. When null, names are looked up only at evaluation
  // (in the EvalContext's registry), where an unknown one is an evaluation error.
  const ScheduleRegistry *schedules = nullptr;
};

class Expression;

namespace detail {
struct Node;
struct IndexKey;
int test_condition(const Expression &, const Bindings &, EvalContext &, Error *, std::string_view);
}  // namespace detail

// A compiled expression. Move-only; evaluation is const and may run on several threads at
// once (with one EvalContext per thread).
class Expression {
 public:
  Expression();
  ~Expression();
  Expression(Expression &&) noexcept;
  Expression &operator=(Expression &&) noexcept;
  const std::string &source() const { return source_; }
  size_t node_count() const;

 private:
  friend Result<Expression> compile(std::string_view, const VariableResolver &,
                                    const CompileOptions &);
  friend Result<Value> evaluate(const Expression &, const Bindings &, EvalContext &);
  friend int detail::test_condition(const Expression &, const Bindings &, EvalContext &, Error *,
                                    std::string_view);
  friend struct Compiler;
  friend struct Evaluator;
  friend struct detail::IndexKey;
  std::string source_;
  std::vector<char> pool_;           // decoded string literals; literal Values view into it
  std::vector<detail::Node> nodes_;  // the tree, children before parents
  std::vector<int32_t> extra_;       // function arguments
  std::vector<Value> lists_;         // `in` list items
  std::vector<std::unique_ptr<re2::RE2>> regexes_;  // patterns of matches / regex_extract
  int32_t root_ = -1;
};

Result<Expression> compile(std::string_view source, const VariableResolver &resolver,
                           const CompileOptions &options = {});

// Never allocates on success (see docs/rules.md for RE2's warm-up). Errors (wrong types,
// division by zero, scratch full, no time or schedules for now() / in_schedule()) name the
// operator or function and its 1-based column.
Result<Value> evaluate(const Expression &expr, const Bindings &bindings, EvalContext &ctx);

// Evaluates a condition: true only for `true`; null counts as false; a value of any other
// type is an error ("condition must yield a bool, got number"). Same guarantees as evaluate().
Result<bool> evaluate_condition(const Expression &expr, const Bindings &bindings, EvalContext &ctx);

namespace detail {

// The rule-set path: evaluates `expr` as a condition without building a Result. Returns 1
// (true), 0 (false or null) or -1 (error, stored in *err; a non-bool result is reported as
// "<what> must yield a bool, got T").
int test_condition(const Expression &expr, const Bindings &bindings, EvalContext &ctx, Error *err,
                   std::string_view what);

// A necessary condition for a rule, used by RuleSet's index: whenever the variable in `slot`
// holds none of `values`, every guard slot holds a type in its mask, and the scratch buffer
// holds at least scratch_bytes plus the lengths of the strings in scratch_slots, the
// expression evaluates to false or null without error. Values view into its literals.
struct IndexKey {
  struct Guard {
    uint32_t slot;
    uint8_t types;  // bit (1 << Type) per allowed type
  };
  uint32_t slot = 0;
  std::vector<Value> values;            // distinct
  std::vector<Guard> guard;             // one entry per slot
  std::vector<uint32_t> scratch_slots;  // a slot may appear more than once
  uint64_t scratch_bytes = 0;
  // The key of `expr`, if its shape has one (see docs/rules.md, "Rule-set index").
  static bool of(const Expression &expr, IndexKey *out);
};

// Whether `bindings` and `ctx` meet the guard and scratch requirement of a key (the parts
// other than the key's values). Never allocates.
bool guard_holds(const IndexKey::Guard *guard, size_t guard_count, const uint32_t *scratch_slots,
                 size_t scratch_count, uint64_t scratch_bytes, const Bindings &bindings,
                 const EvalContext &ctx);

}  // namespace detail

// Maximum depth of the expression tree (bounds evaluation's stack use).
inline constexpr int kMaxDepth = 200;

}  // namespace ivr::rules
