#include "routing/health.h"
#include "routing/target_pool.h"
#include "routing_test_util.h"

using namespace rtest;

TEST_CASE("health: down after N consecutive failures, up after M successes") {
  HealthTracker h({3, 2, 0s}, true, T0);
  CHECK(h.up());
  CHECK_FALSE(h.record(false, T0 + 1s));
  CHECK_FALSE(h.record(false, T0 + 2s));
  CHECK(h.up());
  CHECK(h.record(false, T0 + 3s));  // the third in a row
  CHECK_FALSE(h.up());
  CHECK(h.since() == T0 + 3s);
  CHECK_FALSE(h.record(false, T0 + 4s));  // already down: no change
  CHECK_FALSE(h.record(true, T0 + 5s));
  CHECK_FALSE(h.up());
  CHECK(h.record(true, T0 + 6s));
  CHECK(h.up());
  CHECK(h.changes() == 2);
}

TEST_CASE("health: a success resets the failure streak") {
  HealthTracker h({3, 2, 0s}, true, T0);
  h.record(false, T0 + 1s);
  h.record(false, T0 + 2s);
  h.record(true, T0 + 3s);
  CHECK(h.failures() == 0);
  h.record(false, T0 + 4s);
  h.record(false, T0 + 5s);
  CHECK(h.up());
  CHECK(h.failures() == 2);
}

TEST_CASE("health: alternating results never flap") {
  for (uint32_t n : {2u, 3u, 5u}) {
    CAPTURE(n);
    HealthTracker up({n, n, 0s}, true, T0);
    HealthTracker down({n, n, 0s}, false, T0);
    for (int i = 0; i < 1000; ++i) {
      bool ok = i % 2 == 0;
      up.record(ok, T0 + std::chrono::seconds(i));
      down.record(ok, T0 + std::chrono::seconds(i));
    }
    CHECK(up.up());
    CHECK_FALSE(down.up());
    CHECK(up.changes() == 0);
    CHECK(down.changes() == 0);
  }
}

TEST_CASE("health: bursts shorter than the thresholds do not flap") {
  // Two failures then one success, repeated: down_after 3 never triggers.
  HealthTracker h({3, 3, 0s}, true, T0);
  for (int i = 0; i < 300; ++i) h.record(i % 3 == 2, T0 + std::chrono::seconds(i));
  CHECK(h.up());
  CHECK(h.changes() == 0);
}

TEST_CASE("health: thresholds of 1 with a minimum hold time") {
  // Without a hold, thresholds of 1 follow every result; the hold limits the changes to one
  // per hold period whatever the probe says.
  HealthTracker fast({1, 1, 0s}, true, T0);
  HealthTracker held({1, 1, 30s}, true, T0);
  for (int i = 0; i < 120; ++i) {  // alternating every second for two minutes
    bool ok = i % 2 == 1;
    fast.record(ok, T0 + std::chrono::seconds(i + 1));
    held.record(ok, T0 + std::chrono::seconds(i + 1));
  }
  CHECK(fast.changes() == 120);
  CHECK(held.changes() <= 4);
  CHECK(held.changes() >= 1);
}

TEST_CASE("health: the hold delays a change until the streak continues after it") {
  HealthTracker h({2, 2, 10s}, true, T0);
  h.record(false, T0 + 1s);
  h.record(false, T0 + 2s);  // threshold reached inside the hold
  CHECK(h.up());
  h.record(false, T0 + 11s);  // streak continues after the hold
  CHECK_FALSE(h.up());
  CHECK(h.since() == T0 + 11s);
  h.record(true, T0 + 12s);
  h.record(true, T0 + 13s);  // held (down since 11 s)
  CHECK_FALSE(h.up());
  h.record(false, T0 + 20s);  // streak broken
  h.record(true, T0 + 22s);
  CHECK_FALSE(h.up());
  h.record(true, T0 + 23s);
  CHECK(h.up());
}

TEST_CASE("health: force and thresholds from the probe config") {
  ProbeConfig p;
  p.down_after = 4;
  p.up_after = 1;
  p.min_hold_s = 7;
  HealthThresholds t = HealthThresholds::from(p);
  CHECK(t.down_after == 4);
  CHECK(t.up_after == 1);
  CHECK(t.min_hold == 7s);
  HealthTracker h(t, true, T0);
  CHECK(h.force(false, T0 + 1s));
  CHECK_FALSE(h.up());
  CHECK_FALSE(h.force(false, T0 + 2s));
}

TEST_CASE("health: pool reports changes and draining wins") {
  TargetPool pool;
  auto a = target("a");
  a.probe.down_after = 2;
  a.probe.up_after = 2;
  REQUIRE(pool.configure({a}, T0).ok());
  CHECK(pool.health(0) == Health::up);
  CHECK_FALSE(pool.record_probe(0, false, T0 + 1s));
  auto ch = pool.record_probe(0, false, T0 + 2s);
  REQUIRE(ch);
  CHECK(ch->from == Health::up);
  CHECK(ch->to == Health::down);
  ch = pool.set_draining(0, true);
  REQUIRE(ch);
  CHECK(ch->to == Health::draining);
  // Probes keep running while draining; the state shown stays draining.
  CHECK_FALSE(pool.record_probe(0, true, T0 + 3s));
  CHECK_FALSE(pool.record_probe(0, true, T0 + 4s));
  CHECK(pool.health(0) == Health::draining);
  ch = pool.set_draining(0, false);
  REQUIRE(ch);
  CHECK(ch->to == Health::up);  // came up while draining
  ch = pool.force_health(0, false, T0 + 5s);
  REQUIRE(ch);
  CHECK(ch->to == Health::down);
}
