// CircuitBreakers: transitions, half-open probe limits, cool-down growth and cap, late
// outcomes, the bounded registry, the state-change callback, and no flapping under a steady
// failure pattern. Time is a virtual steady clock.
#include <doctest/doctest.h>

#include <vector>

#include "net/circuit_breaker.h"

using namespace ivr::net;
using namespace std::chrono_literals;

namespace {

const SteadyTime t0 = SteadyTime{} + 1000h;
const std::string kHost = "https://api.example.com:443";

struct Recorder {
  std::vector<BreakerTransition> events;
  CircuitBreakers::StateCallback callback() {
    return [this](const BreakerTransition &t) { events.push_back(t); };
  }
};

CircuitBreakers make(CircuitBreakerOptions o = {}, CircuitBreakers::StateCallback cb = {}) {
  auto b = CircuitBreakers::create(std::move(o), std::move(cb));
  REQUIRE(b.ok());
  return std::move(b).value();
}

void fail(CircuitBreakers &b, int times, SteadyTime now, const std::string &host = kHost) {
  for (int i = 0; i < times; ++i) {
    Admission a = b.allow(host, now);
    REQUIRE(a.allowed);
    b.record(host, BreakerOutcome::failure, now, a.generation);
  }
}

BreakerState state(const CircuitBreakers &b, const std::string &host = kHost) {
  auto s = b.snapshot(host);
  REQUIRE(s.has_value());
  return s->state;
}

}  // namespace

TEST_CASE("origin_of: the breaker key") {
  CHECK(origin_of("https://API.Example.com/v1?x=1").value() == "https://api.example.com:443");
  CHECK(origin_of("HTTP://h").value() == "http://h:80");
  CHECK(origin_of("http://h:8080/x").value() == "http://h:8080");
  CHECK(origin_of("http://user:pw@h:81#f").value() == "http://h:81");
  CHECK(origin_of("https://[2001:DB8::1]/").value() == "https://[2001:db8::1]:443");
  CHECK(origin_of("https://[::1]:8443").value() == "https://[::1]:8443");
  CHECK(origin_of("http://h:/").value() == "http://h:80");
  for (const char *bad : {"", "h/x", "ftp://h/", "http:///x", "http://h:0/", "http://h:65536/",
                          "http://h:8o/", "http://[::1/", "http://[::1]x/", "http://a b/"}) {
    CAPTURE(bad);
    auto r = origin_of(bad);
    REQUIRE(!r.ok());
    CHECK(r.error().code == ivr::Errc::invalid_argument);
    CHECK(r.error().message.rfind("url: ", 0) == 0);
  }
}

TEST_CASE("CircuitBreakers: option validation names the field") {
  auto expect_bad = [](CircuitBreakerOptions o, const char *field) {
    auto r = CircuitBreakers::create(o);
    REQUIRE(!r.ok());
    CHECK(r.error().message.rfind(field, 0) == 0);
  };
  CircuitBreakerOptions o;
  o.failure_threshold = 0;
  expect_bad(o, "failure_threshold");
  o = {};
  o.cooldown = 0ms;
  expect_bad(o, "cooldown");
  o = {};
  o.cooldown_growth = 0.5;
  expect_bad(o, "cooldown_growth");
  o = {};
  o.max_cooldown = 1ms;
  expect_bad(o, "max_cooldown");
  o = {};
  o.half_open_probes = 0;
  expect_bad(o, "half_open_probes");
  o = {};
  o.probe_timeout = 0ms;
  expect_bad(o, "probe_timeout");
  o = {};
  o.probe_timeout = Millis::max();
  expect_bad(o, "probe_timeout");
  o = {};
  o.max_cooldown = kMaxPolicyDuration + 1ms;
  expect_bad(o, "max_cooldown");
  o = {};
  o.max_hosts = 0;
  expect_bad(o, "max_hosts");
}

