#include "routing/health.h"

namespace ivr::routing {

bool HealthTracker::record(bool success, Instant now) {
  if (success) {
    failures_ = 0;
    if (successes_ < UINT32_MAX) ++successes_;
  } else {
    successes_ = 0;
    if (failures_ < UINT32_MAX) ++failures_;
  }
  bool held = now - since_ >= t_.min_hold;
  if (up_ && failures_ >= t_.down_after && held) return force(false, now);
  if (!up_ && successes_ >= t_.up_after && held) return force(true, now);
  return false;
}

bool HealthTracker::force(bool up, Instant now) {
  failures_ = successes_ = 0;
  if (up == up_) return false;
  up_ = up;
  since_ = now;
  ++changes_;
  return true;
}

}  // namespace ivr::routing
