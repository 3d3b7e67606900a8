#include <map>
#include <random>
#include <set>

#include "routing/target_pool.h"
#include "routing_test_util.h"

using namespace rtest;
using ivr::Errc;

TEST_CASE("pool: reserve, commit, release keep the counters") {
  TargetPool pool;
  REQUIRE(pool.configure({target("a", 2)}, T0).ok());
  auto s1 = pool.try_reserve(0, T0);
  auto s2 = pool.try_reserve(0, T0);
  REQUIRE(s1.ok());
  REQUIRE(s2.ok());
  CHECK(s1->id != s2->id);
  auto s3 = pool.try_reserve(0, T0);
  REQUIRE_FALSE(s3.ok());
  CHECK(s3.error().code == Errc::busy);
  CHECK(s3.error().message == "target a: full");
  CHECK(pool.state(0).counters.reserved == 2);
  CHECK(pool.free_slots(0, T0) == 0);

  REQUIRE(pool.commit(*s1).ok());
  CHECK(pool.commit(*s1).error().code == Errc::bad_state);
  CHECK(pool.state(0).counters.active == 1);
  CHECK(pool.state(0).counters.reserved == 1);
  CHECK(pool.slot_committed(*s1));
  // A committed call cannot "fail delivery"; it ends with release().
  CHECK(pool.release_failed(*s1, FailReason::busy).error().code == Errc::bad_state);
  REQUIRE(pool.release_failed(*s2, FailReason::busy).ok());
  CHECK(pool.release(*s2).error().code == Errc::not_found);  // no double release
  CHECK(pool.free_slots(0, T0) == 1);
  REQUIRE(pool.release(*s1).ok());
  const Counters &c = pool.state(0).counters;
  CHECK(c.active == 0);
  CHECK(c.reserved == 0);
  CHECK(c.offered == 2);
  CHECK(c.answered == 1);
  CHECK(c.completed == 1);
  CHECK(c.failed[static_cast<size_t>(FailReason::busy)] == 1);
  CHECK(pool.outstanding_slots() == 0);
}

TEST_CASE("pool: skip reasons from the capacity rule") {
  TargetPool pool;
  auto agents = target("agents", 5);
  agents.availability.rule = AgentRule::idle_agent;
  agents.availability.stale_after_s = 10;
  REQUIRE(pool.configure({target("a", 1), agents}, T0).ok());
  CHECK_FALSE(pool.unavailable(0, T0));
  pool.force_health(0, false, T0);
  CHECK(pool.unavailable(0, T0) == SkipReason::down);
  pool.force_health(0, true, T0);
  pool.set_draining(0, true);
  CHECK(pool.unavailable(0, T0) == SkipReason::draining);
  pool.set_draining(0, false);
  REQUIRE(pool.try_reserve(0, T0).ok());
  CHECK(pool.unavailable(0, T0) == SkipReason::full);

  // No availability yet: stale.
  CHECK(pool.unavailable(1, T0) == SkipReason::stale_availability);
  pool.update_availability(1, {0, 4, 0, 0}, T0);
  CHECK(pool.unavailable(1, T0) == SkipReason::no_agents);
  pool.update_availability(1, {2, 4, 0, 0}, T0);
  CHECK_FALSE(pool.unavailable(1, T0));
  CHECK(pool.free_slots(1, T0) == 2);
  CHECK(pool.unavailable(1, T0 + 10s) == std::nullopt);  // exactly at the limit: fresh
  CHECK(pool.unavailable(1, T0 + 11s) == SkipReason::stale_availability);
  pool.mark_availability_stale(1);
  CHECK(pool.unavailable(1, T0) == SkipReason::stale_availability);
  pool.update_availability(1, {2, 4, 0, 0}, T0 + 20s);
  CHECK_FALSE(pool.unavailable(1, T0 + 20s));
}

