// RetryPolicy and its parsers: what is retried, full-jitter bounds over many seeds,
// Retry-After in both forms (and garbage), the per-call budget, determinism. Also StatusSet.
#include <doctest/doctest.h>

#include <algorithm>
#include <set>
#include <vector>

#include "net/retry_policy.h"

using namespace ivr::net;
using namespace std::chrono_literals;

namespace {

const SteadyTime t0 = SteadyTime{} + 1000h;
const SteadyTime kFar = t0 + 24h;  // a deadline that never binds
// Sun, 06 Nov 1994 08:49:37 GMT
const WallTime kRfcExample = WallTime{std::chrono::seconds{784111777}};

RetryPolicy make(RetryOptions o = {}, uint64_t seed = 1) {
  auto p = RetryPolicy::create(std::move(o), seed);
  REQUIRE(p.ok());
  return std::move(p).value();
}

AttemptOutcome status(int s, std::string method = "GET") {
  AttemptOutcome o;
  o.method = std::move(method);
  o.status = s;
  return o;
}

AttemptOutcome transport(HttpErrc e, std::string method = "GET") {
  AttemptOutcome o;
  o.method = std::move(method);
  o.error = e;
  return o;
}

}  // namespace

TEST_CASE("StatusSet: parse and contains") {
  auto s = StatusSet::parse(" 2xx, 429 ,500-504", "retry_statuses");
  REQUIRE(s.ok());
  for (int v : {200, 250, 299, 429, 500, 502, 504}) CHECK(s->contains(v));
  for (int v : {0, 199, 300, 428, 430, 499, 505}) CHECK(!s->contains(v));
  CHECK(StatusSet::parse("", "x").value().empty());
  CHECK(StatusSet::parse("5XX", "x").value().contains(503));
  for (const char *bad : {"2x", "600", "099", "abc", "500-", "-500", "504-500", "1,,2", "6xx",
                          "0xx", "200,", "20 0", "2000"}) {
    CAPTURE(bad);
    auto r = StatusSet::parse(bad, "retry_statuses");
    REQUIRE(!r.ok());
    CHECK(r.error().code == ivr::Errc::invalid_argument);
    CHECK(r.error().message.rfind("retry_statuses: \"", 0) == 0);
  }
}

TEST_CASE("RetryPolicy: option validation names the field") {
  auto expect_bad = [](RetryOptions o, const char *field) {
    auto r = RetryPolicy::create(o, 1);
    REQUIRE(!r.ok());
    CHECK(r.error().message.rfind(field, 0) == 0);
  };
  RetryOptions o;
  o.max_attempts = 0;
  expect_bad(o, "max_attempts");
  o = {};
  o.base_delay = 0ms;
  expect_bad(o, "base_delay");
  o = {};
  o.max_delay = 100ms;
  expect_bad(o, "max_delay");
  o = {};
  o.attempt_timeout = -1ms;
  expect_bad(o, "attempt_timeout");
  o = {};
  o.attempt_timeout = kMaxPolicyDuration + 1ms;
  expect_bad(o, "attempt_timeout");
  o = {};
  o.max_delay = Millis::max();
  expect_bad(o, "max_delay");
  CHECK(!RetryPolicy::create(RetryOptions{}, RetryPolicy::RandomSource{}).ok());
}

TEST_CASE("RetryPolicy: what is retryable by default") {
  auto p = make();
  for (int s : {429, 502, 503, 504}) CHECK(p.next(1, status(s), t0, kFar).retry);
  for (int s : {200, 201, 204, 301, 400, 401, 404, 409, 500, 501, 505}) {
    CAPTURE(s);
    auto d = p.next(1, status(s), t0, kFar);
    CHECK(!d.retry);
    CHECK(d.reason == GiveUpReason::not_retryable);
  }
  CHECK(p.next(1, transport(HttpErrc::timeout), t0, kFar).retry);
  CHECK(p.next(1, transport(HttpErrc::connect), t0, kFar).retry);
  for (HttpErrc e : {HttpErrc::tls, HttpErrc::too_large, HttpErrc::cancelled, HttpErrc::protocol}) {
    auto d = p.next(1, transport(e), t0, kFar);
    CHECK(!d.retry);
    CHECK(std::string(give_up_reason_name(d.reason)) == "not_retryable");
  }
  RetryOptions o;
  o.retry_statuses = StatusSet::parse("500-599", "retry_statuses").value();
  o.retry_errors = TransportErrorSet{HttpErrc::protocol};
  auto custom = make(o);
  CHECK(custom.next(1, status(500), t0, kFar).retry);
  CHECK(!custom.next(1, status(429), t0, kFar).retry);
  CHECK(custom.next(1, transport(HttpErrc::protocol), t0, kFar).retry);
  CHECK(!custom.next(1, transport(HttpErrc::timeout), t0, kFar).retry);
}

