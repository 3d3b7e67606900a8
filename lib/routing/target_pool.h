// TargetPool: the configured dialing systems with their live state (health, draining,
// counters, availability) and the slot reservations that keep one slot from going to two
// calls. Pure logic, owned by one thread (the engine loop): nothing here locks.
//
// A call's slot goes through:   try_reserve -> commit -> release            (delivered)
//                               try_reserve -> release / release_failed     (not delivered)
// try_reserve succeeds only when the capacity rule (docs/routing.md, "The capacity rule")
// leaves a free slot, and counts the slot at once, so two calls can never hold the last one.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "routing/health.h"
#include "routing/model.h"

namespace ivr::routing {

// A reservation. `id` is unique for the pool's lifetime and is what commit/release look up;
// `target` is the target's index when the slot was reserved (stale after configure()).
struct Slot {
  uint64_t id = 0;
  TargetIndex target = 0;
};

struct TargetState {
  Health health = Health::up;  // draining wins over the probe's verdict
  bool draining = false;
  HealthTracker tracker;
  Counters counters;
  Availability availability;
};

// A health change to report (event "target.health" later).
struct HealthChange {
  TargetIndex target = 0;
  Health from = Health::up;
  Health to = Health::up;
};

class TargetPool {
 public:
  TargetPool() = default;

  // Replaces the configuration. Targets are matched by name: a kept target keeps its
  // health, counters, availability and reservations (its config, thresholds included, is
  // updated); a new one starts up with zero counters; a removed one is forgotten, and its
  // outstanding slots may still be released (commit answers Errc::gone). TargetIndex
  // values from before are invalid afterwards. Each config is validated (validate_target);
  // names must be unique. On error nothing changes.
  Status configure(std::vector<TargetConfig> targets, Instant now);

  size_t size() const { return entries_.size(); }
  std::optional<TargetIndex> find(std::string_view name) const;
  const TargetConfig &config(TargetIndex i) const { return entries_[i].config; }
  const std::string &name(TargetIndex i) const { return entries_[i].config.name; }
  const TargetState &state(TargetIndex i) const { return entries_[i].state; }
  Health health(TargetIndex i) const { return entries_[i].state.health; }

  // ---- health ----
  // One probe result (SIP OPTIONS answered or not). Returns the change, if any.
  std::optional<HealthChange> record_probe(TargetIndex i, bool success, Instant now);
  // Operator or delivery verdict (e.g. transport failure on a call): sets up/down now.
  std::optional<HealthChange> force_health(TargetIndex i, bool up, Instant now);
  // Draining: no new calls; calls in progress and reservations continue.
  std::optional<HealthChange> set_draining(TargetIndex i, bool draining);

  // ---- availability ----
  // A fresh sample from the target's connector (also clears a stale mark).
  void update_availability(TargetIndex i, const AvailabilitySample &sample, Instant now);
  // The connector's data is unusable (poll failed, garbage answer): stale until the next
  // sample.
  void mark_availability_stale(TargetIndex i);
  // Stale: no sample yet, marked stale, or older than availability.stale_after_s.
  bool availability_stale(TargetIndex i, Instant now) const;
  // Idle agents as routing counts them: agents_available - reserved - committed since the
  // sample (- calls_waiting with subtract_calls_waiting). May be negative; 0 when stale.
  int64_t idle_agents(TargetIndex i, Instant now) const;

  // ---- capacity ----
  // Why the target cannot take a new call now, or nullopt when it can (the capacity rule).
  std::optional<SkipReason> unavailable(TargetIndex i, Instant now) const;
  // Slots a new call could take now (0 when unavailable).
  uint32_t free_slots(TargetIndex i, Instant now) const;

  // Reserves a slot. Errc::busy naming the target and the reason when the capacity rule
  // says no.
  Result<Slot> try_reserve(TargetIndex i, Instant now);
  // Reserved -> active: the call was delivered (answered). Errc::not_found for an unknown
  // slot, Errc::bad_state for one already committed, Errc::gone when its target was removed.
  Status commit(const Slot &slot);
  // Ends a slot: a reservation dropped without a failure (offer cancelled, caller gone), or
  // a delivered call that ended. Errc::not_found for an unknown (or already released) slot.
  Status release(const Slot &slot);
  // A reservation whose delivery attempt failed; counted under `reason`. Errc::bad_state for
  // a committed slot (use release()).
  Status release_failed(const Slot &slot, FailReason reason);
  // Drops reservations older than max_age (a delivery side that never came back) and
  // returns them; committed calls are left alone.
  std::vector<Slot> expire_reservations(Instant now, Duration max_age);

  bool slot_committed(const Slot &slot) const;
  size_t outstanding_slots() const { return slots_.size(); }

 private:
  struct Entry {
    TargetConfig config;
    TargetState state;
    uint64_t uid = 0;  // never reused: slots name their target by it
  };
  struct SlotRecord {
    uint64_t target_uid = 0;
    bool committed = false;
    Instant reserved_at{};
  };
  static Health effective(const TargetState &s) {
    return s.draining ? Health::draining : (s.tracker.up() ? Health::up : Health::down);
  }
  std::optional<HealthChange> refresh(TargetIndex i, Health before);
  Entry *entry_of(uint64_t uid);
  Status end_slot(const Slot &slot, const FailReason *reason);

  std::vector<Entry> entries_;
  std::map<std::string, TargetIndex, std::less<>> by_name_;
  std::unordered_map<uint64_t, TargetIndex> by_uid_;
  std::unordered_map<uint64_t, SlotRecord> slots_;
  uint64_t next_uid_ = 1;
  uint64_t next_slot_ = 1;
};

}  // namespace ivr::routing