TEST_CASE("CircuitBreakers: default failure classification") {
  auto b = make();
  CHECK(b.classify(HttpErrc::timeout, 0) == BreakerOutcome::failure);
  CHECK(b.classify(HttpErrc::connect, 0) == BreakerOutcome::failure);
  CHECK(b.classify(HttpErrc::tls, 0) == BreakerOutcome::failure);
  CHECK(b.classify(HttpErrc::protocol, 0) == BreakerOutcome::failure);
  CHECK(b.classify(HttpErrc::cancelled, 0) == BreakerOutcome::neutral);
  CHECK(b.classify(HttpErrc::too_large, 0) == BreakerOutcome::neutral);
  for (int s : {500, 502, 503, 504, 599, 429})
    CHECK(b.classify(HttpErrc::none, s) == BreakerOutcome::failure);
  for (int s : {200, 204, 301, 400, 401, 403, 404, 428, 430, 499})
    CHECK(b.classify(HttpErrc::none, s) == BreakerOutcome::success);
  CircuitBreakerOptions o;
  o.failure_statuses = StatusSet::of({503});
  o.failure_errors = TransportErrorSet{HttpErrc::timeout};
  auto custom = make(o);
  CHECK(custom.classify(HttpErrc::none, 500) == BreakerOutcome::success);
  CHECK(custom.classify(HttpErrc::none, 503) == BreakerOutcome::failure);
  CHECK(custom.classify(HttpErrc::connect, 0) == BreakerOutcome::neutral);
}

TEST_CASE("CircuitBreakers: consecutive failures open; a success resets the count") {
  Recorder rec;
  auto b = make({}, rec.callback());
  fail(b, 4, t0);
  CHECK(state(b) == BreakerState::closed);
  CHECK(b.snapshot(kHost)->consecutive_failures == 4);
  b.record(kHost, BreakerOutcome::success, t0);
  CHECK(b.snapshot(kHost)->consecutive_failures == 0);
  fail(b, 4, t0);
  b.record(kHost, BreakerOutcome::neutral, t0);  // neutral neither resets nor counts
  CHECK(b.snapshot(kHost)->consecutive_failures == 4);
  CHECK(rec.events.empty());
  fail(b, 1, t0 + 10ms);
  CHECK(state(b) == BreakerState::open);
  REQUIRE(rec.events.size() == 1);
  CHECK(rec.events[0].host == kHost);
  CHECK(rec.events[0].from == BreakerState::closed);
  CHECK(rec.events[0].to == BreakerState::open);
  CHECK(rec.events[0].cooldown == 5000ms);
  CHECK(rec.events[0].consecutive_failures == 5);
  CHECK(rec.events[0].at == t0 + 10ms);
  CHECK(b.counters().opened == 1);
}

TEST_CASE("CircuitBreakers: alternating failures never open (the consecutive model)") {
  auto b = make();
  for (int i = 0; i < 1000; ++i) {
    SteadyTime now = t0 + Millis{i * 10};
    Admission a = b.allow(kHost, now);
    REQUIRE(a.allowed);
    b.record(kHost, i % 2 ? BreakerOutcome::success : BreakerOutcome::failure, now, a.generation);
  }
  CHECK(state(b) == BreakerState::closed);
  CHECK(b.counters().opened == 0);
}

TEST_CASE("CircuitBreakers: open rejects until exactly the cool-down, then half-opens") {
  Recorder rec;
  auto b = make({}, rec.callback());
  fail(b, 5, t0);
  Admission r = b.allow(kHost, t0);
  CHECK(!r.allowed);
  CHECK(std::string(r.reason()) == "circuit_open");
  CHECK(r.retry_after == 5000ms);
  r = b.allow(kHost, t0 + 4999ms);
  CHECK(!r.allowed);
  CHECK(r.retry_after == 1ms);
  r = b.allow(kHost, t0 + 4999ms + 500us);
  CHECK(r.retry_after == 1ms);  // rounded up: never earlier than the circuit reopens
  CHECK(state(b) == BreakerState::open);
  Admission probe = b.allow(kHost, t0 + 5000ms);
  CHECK(probe.allowed);
  CHECK(probe.probe);
  CHECK(std::string(probe.reason()).empty());
  CHECK(state(b) == BreakerState::half_open);
  REQUIRE(rec.events.size() == 2);
  CHECK(rec.events[1].from == BreakerState::open);
  CHECK(rec.events[1].to == BreakerState::half_open);
  CHECK(b.counters().rejected == 3);
}

