// CircuitBreakers: one circuit breaker per origin ("scheme://host:port", see origin_of()),
// kept in a bounded registry. A pure state machine: it never reads a clock (every time is
// passed in as `now`) and does no I/O.
//
// Model: consecutive failures.
//   closed    -- failure_threshold failures in a row -------------------------> open
//   open      -- allow() once `cooldown` has passed since opening ------------> half_open
//   half_open -- half_open_probes probes admitted; all succeed ---------------> closed
//             -- any probe fails ---------------------------------------------> open, with
//                the cool-down multiplied by cooldown_growth (capped at max_cooldown)
// Closing resets the cool-down to its base value. An outcome recorded for a request admitted
// in an earlier state (tracked by Admission::generation) is ignored, so a burst of late
// failures from before a trip neither extends the cool-down nor reopens a recovered circuit.
//
// Threading: not thread-safe. The registry belongs to the engine loop and is used only there.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/result.h"
#include "net/http_client.h"
#include "net/policy_common.h"

namespace ivr::net {

enum class BreakerState : uint8_t { closed, open, half_open };
const char *breaker_state_name(BreakerState s);  // "closed", "open", "half_open"

// What one finished request says about its host.
enum class BreakerOutcome : uint8_t {
  success,  // resets the failure count; a probe's success counts towards closing
  failure,  // counts towards opening; a probe's failure reopens
  neutral,  // says nothing about the host (cancelled, response too large): frees a probe slot
};
const char *breaker_outcome_name(BreakerOutcome o);

struct CircuitBreakerOptions {
  uint32_t failure_threshold = 5;  // consecutive failures that open a closed circuit (>= 1)
  Millis cooldown{5000};           // how long a circuit stays open the first time (> 0)
  double cooldown_growth = 2.0;    // factor per probe failure in a row (>= 1)
  Millis max_cooldown{60000};      // cap on the grown cool-down (cooldown..kMaxPolicyDuration)
  uint32_t half_open_probes = 1;   // requests let through while half-open (>= 1)
  // A probe whose outcome is not recorded within this time is forgotten and its slot freed
  // (a lost completion must not wedge the circuit half-open).
  Millis probe_timeout{30000};  // (0, kMaxPolicyDuration]
  // Failures: these statuses and these transport errors. Every other status is a success;
  // every other transport error (by default cancelled and too_large) is neutral.
  StatusSet failure_statuses{{500, 599}, {429, 429}};
  TransportErrorSet failure_errors{HttpErrc::timeout, HttpErrc::connect, HttpErrc::tls,
                                   HttpErrc::protocol};
  size_t max_hosts = 1024;  // registry bound (>= 1)
  // Errc::invalid_argument naming the field and the reason.
  Status validate() const;
};

// The answer of allow().
struct Admission {
  bool allowed = true;
  bool probe = false;       // admitted as a half-open probe
  Millis retry_after{0};    // when rejected: how long until a request may be let through
  uint64_t generation = 0;  // hand back to record()
  // "circuit_open" when rejected (open, or half-open with every probe slot taken), else "".
  const char *reason() const { return allowed ? "" : "circuit_open"; }
};

// One state change, reported to the callback after the registry is updated.
struct BreakerTransition {
  std::string host;
  BreakerState from = BreakerState::closed;
  BreakerState to = BreakerState::closed;
  Millis cooldown{0};  // to == open: how long it stays open
  uint32_t consecutive_failures = 0;
  SteadyTime at;
};

// A read-only view of one host's breaker.
struct BreakerSnapshot {
  BreakerState state = BreakerState::closed;  // as last updated (open -> half_open is lazy)
  uint32_t consecutive_failures = 0;
  Millis cooldown{0};     // the current (possibly grown) cool-down
  SteadyTime open_until;  // meaningful when open
  uint32_t probes_admitted = 0;
  uint32_t probes_succeeded = 0;
};

struct BreakerCounters {
  uint64_t allowed = 0;
  uint64_t rejected = 0;
  uint64_t opened = 0;  // transitions to open (from closed or half_open)
  uint64_t half_opened = 0;
  uint64_t closed = 0;     // transitions half_open -> closed
  uint64_t ignored = 0;    // outcomes from an earlier generation, dropped
  uint64_t evictions = 0;  // hosts dropped from the registry for room
};

class CircuitBreakers {
 public:
  using StateCallback = std::function<void(const BreakerTransition &)>;

  // on_change runs synchronously inside allow()/record(), after the state is updated.
  static Result<CircuitBreakers> create(CircuitBreakerOptions options = {},
                                        StateCallback on_change = {});

  // May a request to `host` go out now? Moves an open circuit whose cool-down has passed to
  // half_open. Each admitted request must later be reported with record() (a cancelled one
  // as neutral), else a half-open probe slot stays taken until probe_timeout.
  Admission allow(std::string_view host, SteadyTime now);

  // Reports how an admitted request ended. `generation` comes from its Admission; without
  // it the outcome is taken as belonging to the current state. Outcomes recorded while the
  // circuit is open are always ignored.
  void record(std::string_view host, BreakerOutcome outcome, SteadyTime now,
              std::optional<uint64_t> generation = std::nullopt);
  void record(std::string_view host, const HttpResponse &response, SteadyTime now,
              std::optional<uint64_t> generation = std::nullopt) {
    record(host, classify(response.error, response.status), now, generation);
  }

  BreakerOutcome classify(HttpErrc error, int status) const;
  std::optional<BreakerSnapshot> snapshot(std::string_view host) const;
  size_t size() const { return index_.size(); }
  const BreakerCounters &counters() const { return counters_; }
  const CircuitBreakerOptions &options() const { return options_; }

 private:
  struct Breaker {
    std::string host;
    BreakerState state = BreakerState::closed;
    uint32_t consecutive_failures = 0;
    uint32_t probe_failures = 0;  // half-open failures in a row: the cool-down's exponent
    Millis cooldown{0};
    SteadyTime open_until;
    uint32_t probes_admitted = 0;
    uint32_t probes_in_flight = 0;
    uint32_t probes_succeeded = 0;
    SteadyTime probe_deadline;  // in-flight probes are forgotten at this time
    uint64_t generation = 0;
  };
  using Lru = std::list<Breaker>;  // front = most recently used

  CircuitBreakers(CircuitBreakerOptions options, StateCallback on_change)
      : options_(std::move(options)), on_change_(std::move(on_change)) {}
  Lru::iterator touch(std::string_view host);
  void transition(Breaker &b, BreakerState to, SteadyTime now,
                  std::optional<BreakerTransition> &event);
  void open(Breaker &b, SteadyTime now, std::optional<BreakerTransition> &event);
  void notify(std::optional<BreakerTransition> &event);

  CircuitBreakerOptions options_;
  StateCallback on_change_;
  Lru lru_;
  std::unordered_map<std::string_view, Lru::iterator> index_;  // views into Breaker::host
  uint64_t next_generation_ = 1;
  BreakerCounters counters_;
};

}  // namespace ivr::net
