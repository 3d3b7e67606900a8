#include "routing/target_pool.h"

#include <algorithm>

namespace ivr::routing {

Status TargetPool::configure(std::vector<TargetConfig> targets, Instant now) {
  std::map<std::string, TargetIndex, std::less<>> names;
  for (size_t i = 0; i < targets.size(); ++i) {
    std::string where = "targets." + shown_name(targets[i].name);
    if (Status s = validate_target(targets[i], where); !s) return s;
    if (!names.emplace(targets[i].name, static_cast<TargetIndex>(i)).second)
      return Status(Errc::invalid_argument, where + ": duplicate target name");
  }
  std::vector<Entry> next;
  next.reserve(targets.size());
  for (TargetConfig &c : targets) {
    Entry e;
    if (auto old = find(c.name)) {
      e = std::move(entries_[*old]);
    } else {
      e.uid = next_uid_++;
      e.state.tracker = HealthTracker(HealthThresholds::from(c.probe), true, now);
    }
    e.state.tracker.set_thresholds(HealthThresholds::from(c.probe));
    e.config = std::move(c);
    e.state.health = effective(e.state);
    next.push_back(std::move(e));
  }
  entries_ = std::move(next);
  by_name_ = std::move(names);
  by_uid_.clear();
  for (size_t i = 0; i < entries_.size(); ++i)
    by_uid_[entries_[i].uid] = static_cast<TargetIndex>(i);
  return {};
}

std::optional<TargetIndex> TargetPool::find(std::string_view name) const {
  auto it = by_name_.find(name);
  if (it == by_name_.end()) return std::nullopt;
  return it->second;
}

std::optional<HealthChange> TargetPool::refresh(TargetIndex i, Health before) {
  TargetState &s = entries_[i].state;
  s.health = effective(s);
  if (s.health == before) return std::nullopt;
  return HealthChange{i, before, s.health};
}

std::optional<HealthChange> TargetPool::record_probe(TargetIndex i, bool success, Instant now) {
  Health before = entries_[i].state.health;
  entries_[i].state.tracker.record(success, now);
  return refresh(i, before);
}

std::optional<HealthChange> TargetPool::force_health(TargetIndex i, bool up, Instant now) {
  Health before = entries_[i].state.health;
  entries_[i].state.tracker.force(up, now);
  return refresh(i, before);
}

std::optional<HealthChange> TargetPool::set_draining(TargetIndex i, bool draining) {
  Health before = entries_[i].state.health;
  entries_[i].state.draining = draining;
  return refresh(i, before);
}

void TargetPool::update_availability(TargetIndex i, const AvailabilitySample &sample, Instant now) {
  Availability &a = entries_[i].state.availability;
  a.sample = sample;
  a.updated_at = now;
  a.present = true;
  a.marked_stale = false;
  a.committed_since = 0;
}

void TargetPool::mark_availability_stale(TargetIndex i) {
  entries_[i].state.availability.marked_stale = true;
}

bool TargetPool::availability_stale(TargetIndex i, Instant now) const {
  const Entry &e = entries_[i];
  const Availability &a = e.state.availability;
  if (!a.present || a.marked_stale) return true;
  return now - a.updated_at > std::chrono::seconds(e.config.availability.stale_after_s);
}

int64_t TargetPool::idle_agents(TargetIndex i, Instant now) const {
  if (availability_stale(i, now)) return 0;
  const Entry &e = entries_[i];
  const Availability &a = e.state.availability;
  int64_t idle = static_cast<int64_t>(a.sample.agents_available) -
                 static_cast<int64_t>(e.state.counters.reserved) -
                 static_cast<int64_t>(a.committed_since);
  if (e.config.availability.subtract_calls_waiting)
    idle -= static_cast<int64_t>(a.sample.calls_waiting);
  return idle;
}

std::optional<SkipReason> TargetPool::unavailable(TargetIndex i, Instant now) const {
  const Entry &e = entries_[i];
  const TargetState &s = e.state;
  if (s.health == Health::down) return SkipReason::down;
  if (s.health == Health::draining) return SkipReason::draining;
  if (s.counters.active + s.counters.reserved >= e.config.capacity) return SkipReason::full;
  if (e.config.availability.rule == AgentRule::idle_agent) {
    if (availability_stale(i, now)) return SkipReason::stale_availability;
    if (idle_agents(i, now) <= 0) return SkipReason::no_agents;
  }
  return std::nullopt;
}

uint32_t TargetPool::free_slots(TargetIndex i, Instant now) const {
  if (unavailable(i, now)) return 0;
  const Entry &e = entries_[i];
  int64_t free =
      static_cast<int64_t>(e.config.capacity) - e.state.counters.active - e.state.counters.reserved;
  if (e.config.availability.rule == AgentRule::idle_agent)
    free = std::min(free, idle_agents(i, now));
  return static_cast<uint32_t>(std::max<int64_t>(free, 0));
}

Result<Slot> TargetPool::try_reserve(TargetIndex i, Instant now) {
  if (i >= entries_.size())
    return Error{Errc::not_found, "target index " + std::to_string(i) + " out of range"};
  if (auto why = unavailable(i, now))
    return Error{Errc::busy, "target " + name(i) + ": " + skip_reason_name(*why)};
  Entry &e = entries_[i];
  ++e.state.counters.reserved;
  ++e.state.counters.offered;
  Slot slot{next_slot_++, i};
  slots_.emplace(slot.id, SlotRecord{e.uid, false, now});
  return slot;
}

TargetPool::Entry *TargetPool::entry_of(uint64_t uid) {
  auto it = by_uid_.find(uid);
  return it == by_uid_.end() ? nullptr : &entries_[it->second];
}

Status TargetPool::commit(const Slot &slot) {
  auto it = slots_.find(slot.id);
  if (it == slots_.end())
    return Status(Errc::not_found, "slot " + std::to_string(slot.id) + ": not reserved");
  if (it->second.committed)
    return Status(Errc::bad_state, "slot " + std::to_string(slot.id) + ": already committed");
  Entry *e = entry_of(it->second.target_uid);
  if (!e) {
    // The target was removed while the call was being delivered: the slot is void.
    slots_.erase(it);
    return Status(Errc::gone, "slot " + std::to_string(slot.id) + ": its target was removed");
  }
  it->second.committed = true;
  --e->state.counters.reserved;
  ++e->state.counters.active;
  ++e->state.counters.answered;
  ++e->state.availability.committed_since;
  return {};
}

Status TargetPool::end_slot(const Slot &slot, const FailReason *reason) {
  auto it = slots_.find(slot.id);
  if (it == slots_.end())
    return Status(Errc::not_found, "slot " + std::to_string(slot.id) + ": not reserved");
  if (reason && it->second.committed)
    return Status(Errc::bad_state, "slot " + std::to_string(slot.id) +
                                       ": the call was delivered; release() ends it");
  Entry *e = entry_of(it->second.target_uid);
  if (e) {
    Counters &c = e->state.counters;
    if (it->second.committed) {
      --c.active;
      ++c.completed;
    } else {
      --c.reserved;
      if (reason) ++c.failed[static_cast<size_t>(*reason)];
    }
  }
  slots_.erase(it);
  return {};
}

Status TargetPool::release(const Slot &slot) {
  return end_slot(slot, nullptr);
}

Status TargetPool::release_failed(const Slot &slot, FailReason reason) {
  return end_slot(slot, &reason);
}

std::vector<Slot> TargetPool::expire_reservations(Instant now, Duration max_age) {
  std::vector<Slot> out;
  for (auto &[id, rec] : slots_) {
    if (rec.committed || now - rec.reserved_at <= max_age) continue;
    auto t = by_uid_.find(rec.target_uid);
    out.push_back(Slot{id, t == by_uid_.end() ? TargetIndex(0) : t->second});
  }
  std::sort(out.begin(), out.end(), [](const Slot &a, const Slot &b) { return a.id < b.id; });
  for (const Slot &s : out) (void)release(s);
  return out;
}

bool TargetPool::slot_committed(const Slot &slot) const {
  auto it = slots_.find(slot.id);
  return it != slots_.end() && it->second.committed;
}

}  // namespace ivr::routing