TEST_CASE("pool: idle agents count reservations and calls delivered since the sample") {
  TargetPool pool;
  auto t = target("v", 50);
  t.availability.rule = AgentRule::idle_agent;
  REQUIRE(pool.configure({t}, T0).ok());
  pool.update_availability(0, {3, 10, 0, 0}, T0);
  auto a = pool.try_reserve(0, T0);
  auto b = pool.try_reserve(0, T0);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(pool.idle_agents(0, T0) == 1);
  REQUIRE(pool.commit(*a).ok());  // delivered: still busy until the next sample says so
  CHECK(pool.idle_agents(0, T0) == 1);
  auto c = pool.try_reserve(0, T0);
  REQUIRE(c.ok());
  CHECK(pool.try_reserve(0, T0).error().message == "target v: no agents");
  // A new sample replaces the estimate.
  pool.update_availability(0, {5, 10, 0, 0}, T0 + 1s);
  CHECK(pool.idle_agents(0, T0 + 1s) == 3);  // 5 - 2 reserved

  // Counting the dialing system's own waiting calls.
  auto w = target("w", 50);
  w.availability.rule = AgentRule::idle_agent;
  w.availability.subtract_calls_waiting = true;
  REQUIRE(pool.configure({t, w}, T0).ok());
  pool.update_availability(1, {3, 10, 3, 40}, T0);
  CHECK(pool.unavailable(1, T0) == SkipReason::no_agents);
  pool.update_availability(1, {4, 10, 3, 40}, T0);
  CHECK(pool.free_slots(1, T0) == 1);
}

TEST_CASE("pool: random interleavings never give one slot to two calls") {
  // Several "calls" per step reserve, commit, fail or end on three small targets; the
  // counters must match a model and never exceed the capacity.
  TargetPool pool;
  REQUIRE(pool.configure({target("a", 1), target("b", 3), target("c", 7)}, T0).ok());
  std::mt19937_64 rng(42);
  struct Held {
    Slot slot;
    bool committed;
  };
  std::vector<Held> held;
  std::set<uint64_t> ids;
  std::map<TargetIndex, int> reserved, active;
  for (int step = 0; step < 200000; ++step) {
    int op = static_cast<int>(rng() % 4);
    if (op == 0 || held.empty()) {
      TargetIndex t = static_cast<TargetIndex>(rng() % 3);
      auto s = pool.try_reserve(t, T0);
      bool room = reserved[t] + active[t] < static_cast<int>(pool.config(t).capacity);
      REQUIRE(s.ok() == room);
      if (s.ok()) {
        REQUIRE(ids.insert(s->id).second);  // never handed out twice
        held.push_back({*s, false});
        ++reserved[t];
      }
    } else {
      size_t i = rng() % held.size();
      Held h = held[i];
      TargetIndex t = h.slot.target;
      if (op == 1 && !h.committed) {
        REQUIRE(pool.commit(h.slot).ok());
        held[i].committed = true;
        --reserved[t];
        ++active[t];
        continue;
      }
      if (op == 2 && !h.committed)
        REQUIRE(pool.release_failed(h.slot, FailReason::no_answer).ok());
      else
        REQUIRE(pool.release(h.slot).ok());
      (h.committed ? active : reserved)[t]--;
      held[i] = held.back();
      held.pop_back();
      // Releasing twice is refused and changes nothing.
      REQUIRE(pool.release(h.slot).error().code == Errc::not_found);
    }
    for (TargetIndex t = 0; t < 3; ++t) {
      const Counters &c = pool.state(t).counters;
      REQUIRE(static_cast<int>(c.reserved) == reserved[t]);
      REQUIRE(static_cast<int>(c.active) == active[t]);
      REQUIRE(c.reserved + c.active <= pool.config(t).capacity);
    }
  }
  CHECK(pool.outstanding_slots() == held.size());
}

