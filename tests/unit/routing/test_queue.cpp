#include <algorithm>
#include <random>
#include <tuple>

#include "routing/call_queue.h"
#include "routing_test_util.h"

using namespace rtest;
using ivr::Errc;

namespace {

std::vector<uint64_t> order(const CallQueue &q) {
  std::vector<uint64_t> out;
  for (size_t i = 1; i <= q.size(); ++i) out.push_back(q.at(i)->call);
  return out;
}

TargetPool pool_of(uint32_t capacity) {
  TargetPool p;
  REQUIRE(p.configure({target("t", capacity)}, T0).ok());
  return p;
}

}  // namespace

TEST_CASE("queue: lower priority number first, FIFO within a priority") {
  CallQueue q;
  CHECK(q.enqueue(1, 500, T0).value() == 1);
  CHECK(q.enqueue(2, 500, T0 + 1s).value() == 2);
  CHECK(q.enqueue(3, 100, T0 + 2s).value() == 1);  // more urgent: ahead of both
  CHECK(q.enqueue(4, 500, T0 + 3s).value() == 4);
  CHECK(q.enqueue(5, 100, T0 + 4s).value() == 2);
  CHECK(q.enqueue(6, 999, T0 + 5s).value() == 6);
  CHECK(q.enqueue(7, 0, T0 + 6s).value() == 1);
  CHECK(order(q) == std::vector<uint64_t>{7, 3, 5, 1, 2, 4, 6});
  CHECK(q.head()->call == 7);
  CHECK(q.position(4).value() == 6);
  CHECK(q.position(99).error().code == Errc::not_found);
  // Same priority, same instant: arrival order.
  CallQueue ties;
  for (uint64_t c = 10; c < 20; ++c) REQUIRE(ties.enqueue(c, 5, T0).ok());
  CHECK(order(ties) == std::vector<uint64_t>{10, 11, 12, 13, 14, 15, 16, 17, 18, 19});
}

TEST_CASE("queue: enqueue errors") {
  CallQueue q({2, 0.2, 1});
  REQUIRE(q.enqueue(1, 5, T0).ok());
  CHECK(q.enqueue(1, 5, T0).error().message == "call 1: already queued");
  CHECK(q.enqueue(2, 1000, T0).error().message ==
        "call 2: priority 1000: must be an integer from 0 to 999");
  CHECK(q.enqueue(2, 5, T0, 0s).error().code == Errc::invalid_argument);
  REQUIRE(q.enqueue(2, 5, T0).ok());
  auto full = q.enqueue(3, 5, T0);
  CHECK(full.error().code == Errc::busy);
  CHECK(full.error().message == "call 3: the queue is full (2 calls)");
}

TEST_CASE("queue: raising the priority keeps the enqueue time within the new priority") {
  CallQueue q;
  REQUIRE(q.enqueue(1, 10, T0).ok());
  REQUIRE(q.enqueue(2, 50, T0 + 1s).ok());
  REQUIRE(q.enqueue(3, 10, T0 + 2s).ok());
  REQUIRE(q.enqueue(4, 50, T0 + 3s).ok());
  // Call 4 raised to 10: behind 1 and 3, which waited longer at that priority... and call 2
  // raised to 10 goes between 1 and 3 (enqueued at +1 s).
  CHECK(q.set_priority(4, 10).value() == 3);
  CHECK(q.set_priority(2, 10).value() == 2);
  CHECK(order(q) == std::vector<uint64_t>{1, 2, 3, 4});
  CHECK(q.set_priority(1, 60).value() == 4);
  CHECK(q.set_priority(9, 1).error().code == Errc::not_found);
  CHECK(q.set_priority(1, 1000).error().code == Errc::invalid_argument);
  auto st = q.stats(T0 + 10s);
  CHECK(st.by_priority == std::vector<std::pair<uint32_t, uint32_t>>{{10, 3}, {60, 1}});
  CHECK(st.oldest_wait == 10s);
}

