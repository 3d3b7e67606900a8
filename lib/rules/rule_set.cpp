#include "rules/rule_set.h"

#include <algorithm>
#include <cmath>

namespace ivr::rules {

namespace {

// Orders index keys by type, then value, consistently with `==` (so -0 and 0 are one key).
bool key_less(const Value &a, const Value &b) {
  if (a.type != b.type) return a.type < b.type;
  switch (a.type) {
    case Type::null:
      return false;
    case Type::boolean:
      return a.b < b.b;
    case Type::number:
      return a.n < b.n;
    case Type::string:
      return a.s < b.s;
  }
  return false;
}

}  // namespace

Status RuleSet::add(std::string_view when, std::string_view then, const VariableResolver &resolver,
                    const CompileOptions &options) {
  auto expr = compile(when, resolver, options);
  if (!expr.ok())
    return Error{Errc::parse,
                 "rule " + std::to_string(rules_.size() + 1) + ": " + expr.error().message};
  uint32_t index = 0;
  while (index < results_.size() && results_[index] != then) ++index;
  if (index == results_.size()) results_.emplace_back(then);
  rules_.push_back(Rule{std::move(expr).value(), index});
  // The index keeps views into the expression's literals; they survive moves of the rule.
  index_rule(rules_.back().when, static_cast<uint32_t>(rules_.size() - 1));
  return Status::success();
}

void RuleSet::index_rule(const Expression &when, uint32_t rule) {
  Meta m;
  detail::IndexKey key;
  if (detail::IndexKey::of(when, &key)) {
    size_t j = 0;
    while (j < indexes_.size() && indexes_[j].slot != key.slot) ++j;
    if (j == indexes_.size() && j < kMaxIndexes) indexes_.push_back(Index{key.slot, {}});
    if (j < indexes_.size()) {
      m.index = static_cast<int32_t>(j);
      m.guard_off = static_cast<uint32_t>(guards_.size());
      m.guard_len = static_cast<uint32_t>(key.guard.size());
      guards_.insert(guards_.end(), key.guard.begin(), key.guard.end());
      m.scratch_off = static_cast<uint32_t>(scratch_slots_.size());
      m.scratch_len = static_cast<uint32_t>(key.scratch_slots.size());
      m.scratch_bytes = key.scratch_bytes;
      scratch_slots_.insert(scratch_slots_.end(), key.scratch_slots.begin(),
                            key.scratch_slots.end());
      auto &entries = indexes_[j].entries;
      for (const Value &v : key.values) {
        // After the equal keys: those belong to earlier rules, so each key's run stays
        // sorted by rule.
        auto it =
            std::upper_bound(entries.begin(), entries.end(), v,
                             [](const Value &x, const Entry &e) { return key_less(x, e.key); });
        entries.insert(it, Entry{v, rule});
      }
      ++indexed_;
    }
  }
  meta_.push_back(m);
}

template <typename OnMatch>
bool RuleSet::scan(const Bindings &bindings, EvalContext &ctx, Error *err,
                   OnMatch &&on_match) const {
  // Per indexed variable: the entries whose key equals its value, i.e. the indexed rules it
  // may make true, in rule order.
  struct Cursor {
    const Entry *p = nullptr, *end = nullptr;
  };
  Cursor cur[kMaxIndexes];
  size_t nidx = indexing_ ? indexes_.size() : 0;
  for (size_t j = 0; j < nidx; ++j) {
    Value v = bindings.get(indexes_[j].slot);
    if (v.type == Type::number && std::isnan(v.n)) continue;  // NaN equals nothing
    const auto &entries = indexes_[j].entries;
    auto lo = std::lower_bound(entries.begin(), entries.end(), v,
                               [](const Entry &e, const Value &x) { return key_less(e.key, x); });
    auto hi = std::upper_bound(lo, entries.end(), v,
                               [](const Value &x, const Entry &e) { return key_less(x, e.key); });
    cur[j].p = entries.data() + (lo - entries.begin());
    cur[j].end = entries.data() + (hi - entries.begin());
  }
  for (size_t i = 0; i < rules_.size(); ++i) {
    if (nidx) {
      const Meta &m = meta_[i];
      if (m.index >= 0) {
        Cursor &c = cur[m.index];
        while (c.p != c.end && c.p->rule < i) ++c.p;
        bool candidate = c.p != c.end && c.p->rule == i;
        // Not a candidate and the guard holds: false without error, so skipped.
        if (!candidate && detail::guard_holds(guards_.data() + m.guard_off, m.guard_len,
                                              scratch_slots_.data() + m.scratch_off, m.scratch_len,
                                              m.scratch_bytes, bindings, ctx))
          continue;
      }
    }
    int t = detail::test_condition(rules_[i].when, bindings, ctx, err, "'when'");
    if (t < 0) {
      err->message = "rule " + std::to_string(i + 1) + ": " + err->message;
      return false;
    }
    if (t > 0 && !on_match(i)) return true;
  }
  return true;
}

Result<int64_t> RuleSet::first_match(const Bindings &bindings, EvalContext &ctx) const {
  Error err;
  int64_t found = -1;
  bool ok = scan(bindings, ctx, &err, [&](size_t i) {
    found = static_cast<int64_t>(i);
    return false;
  });
  if (!ok) return err;
  return found;
}

Result<size_t> RuleSet::collect_all(const Bindings &bindings, EvalContext &ctx,
                                    std::span<uint32_t> out) const {
  Error err;
  size_t count = 0, overflow_at = 0;
  bool overflow = false;
  bool ok = scan(bindings, ctx, &err, [&](size_t i) {
    if (count == out.size()) {
      overflow = true;
      overflow_at = i;
      return false;
    }
    out[count++] = static_cast<uint32_t>(i);
    return true;
  });
  if (!ok) return err;
  if (overflow)
    return Error{Errc::no_memory, "rule " + std::to_string(overflow_at + 1) +
                                      ": more matches than the output holds (" +
                                      std::to_string(out.size()) + ")"};
  return count;
}

}  // namespace ivr::rules
