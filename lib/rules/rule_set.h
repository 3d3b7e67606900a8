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

  // Compiles `when` and appends the rule; `then` names the result (equal names share an
  // index). A compile error is prefixed with "rule N: " (1-based).
  Status add(std::string_view when, std::string_view then, const VariableResolver &resolver);

  size_t size() const { return rules_.size(); }
  const Rule &rule(size_t i) const { return rules_[i]; }
  const std::vector<std::string> &results() const { return results_; }
  const std::string &result_name(uint32_t index) const { return results_[index]; }

  // Index of the first rule whose `when` is true, or -1 when none is. A rule whose
  // expression fails to evaluate stops the decision with that error ("rule N: ...").
  Result<int64_t> first_match(const Bindings &bindings, EvalContext &ctx) const;

  // Writes the indices of every rule whose `when` is true, in order, into out; returns the
  // count. More matches than out can hold is an error (Errc::no_memory).
  Result<size_t> collect_all(const Bindings &bindings, EvalContext &ctx,
                             std::span<uint32_t> out) const;

 private:
  // Evaluates rule i: 1 true, 0 false/null, -1 error (err set).
  int test(size_t i, const Bindings &bindings, EvalContext &ctx, Error *err) const;
  std::vector<Rule> rules_;
  std::vector<std::string> results_;
};

}  // namespace ivr::rules
