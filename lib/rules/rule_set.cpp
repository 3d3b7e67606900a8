#include "rules/rule_set.h"

namespace ivr::rules {

Status RuleSet::add(std::string_view when, std::string_view then,
                    const VariableResolver &resolver) {
  auto expr = compile(when, resolver);
  if (!expr.ok())
    return Error{Errc::parse,
                 "rule " + std::to_string(rules_.size() + 1) + ": " + expr.error().message};
  uint32_t index = 0;
  while (index < results_.size() && results_[index] != then) ++index;
  if (index == results_.size()) results_.emplace_back(then);
  rules_.push_back(Rule{std::move(expr).value(), index});
  return Status::success();
}

int RuleSet::test(size_t i, const Bindings &bindings, EvalContext &ctx, Error *err) const {
  auto r = evaluate(rules_[i].when, bindings, ctx);
  if (!r.ok()) {
    *err = Error{r.error().code, "rule " + std::to_string(i + 1) + ": " + r.error().message};
    return -1;
  }
  const Value &v = r.value();
  if (v.type == Type::null) return 0;
  if (v.type == Type::boolean) return v.b ? 1 : 0;
  *err = Error{Errc::invalid_argument, "rule " + std::to_string(i + 1) +
                                           ": 'when' must yield a bool, got " + type_name(v.type)};
  return -1;
}

Result<int64_t> RuleSet::first_match(const Bindings &bindings, EvalContext &ctx) const {
  Error err;
  for (size_t i = 0; i < rules_.size(); ++i) {
    int t = test(i, bindings, ctx, &err);
    if (t < 0) return err;
    if (t > 0) return static_cast<int64_t>(i);
  }
  return int64_t{-1};
}

Result<size_t> RuleSet::collect_all(const Bindings &bindings, EvalContext &ctx,
                                    std::span<uint32_t> out) const {
  Error err;
  size_t count = 0;
  for (size_t i = 0; i < rules_.size(); ++i) {
    int t = test(i, bindings, ctx, &err);
    if (t < 0) return err;
    if (t == 0) continue;
    if (count == out.size())
      return Error{Errc::no_memory, "rule " + std::to_string(i + 1) +
                                        ": more matches than the output holds (" +
                                        std::to_string(out.size()) + ")"};
    out[count++] = static_cast<uint32_t>(i);
  }
  return count;
}

}  // namespace ivr::rules