TEST_CASE("RetryPolicy: only idempotent methods, unless the request allows it") {
  for (const char *m : {"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "get"})
    CHECK(RetryPolicy::idempotent(m));
  for (const char *m : {"POST", "PATCH", "CONNECT", "TRACE", ""})
    CHECK(!RetryPolicy::idempotent(m));
  auto p = make();
  for (const char *m : {"POST", "PATCH"}) {
    auto d = p.next(1, status(503, m), t0, kFar);
    CHECK(!d.retry);
    CHECK(d.reason == GiveUpReason::not_idempotent);
    CHECK(std::string(give_up_reason_name(d.reason)) == "not_idempotent");
    auto timeout = p.next(1, transport(HttpErrc::timeout, m), t0, kFar);
    CHECK(timeout.reason == GiveUpReason::not_idempotent);
    AttemptOutcome allowed = status(503, m);
    allowed.allow_non_idempotent = true;
    CHECK(p.next(1, allowed, t0, kFar).retry);
  }
  // A non-retryable outcome wins over the method check.
  CHECK(p.next(1, status(200, "POST"), t0, kFar).reason == GiveUpReason::not_retryable);
}

TEST_CASE("RetryPolicy: max_attempts counts the first attempt") {
  RetryOptions o;
  o.max_attempts = 3;
  auto p = make(o);
  CHECK(p.next(1, status(503), t0, kFar).retry);
  CHECK(p.next(2, status(503), t0, kFar).retry);
  auto d = p.next(3, status(503), t0, kFar);
  CHECK(!d.retry);
  CHECK(d.reason == GiveUpReason::attempts_exhausted);
  CHECK(std::string(give_up_reason_name(d.reason)) == "attempts_exhausted");
  o.max_attempts = 1;
  CHECK(make(o).next(1, status(503), t0, kFar).reason == GiveUpReason::attempts_exhausted);
}

TEST_CASE("RetryPolicy: backoff cap doubles per attempt up to max_delay, without overflow") {
  RetryOptions o;
  o.base_delay = 100ms;
  o.max_delay = 1000ms;
  auto p = make(o);
  CHECK(p.backoff_cap(0) == 100ms);
  CHECK(p.backoff_cap(1) == 100ms);
  CHECK(p.backoff_cap(2) == 200ms);
  CHECK(p.backoff_cap(3) == 400ms);
  CHECK(p.backoff_cap(4) == 800ms);
  CHECK(p.backoff_cap(5) == 1000ms);
  CHECK(p.backoff_cap(63) == 1000ms);
  CHECK(p.backoff_cap(64) == 1000ms);
  CHECK(p.backoff_cap(4'000'000'000u) == 1000ms);
  o.max_delay = kMaxPolicyDuration;
  auto huge = make(o);
  CHECK(huge.backoff_cap(20) == Millis{100LL << 19});
  CHECK(huge.backoff_cap(21) == kMaxPolicyDuration);
  CHECK(huge.backoff_cap(62) == kMaxPolicyDuration);
}

TEST_CASE("RetryPolicy: full jitter stays in [0, cap] and covers it, over many seeds") {
  RetryOptions o;
  o.base_delay = 100ms;
  o.max_delay = 3000ms;
  o.max_attempts = 10;
  for (uint32_t attempt = 1; attempt <= 7; ++attempt) {
    CAPTURE(attempt);
    const Millis cap = std::min(Millis{100 << (attempt - 1)}, 3000ms);
    Millis lo = Millis::max(), hi{0};
    double sum = 0;
    const int kSeeds = 2000;
    for (int seed = 0; seed < kSeeds; ++seed) {
      auto p = make(o, static_cast<uint64_t>(seed));
      auto d = p.next(attempt, status(503), t0, kFar);
      REQUIRE(d.retry);
      REQUIRE(d.delay >= 0ms);
      REQUIRE(d.delay <= cap);
      CHECK(!d.from_retry_after);
      lo = std::min(lo, d.delay);
      hi = std::max(hi, d.delay);
      sum += static_cast<double>(d.delay.count());
    }
    CHECK(lo.count() <= cap.count() / 50);
    CHECK(hi.count() >= cap.count() * 49 / 50);
    const double mean = sum / kSeeds;  // uniform on [0, cap]: cap / 2
    CHECK(mean > cap.count() * 0.45);
    CHECK(mean < cap.count() * 0.55);
  }
}

TEST_CASE("RetryPolicy: deterministic for a seed; the random source is injected") {
  auto sequence = [](uint64_t seed) {
    auto p = make({}, seed);
    std::vector<Millis> out;
    for (int i = 0; i < 20; ++i) out.push_back(p.next(2, status(503), t0, kFar).delay);
    return out;
  };
  CHECK(sequence(42) == sequence(42));
  CHECK(sequence(42) != sequence(43));
  // A fixed source gives exact delays: r % (cap + 1).
  RetryOptions o;
  o.base_delay = 100ms;
  auto fixed = RetryPolicy::create(o, [] { return uint64_t{150}; });
  REQUIRE(fixed.ok());
  CHECK(fixed->next(1, status(503), t0, kFar).delay == 150ms % 101);
  CHECK(fixed->next(2, status(503), t0, kFar).delay == 150ms);
  auto top = RetryPolicy::create(o, [] { return ~uint64_t{0}; });
  CHECK(top->next(1, status(503), t0, kFar).delay <= 100ms);
}

TEST_CASE("parse_http_date: the three forms of RFC 9110") {
  CHECK(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").value() == kRfcExample);
  CHECK(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT").value() == kRfcExample);
  CHECK(parse_http_date("Sun Nov  6 08:49:37 1994").value() == kRfcExample);
  CHECK(parse_http_date("Sun Nov 06 08:49:37 1994").value() == kRfcExample);
  CHECK(parse_http_date("  Sun, 06 Nov 1994 08:49:37 GMT ").value() == kRfcExample);
  CHECK(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT").value() == WallTime{});
  CHECK(parse_http_date("Tue, 29 Feb 2028 23:59:59 GMT").value() ==
        WallTime{std::chrono::seconds{1835481599}});
  CHECK(parse_http_date("Wednesday, 01-Mar-28 00:00:00 GMT").value() ==
        WallTime{std::chrono::seconds{1835481600}});
  CHECK(parse_http_date("Fri, 31 Dec 9999 23:59:59 GMT").ok());
}

TEST_CASE("parse_http_date: garbage is rejected with a reason") {
  for (const char *bad :
       {"", "garbage", "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 94 08:49:37 GMT", "sun, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 08:49:37 GMT x",
        "Sun, 06 Nov 1994 24:00:00 GMT", "Sun, 06 Nov 1994 08:60:00 GMT",
        "Sun, 31 Nov 1994 08:49:37 GMT", "Sat, 29 Feb 2025 00:00:00 GMT",
        "Sun, 00 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-1994 08:49:37 GMT",
        "Sun Nov 6 08:49:37 1994", "Sun Nov  6 08:49:37 94", "Sun, 06 Nov 1994 8:49:37 GMT",
        "Funday, 06-Nov-94 08:49:37 GMT", "Sun,06 Nov 1994 08:49:37 GMT"}) {
    CAPTURE(bad);
    auto r = parse_http_date(bad);
    REQUIRE(!r.ok());
    CHECK(r.error().code == ivr::Errc::parse);
    CHECK(r.error().message.rfind("HTTP-date: ", 0) == 0);
  }
}

TEST_CASE("parse_retry_after: delta-seconds, dates against Date or received_at, garbage") {
  CHECK(parse_retry_after("0", "", {}).value() == 0ms);
  CHECK(parse_retry_after("120", "", {}).value() == 120000ms);
  CHECK(parse_retry_after(" 7\t", "", {}).value() == 7000ms);
  CHECK(parse_retry_after("99999999999999999999999999", "", {}).value() ==
        Millis{1'000'000'000'000LL});
  // A date, measured against the server's Date header (clock skew cancels out)...
  const WallTime skewed_local = kRfcExample + 3h;
  CHECK(parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", "Sun, 06 Nov 1994 08:49:37 GMT",
                          skewed_local)
            .value() == 30000ms);
  // ...or against received_at when there is no (valid) Date.
  CHECK(parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", "", kRfcExample).value() == 30000ms);
  CHECK(parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", "yesterday", kRfcExample).value() ==
        30000ms);
  CHECK(parse_retry_after("Sun Nov  6 08:51:37 1994", "", kRfcExample).value() == 120000ms);
  // A date in the past is no wait.
  CHECK(parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", "", kRfcExample).value() == 0ms);
  auto no_clock = parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", "", {});
  REQUIRE(!no_clock.ok());
  CHECK(no_clock.error().message.find("no clock") != std::string::npos);
  for (const char *bad : {"", "  ", "-5", "+5", "1.5", "5s", "soon", "0x10", "1 2"}) {
    CAPTURE(bad);
    auto r = parse_retry_after(bad, "", kRfcExample);
    REQUIRE(!r.ok());
    CHECK(r.error().code == ivr::Errc::parse);
    CHECK(r.error().message.rfind("Retry-After: ", 0) == 0);
  }
  // The message quotes at most 64 bytes of a hostile value.
  auto long_garbage = parse_retry_after(std::string(10000, 'x'), "", kRfcExample);
  REQUIRE(!long_garbage.ok());
  CHECK(long_garbage.error().message.size() < 300);
}

TEST_CASE("RetryPolicy: Retry-After is honoured, capped by max_delay; garbage falls back") {
  RetryOptions o;
  o.max_delay = 5000ms;
  auto p = make(o);
  AttemptOutcome busy = status(503);
  busy.retry_after = "2";
  auto d = p.next(1, busy, t0, kFar);
  CHECK(d.retry);
  CHECK(d.delay == 2000ms);
  CHECK(d.from_retry_after);
  busy.retry_after = "3600";
  CHECK(p.next(1, busy, t0, kFar).delay == 5000ms);
  AttemptOutcome limited = status(429);
  limited.retry_after = "Sun, 06 Nov 1994 08:49:40 GMT";
  limited.date = "Sun, 06 Nov 1994 08:49:37 GMT";
  CHECK(p.next(1, limited, t0, kFar).delay == 3000ms);
  limited.date.clear();
  limited.received_at = kRfcExample + 1s;
  CHECK(p.next(1, limited, t0, kFar).delay == 2000ms);
  AttemptOutcome junk = status(503);
  junk.retry_after = "whenever";
  auto fallback = p.next(1, junk, t0, kFar);
  CHECK(fallback.retry);
  CHECK(!fallback.from_retry_after);
  CHECK(fallback.delay <= p.backoff_cap(1));
  o.honour_retry_after = false;
  auto ignoring = make(o);
  busy.retry_after = "3";
  CHECK(!ignoring.next(1, busy, t0, kFar).from_retry_after);
  // A Retry-After on a non-retryable status changes nothing.
  AttemptOutcome not_found = status(404);
  not_found.retry_after = "1";
  CHECK(p.next(1, not_found, t0, kFar).reason == GiveUpReason::not_retryable);
}

TEST_CASE("RetryPolicy: the budget: delay plus one attempt's timeout must end by the deadline") {
  RetryOptions o;
  o.attempt_timeout = 2000ms;
  o.base_delay = 1000ms;
  o.max_delay = 8000ms;
  o.max_attempts = 10;
  auto p = make(o);
  // Not even an immediate retry fits.
  auto d = p.next(1, status(503), t0, t0 + 1999ms);
  CHECK(!d.retry);
  CHECK(d.reason == GiveUpReason::budget_exhausted);
  CHECK(std::string(give_up_reason_name(d.reason)) == "budget_exhausted");
  CHECK(p.next(1, status(503), t0, t0 - 1s).reason == GiveUpReason::budget_exhausted);
  // Exactly the attempt's timeout left: an immediate retry fits.
  auto exact = p.next(4, status(503), t0, t0 + 2000ms);
  CHECK(exact.retry);
  CHECK(exact.delay == 0ms);
  // The jitter's bound is lowered to what the budget leaves, over many seeds.
  for (uint64_t seed = 0; seed < 500; ++seed) {
    auto q = make(o, seed);
    auto r = q.next(4, status(503), t0, t0 + 2300ms);  // cap would be 8000 ms
    REQUIRE(r.retry);
    CHECK(r.delay <= 300ms);
  }
  // Retry-After must fit as it is: the server asked for that long.
  AttemptOutcome busy = status(503);
  busy.retry_after = "5";
  CHECK(p.next(1, busy, t0, t0 + 7000ms).delay == 5000ms);
  auto late = p.next(1, busy, t0, t0 + 6999ms);
  CHECK(!late.retry);
  CHECK(late.reason == GiveUpReason::budget_exhausted);
  // Attempts are checked before the budget.
  CHECK(p.next(10, status(503), t0, t0).reason == GiveUpReason::attempts_exhausted);
}

TEST_CASE("RetryPolicy: a whole call's schedule never passes its deadline") {
  RetryOptions o;
  o.attempt_timeout = 1000ms;
  o.base_delay = 200ms;
  o.max_delay = 4000ms;
  o.max_attempts = 50;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    auto p = make(o, seed);
    const SteadyTime deadline = t0 + 10s;
    SteadyTime now = t0;
    uint32_t attempt = 1;
    while (true) {
      now += o.attempt_timeout;  // each attempt times out
      REQUIRE(now <= deadline);
      auto d = p.next(attempt, transport(HttpErrc::timeout), now, deadline);
      if (!d.retry) {
        CHECK(d.reason == GiveUpReason::budget_exhausted);
        break;
      }
      now += d.delay;
      ++attempt;
      REQUIRE(attempt < 50);
    }
  }
}

TEST_CASE("AttemptOutcome::of reads the request and the response") {
  HttpRequest req;
  req.method = "PUT";
  HttpResponse res;
  res.status = 503;
  res.headers = {{"RETRY-AFTER", "4"}, {"date", "Sun, 06 Nov 1994 08:49:37 GMT"}};
  auto o = AttemptOutcome::of(req, res, kRfcExample, true);
  CHECK(o.method == "PUT");
  CHECK(o.allow_non_idempotent);
  CHECK(o.status == 503);
  CHECK(o.retry_after == "4");
  CHECK(o.date == "Sun, 06 Nov 1994 08:49:37 GMT");
  CHECK(o.received_at == kRfcExample);
  HttpResponse failed;
  failed.error = HttpErrc::connect;
  auto f = AttemptOutcome::of(req, failed, kRfcExample);
  CHECK(f.error == HttpErrc::connect);
  CHECK(f.retry_after.empty());
}

TEST_CASE("parse_http_date: dates beyond what system_clock holds are clamped, not overflowed") {
  auto far = parse_http_date("Fri, 31 Dec 9999 23:59:59 GMT");
  REQUIRE(far.ok());
  CHECK(*far > parse_http_date("Sat, 01 Jan 2250 00:00:00 GMT").value());
  auto ancient = parse_http_date("Mon, 01 Jan 0001 00:00:00 GMT");
  REQUIRE(ancient.ok());
  CHECK(*ancient < parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT").value());
  // Far future against an ancient Date header: a huge delay, later capped by max_delay.
  auto delay =
      parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", "Mon, 01 Jan 0001 00:00:00 GMT", {});
  REQUIRE(delay.ok());
  CHECK(*delay > Millis{0});
  RetryOptions o;
  auto p = RetryPolicy::create(o, 1).value();
  AttemptOutcome busy;
  busy.status = 503;
  busy.retry_after = "Fri, 31 Dec 9999 23:59:59 GMT";
  busy.received_at = kRfcExample;
  CHECK(p.next(1, busy, t0, kFar).delay == o.max_delay);
}