TEST_CASE("queue: hang-up leaves the queue and frees a pending offer's slot") {
  TargetPool pool = pool_of(1);
  CallQueue q;
  REQUIRE(q.enqueue(1, 5, T0).ok());
  REQUIRE(q.enqueue(2, 5, T0 + 1s).ok());
  auto o = q.offer(pool, 0, T0 + 2s);
  REQUIRE(o.ok());
  CHECK(o->call == 1);
  CHECK(pool.state(0).counters.reserved == 1);
  auto gone = q.remove(1, pool);
  REQUIRE(gone.ok());
  CHECK(gone->offer_slot == o->slot.id);
  CHECK(pool.state(0).counters.reserved == 0);
  CHECK(q.remove(1, pool).error().code == Errc::not_found);
  CHECK(q.confirm(*o, T0).error().code == Errc::not_found);
  CHECK(q.position(2).value() == 1);
  CHECK(q.stats(T0).abandoned == 1);
}

TEST_CASE("queue: offers never give one slot or one call twice") {
  TargetPool pool = pool_of(2);
  CallQueue q;
  for (uint64_t c = 1; c <= 4; ++c) REQUIRE(q.enqueue(c, 5, T0).ok());
  auto a = q.offer(pool, 0, T0);
  auto b = q.offer(pool, 0, T0);  // the head has an offer: the next call gets this one
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(a->call == 1);
  CHECK(b->call == 2);
  CHECK(a->slot.id != b->slot.id);
  auto c = q.offer(pool, 0, T0);  // no slot left
  CHECK(c.error().code == Errc::busy);
  CHECK(q.find(3)->offer_slot == 0);  // a failed offer marks nothing
  CHECK(q.stats(T0).offered == 2);

  // Cancel: the slot is free again and the call keeps its place at the head.
  REQUIRE(q.cancel(*a, pool).ok());
  CHECK(q.cancel(*a, pool).error().code == Errc::bad_state);
  CHECK(pool.state(0).counters.reserved == 1);
  CHECK(q.head()->call == 1);
  auto again = q.offer(pool, 0, T0);
  REQUIRE(again.ok());
  CHECK(again->call == 1);
  CHECK(q.confirm(*a, T0).error().code == Errc::bad_state);  // the old offer is void

  // Confirm: the call leaves; its slot stays reserved for the delivery.
  REQUIRE(q.confirm(*again, T0 + 1s).ok());
  CHECK(q.size() == 3);
  CHECK(pool.state(0).counters.reserved == 2);
  REQUIRE(pool.commit(again->slot).ok());
  CHECK(q.stats(T0).served == 1);

  // A filter: call 3 cannot go to this target (already tried there).
  REQUIRE(pool.release(again->slot).ok());
  auto f = q.offer(pool, 0, T0, [](const QueuedCall &qc) { return qc.call != 3; });
  REQUIRE(f.ok());
  CHECK(f->call == 4);
  CHECK(q.offer(pool, 0, T0).error().code == Errc::busy);
  CallQueue empty;
  CHECK(empty.offer(pool, 0, T0).error().message == "the queue is empty");
}

TEST_CASE("queue: max wait expiry returns calls for the overflow exit") {
  TargetPool pool = pool_of(5);
  CallQueue q;
  REQUIRE(q.enqueue(1, 5, T0, 60s).ok());
  REQUIRE(q.enqueue(2, 5, T0 + 10s, 30s).ok());  // deadline +40 s
  REQUIRE(q.enqueue(3, 1, T0 + 20s).ok());       // no limit
  REQUIRE(q.enqueue(4, 5, T0 + 20s, 20s).ok());  // deadline +40 s
  CHECK(q.next_deadline() == T0 + 40s);
  CHECK(q.expire(T0 + 39s).empty());
  auto out = q.expire(T0 + 40s);
  REQUIRE(out.size() == 2);
  CHECK(out[0].call == 2);
  CHECK(out[1].call == 4);
  CHECK(q.next_deadline() == T0 + 60s);
  // A call with a pending offer is not expired until the offer resolves.
  auto o = q.offer(pool, 0, T0 + 50s);  // call 3 (priority 1) is the head
  REQUIRE(o.ok());
  REQUIRE(q.cancel(*o, pool).ok());
  q.set_priority(1, 0).value();
  o = q.offer(pool, 0, T0 + 50s);
  REQUIRE(o.ok());
  CHECK(o->call == 1);
  CHECK(q.expire(T0 + 70s).empty());
  CHECK_FALSE(q.next_deadline());
  REQUIRE(q.cancel(*o, pool).ok());
  out = q.expire(T0 + 70s);
  REQUIRE(out.size() == 1);
  CHECK(out[0].call == 1);
  CHECK(q.size() == 1);
  CHECK(q.stats(T0).expired == 3);
}