TEST_CASE("pool: reconfigure keeps state by name; a removed target's slots end quietly") {
  TargetPool pool;
  REQUIRE(pool.configure({target("a", 2), target("b", 2)}, T0).ok());
  auto sa = pool.try_reserve(0, T0);
  auto sb = pool.try_reserve(1, T0);
  auto sb2 = pool.try_reserve(1, T0);
  REQUIRE(sa.ok());
  REQUIRE(sb.ok());
  REQUIRE(sb2.ok());
  REQUIRE(pool.commit(*sb).ok());
  pool.set_draining(0, true);

  // New order, "a" removed, "c" added, "b" shrinks to capacity 1 with 2 calls on it.
  REQUIRE(pool.configure({target("c", 4), target("b", 1)}, T0 + 1s).ok());
  CHECK(pool.size() == 2);
  CHECK_FALSE(pool.find("a"));
  REQUIRE(pool.find("b") == TargetIndex(1));
  CHECK(pool.state(1).counters.active == 1);
  CHECK(pool.state(1).counters.reserved == 1);
  CHECK(pool.unavailable(1, T0) == SkipReason::full);
  CHECK(pool.state(0).counters.offered == 0);

  // The target vanished mid-call: commit says gone, release is harmless.
  auto c = pool.commit(*sa);
  CHECK(c.error().code == Errc::gone);
  CHECK(c.error().message.find("removed") != std::string::npos);
  CHECK(pool.release(*sa).error().code == Errc::not_found);  // commit dropped it
  // b's slots still work through their ids after the indices changed.
  REQUIRE(pool.release(*sb).ok());
  REQUIRE(pool.commit(*sb2).ok());
  CHECK(pool.state(1).counters.active == 1);

  // Errors leave everything as it was.
  auto bad = target("d", 0);
  auto s = pool.configure({bad}, T0);
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().message == "targets.d.capacity: must be an integer from 1 to 100000");
  CHECK(pool.size() == 2);
  auto dup = pool.configure({target("x"), target("x")}, T0);
  CHECK(dup.error().message == "targets.x: duplicate target name");
}

TEST_CASE("pool: reservations nobody came back for expire") {
  TargetPool pool;
  REQUIRE(pool.configure({target("a", 3)}, T0).ok());
  auto old = pool.try_reserve(0, T0);
  auto fresh = pool.try_reserve(0, T0 + 50s);
  auto done = pool.try_reserve(0, T0);
  REQUIRE(pool.commit(*done).ok());
  auto gone = pool.expire_reservations(T0 + 61s, 60s);
  REQUIRE(gone.size() == 1);
  CHECK(gone[0].id == old->id);
  CHECK(pool.state(0).counters.reserved == 1);
  CHECK(pool.state(0).counters.active == 1);
  CHECK(pool.commit(*old).error().code == Errc::not_found);
}

TEST_CASE("pool: header names and target validation") {
  CHECK(valid_header_name("X-Lead-Id"));
  CHECK(valid_header_name("x-campaign"));
  CHECK(valid_header_name("User-to-User"));
  CHECK(valid_header_name("user-to-user"));
  CHECK_FALSE(valid_header_name("X-"));
  CHECK_FALSE(valid_header_name("From"));
  CHECK_FALSE(valid_header_name("X-Bad Name"));
  CHECK_FALSE(valid_header_name("X-Bad:Name"));

  auto t = target("a");
  t.headers = {{"X-Lead", "{{vars.lead}}"}, {"Contact", "x"}};
  CHECK(validate_target(t, "t.a").error().message ==
        "t.a.headers.Contact: header name must be X-<token> or User-to-User");
  t.headers = {{"X-Lead", "a\r\nInjected: yes"}};
  CHECK(validate_target(t, "t.a").error().message ==
        "t.a.headers.X-Lead: contains a line break (header injection)");
  t.headers = {{"X-Lead", "1"}, {"x-lead", "2"}};
  CHECK(validate_target(t, "t.a").error().message == "t.a.headers.x-lead: duplicate header");
  t.headers = {};
  t.uris = {{"sips:q@h", Transport::udp}};
  CHECK(validate_target(t, "t.a").error().message ==
        "t.a.uris[0]: a sips: URI needs transport tls");
  t.uris = {{"http://x", Transport::udp}};
  CHECK(validate_target(t, "t.a").error().message.rfind("t.a.uris[0]: not a SIP URI", 0) == 0);
  t.uris = {{"sip:q@h", Transport::tcp}};
  t.username = "ivr";
  CHECK(validate_target(t, "t.a").error().message ==
        "t.a.password_secret: missing (username is set)");
  t.password_secret = "not a name!";
  CHECK(validate_target(t, "t.a").error().message.rfind("t.a.password_secret: not a valid", 0) ==
        0);
  t.password_secret = "dialer.sip";
  CHECK(validate_target(t, "t.a").ok());
  t.weight = 101;
  CHECK(validate_target(t, "t.a").error().message ==
        "t.a.weight: must be an integer from 1 to 100");
  t.weight = 1;
  t.probe.down_after = 0;
  CHECK(validate_target(t, "t.a").error().message ==
        "t.a.probe.down_after: must be an integer from 1 to 100");
}