TEST_CASE(
    "CircuitBreakers: half-open admits one probe by default; concurrent requests are rejected") {
  Recorder rec;
  CircuitBreakerOptions o;
  o.probe_timeout = 2000ms;
  auto b = make(o, rec.callback());
  fail(b, 5, t0);
  SteadyTime ho = t0 + 5s;
  Admission probe = b.allow(kHost, ho);
  REQUIRE(probe.probe);
  Admission second = b.allow(kHost, ho + 100ms);
  CHECK(!second.allowed);
  CHECK(std::string(second.reason()) == "circuit_open");
  CHECK(second.retry_after == 1900ms);  // until the probe would be forgotten
  b.record(kHost, BreakerOutcome::success, ho + 200ms, probe.generation);
  CHECK(state(b) == BreakerState::closed);
  REQUIRE(rec.events.size() == 3);
  CHECK(rec.events[2].from == BreakerState::half_open);
  CHECK(rec.events[2].to == BreakerState::closed);
  CHECK(b.allow(kHost, ho + 200ms).allowed);
  CHECK(b.snapshot(kHost)->consecutive_failures == 0);
  CHECK(b.counters().closed == 1);
}

TEST_CASE("CircuitBreakers: K probes; all must succeed; the K+1th is rejected") {
  CircuitBreakerOptions o;
  o.half_open_probes = 3;
  auto b = make(o);
  fail(b, 5, t0);
  SteadyTime ho = t0 + 5s;
  std::vector<Admission> probes;
  for (int i = 0; i < 3; ++i) {
    probes.push_back(b.allow(kHost, ho));
    CHECK(probes.back().allowed);
    CHECK(probes.back().probe);
  }
  CHECK(!b.allow(kHost, ho).allowed);
  b.record(kHost, BreakerOutcome::success, ho, probes[0].generation);
  CHECK(!b.allow(kHost, ho).allowed);  // slots are per half-open period, not per in-flight
  b.record(kHost, BreakerOutcome::success, ho, probes[1].generation);
  CHECK(state(b) == BreakerState::half_open);
  CHECK(b.snapshot(kHost)->probes_succeeded == 2);
  b.record(kHost, BreakerOutcome::success, ho, probes[2].generation);
  CHECK(state(b) == BreakerState::closed);
}

TEST_CASE("CircuitBreakers: one failing probe among K reopens at once") {
  CircuitBreakerOptions o;
  o.half_open_probes = 3;
  auto b = make(o);
  fail(b, 5, t0);
  SteadyTime ho = t0 + 5s;
  Admission p1 = b.allow(kHost, ho), p2 = b.allow(kHost, ho);
  b.record(kHost, BreakerOutcome::success, ho, p1.generation);
  b.record(kHost, BreakerOutcome::failure, ho + 1ms, p2.generation);
  CHECK(state(b) == BreakerState::open);
  CHECK(b.snapshot(kHost)->cooldown == 10000ms);
  CHECK(b.snapshot(kHost)->open_until == ho + 1ms + 10000ms);
}

TEST_CASE("CircuitBreakers: the cool-down grows per failed probe, is capped, and resets on close") {
  Recorder rec;
  CircuitBreakerOptions o;
  o.cooldown = 1000ms;
  o.cooldown_growth = 3.0;
  o.max_cooldown = 20000ms;
  auto b = make(o, rec.callback());
  SteadyTime now = t0;
  fail(b, 5, now);
  std::vector<Millis> cooldowns{b.snapshot(kHost)->cooldown};
  for (int i = 0; i < 6; ++i) {
    now = b.snapshot(kHost)->open_until;
    CHECK(!b.allow(kHost, now - 1ms).allowed);
    Admission p = b.allow(kHost, now);
    REQUIRE(p.probe);
    b.record(kHost, BreakerOutcome::failure, now, p.generation);
    cooldowns.push_back(b.snapshot(kHost)->cooldown);
  }
  CHECK(cooldowns ==
        std::vector<Millis>{1000ms, 3000ms, 9000ms, 20000ms, 20000ms, 20000ms, 20000ms});
  CHECK(rec.events.back().cooldown == 20000ms);
  now = b.snapshot(kHost)->open_until;
  Admission p = b.allow(kHost, now);
  b.record(kHost, BreakerOutcome::success, now, p.generation);
  CHECK(state(b) == BreakerState::closed);
  fail(b, 5, now);
  CHECK(b.snapshot(kHost)->cooldown == 1000ms);
}

