// HealthTracker: probe results in, up/down out, with hysteresis so alternating results
// cannot make a target flap. Pure logic; the caller passes the time of every result.
#pragma once

#include <chrono>
#include <cstdint>

#include "routing/model.h"

namespace ivr::routing {

struct HealthThresholds {
  uint32_t down_after = 2;  // consecutive failures that take an up target down (>= 1)
  uint32_t up_after = 3;    // consecutive successes that bring a down target up (>= 1)
  Duration min_hold{0};     // a state is kept at least this long after it was entered

  static HealthThresholds from(const ProbeConfig &probe) {
    return {probe.down_after, probe.up_after, std::chrono::seconds(probe.min_hold_s)};
  }
};

// Rules (docs/routing.md, "Health"):
// - up -> down after `down_after` consecutive failures; down -> up after `up_after`
//   consecutive successes. Any result of the other kind resets the streak, so an
//   alternating sequence never changes the state when both thresholds are >= 2.
// - With min_hold, a streak that reaches its threshold before the hold has passed does not
//   change the state yet; the change happens at the first result after the hold that still
//   continues the streak.
class HealthTracker {
 public:
  explicit HealthTracker(HealthThresholds thresholds = {}, bool up = true, Instant since = {})
      : t_(thresholds), up_(up), since_(since) {}

  // Records one probe result. Returns true when this result changed the state.
  bool record(bool success, Instant now);

  // An operator's or the delivery side's verdict: sets the state now and clears the streaks.
  // Returns true when the state changed.
  bool force(bool up, Instant now);

  // New thresholds (reconfiguration); the state and streaks are kept.
  void set_thresholds(HealthThresholds t) { t_ = t; }
  const HealthThresholds &thresholds() const { return t_; }

  bool up() const { return up_; }
  Instant since() const { return since_; }           // when the current state was entered
  uint32_t failures() const { return failures_; }    // consecutive, current streak
  uint32_t successes() const { return successes_; }  // consecutive, current streak
  uint64_t changes() const { return changes_; }      // state changes so far

 private:
  HealthThresholds t_;
  bool up_;
  Instant since_;
  uint32_t failures_ = 0;
  uint32_t successes_ = 0;
  uint64_t changes_ = 0;
};

}  // namespace ivr::routing