TEST_CASE("queue: estimated wait = position x EWMA of service intervals") {
  TargetPool pool = pool_of(100);
  CallQueue q({100000, 0.5, 1});
  for (uint64_t c = 1; c <= 10; ++c) REQUIRE(q.enqueue(c, 5, T0).ok());
  CHECK_FALSE(q.estimated_wait(5));  // nothing served yet
  auto serve = [&](Instant at) {
    auto o = q.offer(pool, 0, at);
    REQUIRE(o.ok());
    REQUIRE(q.confirm(*o, at).ok());
  };
  serve(T0 + 20s);  // I = 20 s (first sample: since the queue became busy)
  CHECK(q.estimated_wait_at(1) == 20s);
  CHECK(q.estimated_wait(4) == 60s);  // call 4 is third now
  serve(T0 + 30s);                    // x = 10 s: I = 0.5 * 10 + 0.5 * 20 = 15 s
  CHECK(q.estimated_wait_at(2) == 30s);
  CHECK(q.stats(T0).service_interval == 15s);
  // An idle gap (queue empty) does not count as service time.
  while (!q.empty()) REQUIRE(q.remove(q.head()->call, pool).ok());
  REQUIRE(q.enqueue(50, 5, T0 + 1000s).ok());
  serve(T0 + 1005s);  // x = 5 s (since the queue became busy again): I = 10 s
  CHECK(q.stats(T0).service_interval == 10s);
}

