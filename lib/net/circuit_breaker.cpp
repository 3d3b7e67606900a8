#include "net/circuit_breaker.h"

#include <algorithm>
#include <cmath>

namespace ivr::net {

const char *breaker_state_name(BreakerState s) {
  switch (s) {
    case BreakerState::closed:
      return "closed";
    case BreakerState::open:
      return "open";
    case BreakerState::half_open:
      return "half_open";
  }
  return "?";
}

const char *breaker_outcome_name(BreakerOutcome o) {
  switch (o) {
    case BreakerOutcome::success:
      return "success";
    case BreakerOutcome::failure:
      return "failure";
    case BreakerOutcome::neutral:
      return "neutral";
  }
  return "?";
}

Status CircuitBreakerOptions::validate() const {
  auto bad = [](const char *field, const char *why) {
    return Status(Errc::invalid_argument, std::string(field) + ": " + why);
  };
  if (failure_threshold < 1) return bad("failure_threshold", "must be at least 1");
  if (cooldown.count() <= 0) return bad("cooldown", "must be positive");
  if (!std::isfinite(cooldown_growth) || cooldown_growth < 1.0)
    return bad("cooldown_growth", "must be a finite number >= 1");
  if (max_cooldown < cooldown) return bad("max_cooldown", "must be at least cooldown");
  if (max_cooldown > kMaxPolicyDuration) return bad("max_cooldown", "must be at most 24 hours");
  if (half_open_probes < 1) return bad("half_open_probes", "must be at least 1");
  if (probe_timeout.count() <= 0) return bad("probe_timeout", "must be positive");
  if (probe_timeout > kMaxPolicyDuration) return bad("probe_timeout", "must be at most 24 hours");
  if (max_hosts < 1) return bad("max_hosts", "must be at least 1");
  return {};
}

Result<CircuitBreakers> CircuitBreakers::create(CircuitBreakerOptions options,
                                                StateCallback on_change) {
  if (Status s = options.validate(); !s.ok()) return s.error();
  return CircuitBreakers(std::move(options), std::move(on_change));
}

BreakerOutcome CircuitBreakers::classify(HttpErrc error, int status) const {
  if (error != HttpErrc::none)
    return options_.failure_errors.contains(error) ? BreakerOutcome::failure
                                                   : BreakerOutcome::neutral;
  return options_.failure_statuses.contains(status) ? BreakerOutcome::failure
                                                    : BreakerOutcome::success;
}

CircuitBreakers::Lru::iterator CircuitBreakers::touch(std::string_view host) {
  if (auto found = index_.find(host); found != index_.end()) {
    lru_.splice(lru_.begin(), lru_, found->second);
    return found->second;
  }
  if (lru_.size() >= options_.max_hosts) {
    // Prefer forgetting a host that carries no information (closed, no failures); only
    // then the least recently used one whatever its state.
    auto victim = std::prev(lru_.end());
    for (auto it = lru_.rbegin(); it != lru_.rend(); ++it) {
      if (it->state == BreakerState::closed && it->consecutive_failures == 0) {
        victim = std::prev(it.base());
        break;
      }
    }
    index_.erase(std::string_view(victim->host));
    lru_.erase(victim);
    ++counters_.evictions;
  }
  Breaker b;
  b.host = std::string(host);
  b.cooldown = options_.cooldown;
  b.generation = next_generation_++;
  lru_.push_front(std::move(b));
  index_.emplace(std::string_view(lru_.front().host), lru_.begin());
  return lru_.begin();
}

void CircuitBreakers::transition(Breaker &b, BreakerState to, SteadyTime now,
                                 std::optional<BreakerTransition> &event) {
  BreakerTransition t;
  t.host = b.host;
  t.from = b.state;
  t.to = to;
  t.consecutive_failures = b.consecutive_failures;
  t.at = now;
  b.state = to;
  b.generation = next_generation_++;
  b.probes_admitted = b.probes_in_flight = b.probes_succeeded = 0;
  switch (to) {
    case BreakerState::open:
      ++counters_.opened;
      break;
    case BreakerState::half_open:
      ++counters_.half_opened;
      break;
    case BreakerState::closed:
      ++counters_.closed;
      break;
  }
  if (to == BreakerState::open) t.cooldown = b.cooldown;
  event = std::move(t);
}

void CircuitBreakers::open(Breaker &b, SteadyTime now, std::optional<BreakerTransition> &event) {
  // cooldown * growth^probe_failures, capped; computed in double so it cannot overflow.
  double ms = static_cast<double>(options_.cooldown.count()) *
              std::pow(options_.cooldown_growth, static_cast<double>(b.probe_failures));
  double cap = static_cast<double>(options_.max_cooldown.count());
  b.cooldown = Millis{static_cast<int64_t>(std::min(ms, cap))};
  b.open_until = now + b.cooldown;
  transition(b, BreakerState::open, now, event);
}

void CircuitBreakers::notify(std::optional<BreakerTransition> &event) {
  if (event && on_change_) on_change_(*event);
}

Admission CircuitBreakers::allow(std::string_view host, SteadyTime now) {
  Breaker &b = *touch(host);
  std::optional<BreakerTransition> event;
  Admission a;
  if (b.state == BreakerState::open) {
    if (now < b.open_until) {
      a.allowed = false;
      a.retry_after = std::chrono::ceil<Millis>(b.open_until - now);
    } else {
      transition(b, BreakerState::half_open, now, event);
    }
  }
  if (b.state == BreakerState::half_open) {
    if (b.probes_in_flight > 0 && now >= b.probe_deadline) {  // lost completions
      b.probes_admitted -= b.probes_in_flight;
      b.probes_in_flight = 0;
    }
    if (b.probes_admitted < options_.half_open_probes) {
      ++b.probes_admitted;
      ++b.probes_in_flight;
      b.probe_deadline = now + options_.probe_timeout;
      a.probe = true;
    } else {
      a.allowed = false;
      a.retry_after = std::max(Millis{0}, std::chrono::ceil<Millis>(b.probe_deadline - now));
    }
  }
  a.generation = b.generation;
  if (a.allowed)
    ++counters_.allowed;
  else
    ++counters_.rejected;
  notify(event);
  return a;
}

void CircuitBreakers::record(std::string_view host, BreakerOutcome outcome, SteadyTime now,
                             std::optional<uint64_t> generation) {
  if (outcome != BreakerOutcome::failure && !index_.contains(host)) return;  // nothing to learn
  Breaker &b = *touch(host);
  if ((generation && *generation != b.generation) || b.state == BreakerState::open) {
    ++counters_.ignored;
    return;
  }
  std::optional<BreakerTransition> event;
  if (b.state == BreakerState::closed) {
    if (outcome == BreakerOutcome::success) {
      b.consecutive_failures = 0;
    } else if (outcome == BreakerOutcome::failure) {
      if (++b.consecutive_failures >= options_.failure_threshold) open(b, now, event);
    }
  } else {  // half_open
    switch (outcome) {
      case BreakerOutcome::success:
        if (b.probes_in_flight > 0) --b.probes_in_flight;
        if (++b.probes_succeeded >= options_.half_open_probes) {
          b.consecutive_failures = 0;
          b.probe_failures = 0;
          b.cooldown = options_.cooldown;
          transition(b, BreakerState::closed, now, event);
        }
        break;
      case BreakerOutcome::failure:
        ++b.consecutive_failures;
        ++b.probe_failures;
        open(b, now, event);
        break;
      case BreakerOutcome::neutral:
        if (b.probes_in_flight > 0) {
          --b.probes_in_flight;
          --b.probes_admitted;
        }
        break;
    }
  }
  notify(event);
}

std::optional<BreakerSnapshot> CircuitBreakers::snapshot(std::string_view host) const {
  auto found = index_.find(host);
  if (found == index_.end()) return std::nullopt;
  const Breaker &b = *found->second;
  BreakerSnapshot s;
  s.state = b.state;
  s.consecutive_failures = b.consecutive_failures;
  s.cooldown = b.cooldown;
  s.open_until = b.open_until;
  s.probes_admitted = b.probes_admitted;
  s.probes_succeeded = b.probes_succeeded;
  return s;
}

}  // namespace ivr::net
