// RetryPolicy: decides whether and when a failed HTTP attempt is tried again. Exponential
// backoff with *full jitter* (delay drawn uniformly from [0, min(max_delay, base * 2^(n-1))]
// after attempt n), Retry-After honoured (capped by max_delay), idempotent methods only
// unless the request allows more, and a per-call decision budget: a retry is scheduled only
// if its delay plus one attempt's timeout still ends by the call's deadline.
//
// Deterministic: it never reads a clock (`now`, the deadline and the wall-clock time of the
// response are passed in) and draws randomness from an injected source (a seeded
// SplitMix64 by default). Not thread-safe: one policy belongs to the engine loop.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "net/http_client.h"
#include "net/policy_common.h"

namespace ivr::net {

using WallTime = std::chrono::system_clock::time_point;

// Retry-After (RFC 9110 section 10.2.3) as a delay from the moment the response arrived:
// delta-seconds ("120"), or an HTTP-date in any of the three forms (IMF-fixdate
// "Sun, 06 Nov 1994 08:49:37 GMT", RFC 850 "Sunday, 06-Nov-94 08:49:37 GMT", asctime
// "Sun Nov  6 08:49:37 1994"). A date is measured against the response's Date header when it
// has a valid one (the server's own clock, so clock skew cancels out), else against
// `received_at`; a date in the past is a zero delay. Huge delta-seconds saturate.
// Errc::parse "Retry-After: ..." for anything else, and for a date with neither a valid
// Date header nor a received_at (the epoch means "unknown").
Result<Millis> parse_retry_after(std::string_view value, std::string_view date_header,
                                 WallTime received_at);
// One HTTP-date in any of the three forms above; Errc::parse naming the reason. Two-digit
// RFC 850 years are 19yy for 70..99, else 20yy.
Result<WallTime> parse_http_date(std::string_view text);

struct RetryOptions {
  uint32_t max_attempts = 3;     // attempts in all, the first included (1 = never retry)
  Millis base_delay{200};        // backoff scale (> 0)
  Millis max_delay{5000};        // cap on any delay, Retry-After included (>= base_delay;
                                 // at most kMaxPolicyDuration, as is attempt_timeout)
  Millis attempt_timeout{5000};  // one attempt's timeout (the request's timeout_ms):
                                 // a retry must fit delay + attempt_timeout before deadline
  StatusSet retry_statuses = StatusSet::of({429, 502, 503, 504});
  TransportErrorSet retry_errors{HttpErrc::timeout, HttpErrc::connect};
  bool honour_retry_after = true;
  // Errc::invalid_argument naming the field and the reason.
  Status validate() const;
};

// What next() needs to know about the attempt that just finished.
struct AttemptOutcome {
  std::string method = "GET";
  bool allow_non_idempotent = false;  // the request explicitly allows retrying e.g. a POST
  HttpErrc error = HttpErrc::none;
  int status = 0;
  std::string retry_after;  // the Retry-After header, "" when absent
  std::string date;         // the Date header, "" when absent
  WallTime received_at{};   // wall-clock time the response arrived (for HTTP-date forms)

  static AttemptOutcome of(const HttpRequest &request, const HttpResponse &response,
                           WallTime received_at, bool allow_non_idempotent = false);
};

enum class GiveUpReason : uint8_t {
  none,                // not giving up: a retry is scheduled
  not_retryable,       // the outcome is not in the retry sets (a success included)
  not_idempotent,      // the method is not idempotent and the request did not allow it
  attempts_exhausted,  // max_attempts reached
  budget_exhausted,    // the delay plus one attempt's timeout would pass the deadline
};
// "not_retryable", "not_idempotent", "attempts_exhausted", "budget_exhausted" ("" for none).
const char *give_up_reason_name(GiveUpReason r);

struct RetryDecision {
  bool retry = false;
  Millis delay{0};  // retry: wait this long, then start the next attempt
  GiveUpReason reason = GiveUpReason::none;
  bool from_retry_after = false;  // retry: the delay came from a Retry-After header

  static RetryDecision retry_after(Millis d, bool from_header = false) {
    return {true, d, GiveUpReason::none, from_header};
  }
  static RetryDecision give_up(GiveUpReason why) { return {false, Millis{0}, why, false}; }
};

class RetryPolicy {
 public:
  using RandomSource = std::function<uint64_t()>;  // uniformly distributed 64-bit values

  static Result<RetryPolicy> create(RetryOptions options, uint64_t seed);
  static Result<RetryPolicy> create(RetryOptions options, RandomSource random);

  // After attempt number `attempt` (1-based) ended with `outcome`: retry after a delay, or
  // give up and why. Checks in this order: retryable outcome, idempotent method, attempts
  // left, budget. With a usable Retry-After (and honour_retry_after) the delay is
  // min(Retry-After, max_delay) and must fit the budget as is; otherwise the full-jitter
  // draw's upper bound is also lowered to what the budget leaves.
  RetryDecision next(uint32_t attempt, const AttemptOutcome &outcome, SteadyTime now,
                     SteadyTime deadline);

  bool retryable(const AttemptOutcome &outcome) const;
  // GET, HEAD, PUT, DELETE, OPTIONS (ASCII case-insensitive).
  static bool idempotent(std::string_view method);
  // The full-jitter bound after attempt n: min(max_delay, base_delay * 2^(n-1)).
  Millis backoff_cap(uint32_t attempt) const;
  const RetryOptions &options() const { return options_; }

 private:
  RetryPolicy(RetryOptions options, RandomSource random)
      : options_(std::move(options)), random_(std::move(random)) {}
  Millis uniform(Millis upper);  // uniformly in [0, upper]

  RetryOptions options_;
  RandomSource random_;
};

}  // namespace ivr::net
