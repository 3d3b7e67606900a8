// Ordered rule sets: `when` expression -> `then` result. Evaluation allocates nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "rules/expr.h"

namespace ivr::rules {

class RuleSet {
 public:
  struct Rule {
    Expression when;
    uint32_t then = 0;  // index into results()
  };

  // Compiles `when` (with `options`, e.g. the schedules in_schedule() may name) and appends
  // the rule; `then` names the result (equal names share an index). A compile error is
  // prefixed with "rule N: " (1-based).
  Status add(std::string_view when, std::string_view then, const VariableResolver &resolver,
             const CompileOptions &options = {});

  size_t size() const { return rules_.size(); }
  const Rule &rule(size_t i) const { return rules_[i]; }
  const std::vector<std::string> &results() const { return results_; }
  const std::string &result_name(uint32_t index) const { return results_[index]; }

  // Index of the first rule whose `when` is true, or -1 when none is. A rule whose
  // expression fails to evaluate stops the decision with that error ("rule N: ...").
  // The time and schedules for now() / in_schedule() come from ctx.
  Result<int64_t> first_match(const Bindings &bindings, EvalContext &ctx) const;

  // Writes the indices of every rule whose `when` is true, in order, into out; returns the
  // count. More matches than out can hold is an error (Errc::no_memory).
  Result<size_t> collect_all(const Bindings &bindings, EvalContext &ctx,
                             std::span<uint32_t> out) const;

  // The index lets decisions skip rules that provably cannot be true and cannot fail for the
  // bindings at hand (docs/rules.md, "Rule-set index"). Decisions are the same with it on or
  // off; on by default. indexed_rules() counts the rules it covers.
  void set_indexing(bool on) { indexing_ = on; }
  bool indexing() const { return indexing_; }
  size_t indexed_rules() const { return indexed_; }

  // At most this many variables are indexed; rules keyed on further ones are evaluated.
  static constexpr size_t kMaxIndexes = 8;

 private:
  struct Meta {
    int32_t index = -1;                         // into indexes_, or -1: always evaluated
    uint32_t guard_off = 0, guard_len = 0;      // in guards_
    uint32_t scratch_off = 0, scratch_len = 0;  // in scratch_slots_
    uint64_t scratch_bytes = 0;
  };
  struct Entry {
    Value key;
    uint32_t rule;
  };
  struct Index {
    uint32_t slot;
    std::vector<Entry> entries;  // sorted by key, then rule
  };

  // Evaluates every rule that may be true or fail, in order, calling on_match(i) for each
  // true one until it returns false. Returns false on an error (err set).
  template <typename OnMatch>
  bool scan(const Bindings &bindings, EvalContext &ctx, Error *err, OnMatch &&on_match) const;
  void index_rule(const Expression &when, uint32_t rule);

  std::vector<Rule> rules_;
  std::vector<std::string> results_;
  std::vector<Meta> meta_;
  std::vector<detail::IndexKey::Guard> guards_;
  std::vector<uint32_t> scratch_slots_;
  std::vector<Index> indexes_;
  size_t indexed_ = 0;
  bool indexing_ = true;
};

}  // namespace ivr::rules
