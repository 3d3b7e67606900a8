// Router: picks, for one call, the ordered list of targets to try. It owns the TargetPool,
// the target sets with their strategy state (round-robin cursor, weighted current weights)
// and the route plans; a plan's first entry whose schedule is open at the call's wall time
// names the strategy and the targets.
//
// A decision never reserves anything: the caller reserves the candidates in order
// (reserve_first) and fails over to the next on refusal. Everything runs on one thread
// (the engine loop); the clock and the call's variables come in through DecisionInput.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "routing/config.h"
#include "routing/model.h"
#include "routing/target_pool.h"
#include "rules/expr.h"
#include "rules/rule_set.h"
#include "rules/schedule.h"

namespace ivr::routing {

struct Candidate {
  TargetIndex target = 0;
  // The figure the strategy ranked by: load (least_busy, 0..1), idle agents (most_idle),
  // rendezvous score (sticky), current weight after the pick (weighted); 0 otherwise.
  double score = 0;
  // Ranked by failover order after the strategy's own choice: the targets after the rule's
  // choice (rules), every target when there is no call key (sticky) or no rule matched,
  // targets without fresh availability data (most_idle).
  bool fallback = false;
};

struct Skipped {
  TargetIndex target = 0;
  SkipReason reason = SkipReason::down;
};

// The outcome of one decision and the inputs that mattered (the route.decided event).
struct Decision {
  uint32_t plan = 0;
  int32_t entry = -1;  // index of the plan entry used; -1 when no entry is open now
  Strategy strategy = Strategy::failover;
  std::vector<Candidate> candidates;  // in the order to try; empty: queue or overflow
  std::vector<Skipped> skipped;       // in set order
  std::string key;                    // sticky: the call key ("" when it had none)
  int64_t rule = -1;                  // rules: 0-based index of the matching rule, -1 none
  int32_t rule_target = -1;           // rules: the target the rule named, -1 none
  std::string note;  // why the strategy fell back to failover order (key or rule error)

  void clear();
};

struct DecisionInput {
  Instant now{};             // capacity, health, availability age
  WallTime wall{};           // plan schedules, rules' now() and in_schedule()
  rules::Bindings bindings;  // slot i holds Router::variables()[i]; missing slots are null
  std::span<const TargetIndex> exclude;  // already tried for this call: skipped as "tried"
};

class Router {
 public:
  // Validates the configuration (errors name the field under `path`, as
  // validate_routing_config) and starts every target up.
  static Result<Router> create(RoutingConfig config, Instant now,
                               std::string_view path = "routing");
  // Replaces the configuration; live target state is kept by name (TargetPool::configure),
  // strategy state (round-robin cursors, weights) starts over. On error nothing changes.
  Status reconfigure(RoutingConfig config, Instant now, std::string_view path = "routing");
  // The checks of create() without keeping the result (validate_routing_config).
  static Status validate(const RoutingConfig &config, std::string_view path = "routing");

  TargetPool &pool() { return pool_; }
  const TargetPool &pool() const { return pool_; }
  const rules::ScheduleRegistry &schedules() const { return schedules_; }

  // The variables rules and sticky keys read, by slot: DecisionInput::bindings[i] holds the
  // value of variables()[i] ("call.from", "vars.tier", ...).
  const std::vector<std::string> &variables() const { return variables_; }
  int64_t slot_of(std::string_view name) const;

  size_t plan_count() const { return plans_.size(); }
  std::optional<uint32_t> find_plan(std::string_view name) const;
  const std::string &plan_name(uint32_t plan) const { return plans_[plan].name; }
  // Index of the entry whose schedule is open at `wall`, or -1.
  int32_t open_entry(uint32_t plan, WallTime wall) const;
  // The schedule name of an entry ("" = always) and the targets it routes over.
  const std::string &entry_schedule(uint32_t plan, uint32_t entry) const;
  std::vector<TargetIndex> entry_targets(uint32_t plan, uint32_t entry) const;

  // Decides into `out` (reusing its storage: no allocation once warm for strategies without
  // rules evaluation errors). Errc::not_found for an unknown plan index. A rule or key that
  // fails to evaluate does not fail the decision: the targets follow failover order and
  // `note` says why.
  Status decide(uint32_t plan, const DecisionInput &in, Decision &out);
  Result<Decision> decide(std::string_view plan, const DecisionInput &in);

  // Reserves a slot on the first candidate that has one (in order), or nullopt. `tried`,
  // when given, receives the index into d.candidates of the reserved one.
  std::optional<Slot> reserve_first(const Decision &d, Instant now, size_t *tried = nullptr);

  // One line for logs and tests: "plan sales entry 0 (office) weighted: b, a; skipped c
  // (down)".
  std::string describe(const Decision &d) const;

 private:
  struct SetRuntime {
    std::vector<TargetIndex> members;     // list order
    std::vector<uint32_t> failover;       // positions sorted by (priority, position)
    std::vector<uint32_t> failover_rank;  // position -> rank in `failover`
    std::vector<uint64_t> name_hash;      // per position, for rendezvous hashing
    std::vector<int64_t> current;         // smooth weighted round robin state
    uint32_t cursor = 0;                  // round robin: next position to start from
  };
  struct EntryRuntime {
    std::string schedule_name;  // "" = always
    std::optional<rules::Schedule> schedule;
    Strategy strategy = Strategy::failover;
    uint32_t set = 0;
    rules::RuleSet rules;
    std::vector<int32_t> result_position;  // rule result index -> position in the set
    std::optional<rules::Expression> key;  // sticky
  };
  struct PlanRuntime {
    std::string name;
    std::vector<EntryRuntime> entries;
  };
  struct Rank {
    double key = 0;
    double score = 0;
    uint32_t rank = 0;  // failover rank
    uint32_t pos = 0;
    bool fallback = false;
  };

  Router() = default;
  static Result<Router> build(const RoutingConfig &config, std::string_view path);
  void emit_failover(const SetRuntime &s, Decision &out, bool fallback, int32_t except = -1);
  void sort_and_emit(const SetRuntime &s, Decision &out);
  bool call_key(const EntryRuntime &e, const DecisionInput &in, std::string &key,
                std::string &note);

  TargetPool pool_;
  rules::ScheduleRegistry schedules_;
  std::vector<std::string> variables_;
  std::vector<SetRuntime> sets_;
  std::vector<PlanRuntime> plans_;
  std::map<std::string, uint32_t, std::less<>> plan_index_;
  // Per-decision scratch (kept to avoid allocating in decide()).
  std::vector<int8_t> why_;  // per position: -1 eligible, else SkipReason
  std::vector<Rank> ranks_;
  std::vector<char> eval_scratch_ = std::vector<char>(1024);
};

}  // namespace ivr::routing