TEST_CASE("queue: 10 000 calls against a reference model (randomised, seeded)") {
  struct Ref {
    uint64_t call;
    uint32_t priority;
    int64_t at;  // seconds
    uint64_t seq;
    std::optional<int64_t> deadline;
    bool offered = false;
  };
  auto key = [](const Ref &r) { return std::make_tuple(r.priority, r.at, r.seq); };
  std::vector<Ref> ref;
  auto sorted = [&] {
    std::sort(ref.begin(), ref.end(), [&](const Ref &a, const Ref &b) { return key(a) < key(b); });
  };
  auto insert = [&](Ref r) {  // keeps `ref` sorted in O(n)
    auto at = std::upper_bound(ref.begin(), ref.end(), r,
                               [&](const Ref &a, const Ref &b) { return key(a) < key(b); });
    ref.insert(at, r);
  };
  auto find = [&](uint64_t call) {
    return std::find_if(ref.begin(), ref.end(), [&](const Ref &r) { return r.call == call; });
  };

  TargetPool pool = pool_of(100000);
  CallQueue q({100000, 0.2, 12345});
  std::mt19937_64 rng(2026);
  uint64_t next_call = 1, seq = 0;
  int64_t now = 0;
  std::vector<Offer> offers;
  auto instant = [](int64_t s) { return T0 + std::chrono::seconds(s); };

  // Fill to 10 000 first, then mix operations around that size.
  for (int i = 0; i < 10000; ++i) {
    uint32_t prio = static_cast<uint32_t>(rng() % 10) * 100;
    REQUIRE(q.enqueue(next_call, prio, instant(now)).ok());
    ref.push_back({next_call++, prio, now, seq++, std::nullopt});
    if (rng() % 4 == 0) ++now;
  }
  sorted();
  for (int step = 0; step < 20000; ++step) {
    if (rng() % 3 == 0) ++now;
    int op = static_cast<int>(rng() % 8);
    if (op == 0) {  // enqueue, some with a max wait
      uint32_t prio = static_cast<uint32_t>(rng() % 1000);
      std::optional<Duration> mw;
      if (rng() % 3 == 0) mw = std::chrono::seconds(1 + rng() % 500);
      auto pos = q.enqueue(next_call, prio, instant(now), mw);
      REQUIRE(pos.ok());
      Ref r{next_call, prio, now, seq++, std::nullopt};
      if (mw) r.deadline = now + std::chrono::duration_cast<std::chrono::seconds>(*mw).count();
      insert(r);
      REQUIRE(*pos == static_cast<size_t>(find(next_call) - ref.begin()) + 1);
      ++next_call;
    } else if (op == 1 && !ref.empty()) {  // hang-up
      uint64_t call = ref[rng() % ref.size()].call;
      auto r = q.remove(call, pool);
      REQUIRE(r.ok());
      offers.erase(std::remove_if(offers.begin(), offers.end(),
                                  [&](const Offer &o) { return o.call == call; }),
                   offers.end());
      ref.erase(find(call));
    } else if (op == 2 && !ref.empty()) {  // change priority
      uint64_t call = ref[rng() % ref.size()].call;
      uint32_t prio = static_cast<uint32_t>(rng() % 1000);
      auto pos = q.set_priority(call, prio);
      REQUIRE(pos.ok());
      Ref r = *find(call);
      ref.erase(find(call));
      r.priority = prio;
      insert(r);
      REQUIRE(*pos == static_cast<size_t>(find(call) - ref.begin()) + 1);
    } else if (op == 3 && !ref.empty()) {  // position lookups
      for (int k = 0; k < 5; ++k) {
        size_t i = rng() % ref.size();
        REQUIRE(q.position(ref[i].call).value() == i + 1);
        REQUIRE(q.at(i + 1)->call == ref[i].call);
      }
    } else if (op == 4) {  // offer to the first call without an offer
      auto o = q.offer(pool, 0, instant(now));
      auto it = std::find_if(ref.begin(), ref.end(), [](const Ref &r) { return !r.offered; });
      REQUIRE(o.ok() == (it != ref.end()));
      if (o.ok()) {
        REQUIRE(o->call == it->call);
        it->offered = true;
        offers.push_back(*o);
      }
    } else if (op == 5 && !offers.empty()) {  // confirm or cancel an offer
      size_t i = rng() % offers.size();
      Offer o = offers[i];
      offers.erase(offers.begin() + static_cast<long>(i));
      if (rng() % 2) {
        REQUIRE(q.confirm(o, instant(now)).ok());
        REQUIRE(pool.release(o.slot).ok());
        ref.erase(find(o.call));
      } else {
        REQUIRE(q.cancel(o, pool).ok());
        find(o.call)->offered = false;
      }
    } else if (op == 6) {  // expiry
      auto out = q.expire(instant(now));
      std::vector<uint64_t> want;
      std::vector<std::pair<int64_t, uint64_t>> due;
      for (const Ref &r : ref)
        if (r.deadline && *r.deadline <= now && !r.offered) due.push_back({*r.deadline, r.call});
      std::sort(due.begin(), due.end());
      for (auto &[d, c] : due) want.push_back(c);
      std::vector<uint64_t> got;
      for (auto &c : out) got.push_back(c.call);
      REQUIRE(got == want);
      for (uint64_t c : want) ref.erase(find(c));
    } else if (!ref.empty()) {  // head
      REQUIRE(q.head()->call == ref.front().call);
    }
    REQUIRE(q.size() == ref.size());
  }
  // Final full comparison and per-priority counts.
  std::vector<uint64_t> final_order = order(q);
  REQUIRE(final_order.size() == ref.size());
  for (size_t i = 0; i < ref.size(); ++i) REQUIRE(final_order[i] == ref[i].call);
  auto st = q.stats(instant(now));
  size_t total = 0;
  for (auto &[p, n] : st.by_priority) {
    size_t expect = static_cast<size_t>(
        std::count_if(ref.begin(), ref.end(), [&](const Ref &r) { return r.priority == p; }));
    REQUIRE(n == expect);
    total += n;
  }
  CHECK(total == ref.size());
  CHECK(st.offered == offers.size());
  CHECK(pool.state(0).counters.reserved == offers.size());
  int64_t oldest = now;
  for (const Ref &r : ref) oldest = std::min(oldest, r.at);
  CHECK(st.oldest_wait == std::chrono::seconds(now - oldest));
  CHECK(ref.size() > 5000);
}
