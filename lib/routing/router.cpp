#include "routing/router.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <set>

namespace ivr::routing {

namespace {

// Accepts call.* and vars.* (as the flow's table does) and remembers the names by slot.
class RecordingTable : public rules::VariableResolver {
 public:
  Result<uint32_t> resolve(std::string_view dotted_name) const override {
    auto r = table_.resolve(dotted_name);
    if (r.ok() && r.value() == names_.size()) names_.emplace_back(dotted_name);
    return r;
  }
  std::vector<std::string> take() { return std::move(names_); }

 private:
  rules::VariableTable table_{{"call", "vars"}};
  mutable std::vector<std::string> names_;
};

uint64_t mix64(uint64_t x) {  // splitmix64's finaliser: every input bit moves every output bit
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

uint64_t hash_text(std::string_view s) {  // FNV-1a, then mixed
  uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return mix64(h);
}

// Weighted rendezvous score: w / -ln(u), u uniform in (0, 1) from the pair's hash. The
// highest score wins; a target's score depends only on the key, its name and its weight,
// so adding or removing a target moves only the keys that target wins or held.
double rendezvous_score(uint64_t key_hash, uint64_t name_hash, uint32_t weight) {
  uint64_t h = mix64(key_hash ^ (name_hash * 0x9e3779b97f4a7c15ULL));
  double u = (static_cast<double>(h >> 11) + 0.5) * 0x1.0p-53;
  return static_cast<double>(weight) / -std::log(u);
}

std::string strip_rule_prefix(const std::string &msg) {
  // RuleSet::add prefixes "rule N: "; the path already says which rule.
  if (msg.rfind("rule ", 0) == 0) {
    size_t colon = msg.find(": ");
    if (colon != std::string::npos) return msg.substr(colon + 2);
  }
  return msg;
}

std::string quoted(std::string_view s) {
  return "'" + std::string(s) + "'";
}

}  // namespace

void Decision::clear() {
  plan = 0;
  entry = -1;
  strategy = Strategy::failover;
  candidates.clear();
  skipped.clear();
  key.clear();
  rule = -1;
  rule_target = -1;
  note.clear();
}

Status validate_routing_config(const RoutingConfig &config, std::string_view path) {
  return Router::validate(config, path);
}

Status Router::validate(const RoutingConfig &config, std::string_view path) {
  auto r = build(config, path);
  if (!r.ok()) return r.error();
  return {};
}

Result<Router> Router::build(const RoutingConfig &config, std::string_view path) {
  const std::string root(path);
  auto err = [&](const std::string &where, const std::string &why) {
    return Error{Errc::invalid_argument, root + "." + where + ": " + why};
  };
  Router r;
  std::map<std::string, TargetIndex, std::less<>> targets;
  for (size_t i = 0; i < config.targets.size(); ++i) {
    const TargetConfig &t = config.targets[i];
    std::string where = "targets." + shown_name(t.name);
    if (Status s = validate_target(t, root + "." + where); !s) return s.error();
    if (!targets.emplace(t.name, static_cast<TargetIndex>(i)).second)
      return err(where, "duplicate target name");
  }

  // A set's runtime from target names; `where` names the list for errors.
  auto make_set = [&](const std::vector<std::string> &names,
                      const std::string &where) -> Result<SetRuntime> {
    if (names.empty()) return err(where, "at least one target is needed");
    SetRuntime s;
    for (size_t i = 0; i < names.size(); ++i) {
      auto it = targets.find(names[i]);
      std::string at = where + "[" + std::to_string(i) + "]";
      if (it == targets.end()) return err(at, "unknown target " + quoted(shown_name(names[i])));
      if (std::find(s.members.begin(), s.members.end(), it->second) != s.members.end())
        return err(at, "target " + quoted(names[i]) + " is listed twice");
      s.members.push_back(it->second);
      s.name_hash.push_back(hash_text(names[i]));
    }
    size_t n = s.members.size();
    s.failover.resize(n);
    for (size_t i = 0; i < n; ++i) s.failover[i] = static_cast<uint32_t>(i);
    std::stable_sort(s.failover.begin(), s.failover.end(), [&](uint32_t a, uint32_t b) {
      return config.targets[s.members[a]].priority < config.targets[s.members[b]].priority;
    });
    s.failover_rank.resize(n);
    for (size_t k = 0; k < n; ++k) s.failover_rank[s.failover[k]] = static_cast<uint32_t>(k);
    s.current.assign(n, 0);
    return s;
  };

  std::map<std::string, uint32_t, std::less<>> set_index;
  for (const TargetSetConfig &set : config.sets) {
    std::string where = "target_sets." + shown_name(set.name);
    if (!valid_target_name(set.name))
      return Error{
          Errc::invalid_argument,
          root + "." + where + ": a set name is 1-64 characters of letters, digits, '_' and '-'"};
    if (set_index.count(set.name)) return err(where, "duplicate target set name");
    auto s = make_set(set.targets, where);
    if (!s.ok()) return s.error();
    set_index[set.name] = static_cast<uint32_t>(r.sets_.size());
    r.sets_.push_back(std::move(s).value());
  }

  r.schedules_ = config.schedules;
  RecordingTable table;
  rules::CompileOptions options;
  options.schedules = &r.schedules_;
  for (const PlanConfig &p : config.plans) {
    std::string pw = "plans." + shown_name(p.name);
    if (!valid_target_name(p.name))
      return Error{
          Errc::invalid_argument,
          root + "." + pw + ": a plan name is 1-64 characters of letters, digits, '_' and '-'"};
    if (r.plan_index_.count(p.name)) return err(pw, "duplicate plan name");
    if (p.entries.empty()) return err(pw + ".entries", "at least one entry is needed");
    PlanRuntime plan;
    plan.name = p.name;
    for (size_t i = 0; i < p.entries.size(); ++i) {
      const PlanEntryConfig &e = p.entries[i];
      std::string ew = pw + ".entries[" + std::to_string(i) + "]";
      EntryRuntime rt;
      rt.strategy = e.strategy;
      rt.schedule_name = e.schedule;
      if (!e.schedule.empty()) {
        const rules::Schedule *s = r.schedules_.find(e.schedule);
        if (!s) return err(ew + ".schedule", "unknown schedule " + quoted(shown_name(e.schedule)));
        rt.schedule = *s;
      }
      if (e.set.empty() == e.targets.empty())
        return err(ew, e.set.empty() ? "needs \"set\" (a target set) or \"targets\" (a list)"
                                     : "has both \"set\" and \"targets\"; keep one");
      std::vector<std::string> member_names;
      if (!e.set.empty()) {
        auto it = set_index.find(e.set);
        if (it == set_index.end())
          return err(ew + ".set", "unknown target set " + quoted(shown_name(e.set)));
        rt.set = it->second;  // entries over one named set share its strategy state
        for (TargetIndex t : r.sets_[rt.set].members)
          member_names.push_back(config.targets[t].name);
      } else {
        auto s = make_set(e.targets, ew + ".targets");
        if (!s.ok()) return s.error();
        rt.set = static_cast<uint32_t>(r.sets_.size());
        r.sets_.push_back(std::move(s).value());
        member_names = e.targets;
      }
      if (e.strategy == Strategy::rules) {
        if (e.rules.empty())
          return err(ew + ".rules", "strategy \"rules\" needs at least one rule");
        for (size_t j = 0; j < e.rules.size(); ++j) {
          const RuleSpec &rs = e.rules[j];
          std::string rw = ew + ".rules[" + std::to_string(j) + "]";
          auto m = std::find(member_names.begin(), member_names.end(), rs.then);
          if (m == member_names.end())
            return err(rw + ".then",
                       quoted(shown_name(rs.then)) + " is not a target of this entry");
          if (Status s = rt.rules.add(rs.when, rs.then, table, options); !s)
            return err(rw + ".when", strip_rule_prefix(s.error().message));
        }
        rt.result_position.assign(rt.rules.results().size(), -1);
        for (size_t k = 0; k < rt.rules.results().size(); ++k) {
          auto m = std::find(member_names.begin(), member_names.end(), rt.rules.results()[k]);
          rt.result_position[k] = static_cast<int32_t>(m - member_names.begin());
        }
      } else if (!e.rules.empty()) {
        return err(ew + ".rules", "only with strategy \"rules\"");
      }
      if (e.strategy == Strategy::sticky) {
        if (e.key.empty()) return err(ew + ".key", "must not be empty");
        auto k = rules::compile(e.key, table, options);
        if (!k.ok()) return err(ew + ".key", k.error().message);
        rt.key = std::move(k).value();
      }
      plan.entries.push_back(std::move(rt));
    }
    r.plan_index_[p.name] = static_cast<uint32_t>(r.plans_.size());
    r.plans_.push_back(std::move(plan));
  }
  r.variables_ = table.take();
  return r;
}

Result<Router> Router::create(RoutingConfig config, Instant now, std::string_view path) {
  auto r = build(config, path);
  if (!r.ok()) return r;
  if (Status s = r->pool_.configure(std::move(config.targets), now); !s) return s.error();
  return r;
}

Status Router::reconfigure(RoutingConfig config, Instant now, std::string_view path) {
  auto r = build(config, path);
  if (!r.ok()) return r.error();
  // build() validated the targets, so configure() cannot fail here; check anyway.
  if (Status s = pool_.configure(std::move(config.targets), now); !s) return s;
  Router &n = r.value();
  schedules_ = std::move(n.schedules_);
  variables_ = std::move(n.variables_);
  sets_ = std::move(n.sets_);
  plans_ = std::move(n.plans_);
  plan_index_ = std::move(n.plan_index_);
  return {};
}

int64_t Router::slot_of(std::string_view name) const {
  for (size_t i = 0; i < variables_.size(); ++i)
    if (variables_[i] == name) return static_cast<int64_t>(i);
  return -1;
}

std::optional<uint32_t> Router::find_plan(std::string_view name) const {
  auto it = plan_index_.find(name);
  if (it == plan_index_.end()) return std::nullopt;
  return it->second;
}

int32_t Router::open_entry(uint32_t plan, WallTime wall) const {
  if (plan >= plans_.size()) return -1;
  const auto &entries = plans_[plan].entries;
  for (size_t i = 0; i < entries.size(); ++i)
    if (!entries[i].schedule || entries[i].schedule->is_open(wall)) return static_cast<int32_t>(i);
  return -1;
}

const std::string &Router::entry_schedule(uint32_t plan, uint32_t entry) const {
  return plans_[plan].entries[entry].schedule_name;
}

std::vector<TargetIndex> Router::entry_targets(uint32_t plan, uint32_t entry) const {
  return sets_[plans_[plan].entries[entry].set].members;
}

void Router::emit_failover(const SetRuntime &s, Decision &out, bool fallback, int32_t except) {
  for (uint32_t pos : s.failover)
    if (why_[pos] < 0 && static_cast<int32_t>(pos) != except)
      out.candidates.push_back({s.members[pos], 0, fallback});
}

void Router::sort_and_emit(const SetRuntime &s, Decision &out) {
  std::sort(ranks_.begin(), ranks_.end(), [](const Rank &a, const Rank &b) {
    return a.key != b.key ? a.key < b.key : a.rank < b.rank;
  });
  for (const Rank &r : ranks_) out.candidates.push_back({s.members[r.pos], r.score, r.fallback});
}

bool Router::call_key(const EntryRuntime &e, const DecisionInput &in, std::string &key,
                      std::string &note) {
  rules::EvalContext ctx(eval_scratch_.data(), eval_scratch_.size());
  ctx.set_time(in.wall);
  ctx.set_schedules(&schedules_);
  auto v = rules::evaluate(*e.key, in.bindings, ctx);
  if (!v.ok()) {
    note = "sticky key: " + v.error().message;
    return false;
  }
  switch (v->type) {
    case rules::Type::string:
      key.assign(v->s);
      break;
    case rules::Type::number: {
      char buf[32];
      double n = v->n;
      std::to_chars_result res;
      if (std::isfinite(n) && n == std::trunc(n) && std::fabs(n) < 9.0e15)
        res = std::to_chars(buf, buf + sizeof buf, static_cast<int64_t>(n));
      else
        res = std::to_chars(buf, buf + sizeof buf, n);
      key.assign(buf, res.ptr);
      break;
    }
    case rules::Type::boolean:
      key.assign(v->b ? "true" : "false");
      break;
    case rules::Type::null:
      key.clear();
      break;
  }
  return !key.empty();
}

Status Router::decide(uint32_t plan, const DecisionInput &in, Decision &out) {
  if (plan >= plans_.size())
    return Status(Errc::not_found, "plan index " + std::to_string(plan) + " out of range");
  out.clear();
  out.plan = plan;
  out.entry = open_entry(plan, in.wall);
  if (out.entry < 0) return {};
  EntryRuntime &e = plans_[plan].entries[static_cast<size_t>(out.entry)];
  SetRuntime &s = sets_[e.set];
  out.strategy = e.strategy;

  const size_t n = s.members.size();
  why_.assign(n, -1);
  for (size_t pos = 0; pos < n; ++pos) {
    TargetIndex t = s.members[pos];
    std::optional<SkipReason> why;
    if (std::find(in.exclude.begin(), in.exclude.end(), t) != in.exclude.end())
      why = SkipReason::tried;
    else
      why = pool_.unavailable(t, in.now);
    if (why) {
      why_[pos] = static_cast<int8_t>(*why);
      out.skipped.push_back({t, *why});
    }
  }
  ranks_.clear();

  switch (e.strategy) {
    case Strategy::failover:
      emit_failover(s, out, false);
      break;

    case Strategy::round_robin: {
      int64_t first = -1;
      for (size_t k = 0; k < n; ++k) {
        size_t pos = (s.cursor + k) % n;
        if (why_[pos] >= 0) continue;
        if (first < 0) first = static_cast<int64_t>(pos);
        out.candidates.push_back({s.members[pos], 0, false});
      }
      if (first >= 0) s.cursor = static_cast<uint32_t>((static_cast<size_t>(first) + 1) % n);
      break;
    }

    case Strategy::weighted: {
      // Smooth weighted round robin (nginx): every eligible target gains its weight, the
      // highest current weight is picked and pays back the total. Over any window of
      // sum(weights) picks each target is picked `weight` times, interleaved.
      int64_t total = 0;
      int64_t best = -1;
      for (size_t pos = 0; pos < n; ++pos) {
        if (why_[pos] >= 0) continue;
        s.current[pos] += pool_.config(s.members[pos]).weight;
        total += pool_.config(s.members[pos]).weight;
        if (best < 0 || s.current[pos] > s.current[static_cast<size_t>(best)])
          best = static_cast<int64_t>(pos);
      }
      if (best < 0) break;
      s.current[static_cast<size_t>(best)] -= total;
      for (size_t pos = 0; pos < n; ++pos) {
        if (why_[pos] >= 0) continue;
        double cur = static_cast<double>(s.current[pos]);
        // The pick first, then the others by how soon they are due (current weight).
        double key =
            static_cast<int64_t>(pos) == best ? -std::numeric_limits<double>::infinity() : -cur;
        ranks_.push_back({key, cur, s.failover_rank[pos], static_cast<uint32_t>(pos), false});
      }
      sort_and_emit(s, out);
      break;
    }

    case Strategy::least_busy:
      for (size_t pos = 0; pos < n; ++pos) {
        if (why_[pos] >= 0) continue;
        const TargetState &st = pool_.state(s.members[pos]);
        double load = static_cast<double>(st.counters.active + st.counters.reserved) /
                      pool_.config(s.members[pos]).capacity;
        ranks_.push_back({load, load, s.failover_rank[pos], static_cast<uint32_t>(pos), false});
      }
      sort_and_emit(s, out);
      break;

    case Strategy::most_idle:
      for (size_t pos = 0; pos < n; ++pos) {
        if (why_[pos] >= 0) continue;
        TargetIndex t = s.members[pos];
        if (pool_.availability_stale(t, in.now)) {
          // What we cannot see we do not prefer: after every target with fresh data.
          ranks_.push_back({std::numeric_limits<double>::infinity(), 0, s.failover_rank[pos],
                            static_cast<uint32_t>(pos), true});
        } else {
          double idle = static_cast<double>(pool_.idle_agents(t, in.now));
          ranks_.push_back({-idle, idle, s.failover_rank[pos], static_cast<uint32_t>(pos), false});
        }
      }
      sort_and_emit(s, out);
      break;

    case Strategy::sticky: {
      if (!call_key(e, in, out.key, out.note)) {
        if (out.note.empty()) out.note = "no call key";
        out.note += "; failover order";
        emit_failover(s, out, true);
        break;
      }
      uint64_t kh = hash_text(out.key);
      for (size_t pos = 0; pos < n; ++pos) {
        if (why_[pos] >= 0) continue;
        double score = rendezvous_score(kh, s.name_hash[pos], pool_.config(s.members[pos]).weight);
        ranks_.push_back({-score, score, s.failover_rank[pos], static_cast<uint32_t>(pos), false});
      }
      sort_and_emit(s, out);
      break;
    }

    case Strategy::rules: {
      rules::EvalContext ctx(eval_scratch_.data(), eval_scratch_.size());
      ctx.set_time(in.wall);
      ctx.set_schedules(&schedules_);
      auto m = e.rules.first_match(in.bindings, ctx);
      if (!m.ok()) {
        out.note = m.error().message + "; failover order";
        emit_failover(s, out, true);
        break;
      }
      out.rule = m.value();
      if (out.rule < 0) {
        emit_failover(s, out, true);
        break;
      }
      int32_t pos = e.result_position[e.rules.rule(static_cast<size_t>(out.rule)).then];
      out.rule_target = static_cast<int32_t>(s.members[static_cast<size_t>(pos)]);
      if (why_[static_cast<size_t>(pos)] < 0)
        out.candidates.push_back({s.members[static_cast<size_t>(pos)], 0, false});
      emit_failover(s, out, true, pos);
      break;
    }
  }
  return {};
}

Result<Decision> Router::decide(std::string_view plan, const DecisionInput &in) {
  auto p = find_plan(plan);
  if (!p) return Error{Errc::not_found, "plan " + quoted(plan) + ": no such plan"};
  Decision d;
  if (Status s = decide(*p, in, d); !s) return s.error();
  return d;
}

std::optional<Slot> Router::reserve_first(const Decision &d, Instant now, size_t *tried) {
  for (size_t i = 0; i < d.candidates.size(); ++i) {
    auto slot = pool_.try_reserve(d.candidates[i].target, now);
    if (slot.ok()) {
      if (tried) *tried = i;
      return slot.value();
    }
  }
  return std::nullopt;
}

std::string Router::describe(const Decision &d) const {
  std::string out = "plan " + (d.plan < plans_.size() ? plans_[d.plan].name : "?");
  if (d.entry < 0) return out + ": no entry open";
  out += " entry " + std::to_string(d.entry);
  const std::string &sched = plans_[d.plan].entries[static_cast<size_t>(d.entry)].schedule_name;
  if (!sched.empty()) out += " (" + sched + ")";
  out += " ";
  out += strategy_name(d.strategy);
  if (!d.key.empty()) out += " key " + quoted(d.key);
  if (d.rule >= 0) {
    out += " rule " + std::to_string(d.rule + 1);
    if (d.rule_target >= 0) out += " -> " + pool_.name(static_cast<TargetIndex>(d.rule_target));
  }
  out += ":";
  if (d.candidates.empty()) out += " no candidates";
  for (size_t i = 0; i < d.candidates.size(); ++i)
    out += (i ? ", " : " ") + pool_.name(d.candidates[i].target);
  if (!d.skipped.empty()) {
    out += "; skipped";
    for (size_t i = 0; i < d.skipped.size(); ++i)
      out += std::string(i ? ", " : " ") + pool_.name(d.skipped[i].target) + " (" +
             skip_reason_name(d.skipped[i].reason) + ")";
  }
  if (!d.note.empty()) out += "; " + d.note;
  return out;
}

}  // namespace ivr::routing