TEST_CASE("CircuitBreakers: a huge growth factor saturates at the cap") {
  CircuitBreakerOptions o;
  o.cooldown_growth = 1e300;
  o.max_cooldown = 3600s;
  auto b = make(o);
  fail(b, 5, t0);
  SteadyTime now = t0;
  for (int i = 0; i < 5; ++i) {
    now = b.snapshot(kHost)->open_until;
    Admission p = b.allow(kHost, now);
    b.record(kHost, BreakerOutcome::failure, now, p.generation);
    CHECK(b.snapshot(kHost)->cooldown == 3600s);
  }
}

TEST_CASE("CircuitBreakers: a neutral probe outcome frees its slot") {
  auto b = make();
  fail(b, 5, t0);
  SteadyTime ho = t0 + 5s;
  Admission p = b.allow(kHost, ho);
  REQUIRE(p.probe);
  CHECK(!b.allow(kHost, ho).allowed);
  b.record(kHost, BreakerOutcome::neutral, ho, p.generation);  // e.g. the caller hung up
  CHECK(state(b) == BreakerState::half_open);
  Admission again = b.allow(kHost, ho);
  CHECK(again.probe);
  HttpResponse cancelled;
  cancelled.error = HttpErrc::cancelled;
  b.record(kHost, cancelled, ho, again.generation);
  HttpResponse fine;
  fine.status = 404;  // a 4xx other than 429 is a success for the breaker
  Admission third = b.allow(kHost, ho);
  REQUIRE(third.probe);
  b.record(kHost, fine, ho, third.generation);
  CHECK(state(b) == BreakerState::closed);
}

TEST_CASE("CircuitBreakers: a probe never reported is forgotten after probe_timeout") {
  CircuitBreakerOptions o;
  o.probe_timeout = 3000ms;
  auto b = make(o);
  fail(b, 5, t0);
  SteadyTime ho = t0 + 5s;
  REQUIRE(b.allow(kHost, ho).probe);
  CHECK(!b.allow(kHost, ho + 2999ms).allowed);
  Admission retry = b.allow(kHost, ho + 3000ms);
  CHECK(retry.probe);
  b.record(kHost, BreakerOutcome::success, ho + 3100ms, retry.generation);
  CHECK(state(b) == BreakerState::closed);
}

TEST_CASE("CircuitBreakers: outcomes from an earlier state are ignored") {
  auto b = make();
  // Five requests admitted while closed; they all fail, the circuit opens.
  std::vector<Admission> early;
  for (int i = 0; i < 8; ++i) early.push_back(b.allow(kHost, t0));
  for (int i = 0; i < 5; ++i) b.record(kHost, BreakerOutcome::failure, t0, early[i].generation);
  REQUIRE(state(b) == BreakerState::open);
  SteadyTime until = b.snapshot(kHost)->open_until;
  // Late failures while open neither extend the cool-down nor count.
  b.record(kHost, BreakerOutcome::failure, t0 + 1s, early[5].generation);
  b.record(kHost, BreakerOutcome::failure, t0 + 1s);  // no generation: still ignored while open
  CHECK(b.snapshot(kHost)->open_until == until);
  // Half-open: a straggler's success must not close the circuit in the probe's stead.
  Admission probe = b.allow(kHost, until);
  REQUIRE(probe.probe);
  b.record(kHost, BreakerOutcome::success, until, early[6].generation);
  CHECK(state(b) == BreakerState::half_open);
  b.record(kHost, BreakerOutcome::success, until, probe.generation);
  CHECK(state(b) == BreakerState::closed);
  // After closing, a straggler failure does not count towards the next trip.
  b.record(kHost, BreakerOutcome::failure, until, early[7].generation);
  CHECK(b.snapshot(kHost)->consecutive_failures == 0);
  CHECK(b.counters().ignored == 4);
}

TEST_CASE("CircuitBreakers: hosts are independent") {
  auto b = make();
  fail(b, 5, t0, "http://a:80");
  CHECK(!b.allow("http://a:80", t0).allowed);
  CHECK(b.allow("http://b:80", t0).allowed);
  CHECK(state(b, "http://b:80") == BreakerState::closed);
}

TEST_CASE("CircuitBreakers: the registry is bounded; clean closed hosts go first") {
  CircuitBreakerOptions o;
  o.max_hosts = 3;
  auto b = make(o);
  fail(b, 5, t0, "http://open:80");
  fail(b, 2, t0, "http://failing:80");
  CHECK(b.allow("http://clean:80", t0).allowed);
  CHECK(b.size() == 3);
  // A new host evicts the clean one, although the open one is older.
  CHECK(b.allow("http://new:80", t0).allowed);
  CHECK(b.size() == 3);
  CHECK(!b.snapshot("http://clean:80"));
  CHECK(b.snapshot("http://open:80"));
  CHECK(b.counters().evictions == 1);
  // Now no host is clean except the new one, which the next newcomer evicts.
  CHECK(b.allow("http://newer:80", t0).allowed);
  CHECK(!b.snapshot("http://new:80"));
  // With nothing clean left, the least recently used goes, whatever its state.
  b.record("http://newer:80", BreakerOutcome::failure, t0);
  CHECK(b.allow("http://failing:80", t0).allowed);  // touch: open is now the oldest
  CHECK(b.allow("http://last:80", t0).allowed);
  CHECK(!b.snapshot("http://open:80"));
  CHECK(b.size() == 3);
  CHECK(b.counters().evictions == 3);
  // A success for an unknown host creates nothing.
  b.record("http://unknown:80", BreakerOutcome::success, t0);
  CHECK(!b.snapshot("http://unknown:80"));
}

TEST_CASE("CircuitBreakers: the callback may call back into the registry") {
  CircuitBreakers *self = nullptr;
  std::vector<std::string> seen;
  CircuitBreakerOptions o;
  o.max_hosts = 1;
  auto b = make(o, [&](const BreakerTransition &t) {
    seen.push_back(t.host + " " + breaker_state_name(t.to));
    auto snap = self->snapshot(t.host);
    REQUIRE(snap);
    CHECK(snap->state == t.to);
    self->allow("http://other:80", t.at);  // evicts t.host: the event still names it
  });
  self = &b;
  fail(b, 5, t0);
  REQUIRE(seen.size() == 1);
  CHECK(seen[0] == kHost + " open");
}

TEST_CASE("CircuitBreakers: a steady failure pattern does not flap faster than the cool-down") {
  for (double growth : {1.0, 2.0}) {
    CAPTURE(growth);
    Recorder rec;
    CircuitBreakerOptions o;
    o.cooldown = 5000ms;
    o.cooldown_growth = growth;
    o.max_cooldown = 40000ms;
    auto b = make(o, rec.callback());
    // A request every 100 ms for 10 minutes; the host fails every one of them.
    int sent = 0;
    for (int i = 0; i < 6000; ++i) {
      SteadyTime now = t0 + Millis{i * 100};
      Admission a = b.allow(kHost, now);
      if (!a.allowed) continue;
      ++sent;
      b.record(kHost, BreakerOutcome::failure, now, a.generation);
    }
    std::vector<SteadyTime> opens;
    for (const auto &e : rec.events)
      if (e.to == BreakerState::open) opens.push_back(e.at);
    REQUIRE(opens.size() >= 2);
    Millis expected_gap = o.cooldown;
    for (size_t i = 1; i < opens.size(); ++i) {
      CHECK(opens[i] - opens[i - 1] >= expected_gap);
      expected_gap =
          std::min(Millis{static_cast<int64_t>(expected_gap.count() * growth)}, o.max_cooldown);
    }
    // Never closed, and only one probe per opening got through.
    for (const auto &e : rec.events) CHECK(e.to != BreakerState::closed);
    CHECK(sent == 5 + static_cast<int>(opens.size()) - 1);
    CHECK(static_cast<int64_t>(opens.size()) <= 600'000 / 5000 + 1);
  }
}
