#include <map>
#include <random>

#include "routing_test_util.h"

using namespace rtest;

TEST_CASE("failover: priority, then list order; skipped targets named with reasons") {
  Router r = router({target("a", 10, 1, 1), target("b", 10, 1, 0), target("c", 10, 1, 0)},
                    Strategy::failover);
  Decision d = decide(r);
  CHECK(names(r, d) == V{"b", "c", "a"});
  CHECK(d.skipped.empty());
  CHECK(d.entry == 0);
  CHECK(d.strategy == Strategy::failover);
  r.pool().force_health(idx(r, "b"), false, T0);
  d = decide(r);
  CHECK(names(r, d) == V{"c", "a"});
  CHECK(skipped(r, d) == V{"b:down"});
  CHECK(r.describe(d) == "plan p entry 0 failover: c, a; skipped b (down)");
}

TEST_CASE("every skip reason") {
  auto agents = target("agents", 5);
  agents.availability.rule = AgentRule::idle_agent;
  auto stale = target("stale", 5);
  stale.availability.rule = AgentRule::idle_agent;
  Router r = router({target("down"), target("drain"), target("full", 1), agents, stale,
                     target("tried"), target("ok")},
                    Strategy::failover);
  TargetPool &p = r.pool();
  p.force_health(idx(r, "down"), false, T0);
  p.set_draining(idx(r, "drain"), true);
  REQUIRE(p.try_reserve(idx(r, "full"), T0).ok());
  p.update_availability(idx(r, "agents"), {0, 3, 0, 0}, T0);
  DecisionInput in = input();
  TargetIndex tried[] = {idx(r, "tried")};
  in.exclude = tried;
  Decision d = decide(r, in);
  CHECK(names(r, d) == V{"ok"});
  CHECK(skipped(r, d) == V{"down:down", "drain:draining", "full:full", "agents:no agents",
                           "stale:stale availability", "tried:tried"});
}

TEST_CASE("round robin rotates through the set and past skipped targets") {
  Router r = router({target("a"), target("b"), target("c")}, Strategy::round_robin);
  CHECK(names(r, decide(r)) == V{"a", "b", "c"});
  CHECK(names(r, decide(r)) == V{"b", "c", "a"});
  CHECK(names(r, decide(r)) == V{"c", "a", "b"});
  CHECK(names(r, decide(r)) == V{"a", "b", "c"});
  r.pool().force_health(idx(r, "b"), false, T0);
  std::vector<std::string> firsts;
  for (int i = 0; i < 4; ++i) firsts.push_back(names(r, decide(r))[0]);
  CHECK(firsts == V{"c", "a", "c", "a"});
}

TEST_CASE("weighted: smooth weighted round robin, nginx's sequence") {
  Router r =
      router({target("a", 10, 5), target("b", 10, 1), target("c", 10, 1)}, Strategy::weighted);
  std::string seq;
  for (int i = 0; i < 7; ++i) seq += names(r, decide(r))[0];
  CHECK(seq == "aabacaa");
  // Each decision lists every eligible target: the pick, then by current weight.
  Decision d = decide(r);
  CHECK(d.candidates.size() == 3);
}

TEST_CASE("weighted: exact shares over whole cycles, and among eligible targets only") {
  std::mt19937 rng(7);
  std::vector<TargetConfig> ts;
  uint32_t total = 0;
  for (int i = 0; i < 50; ++i) {
    uint32_t w = 1 + rng() % 100;
    total += w;
    ts.push_back(target("t" + std::to_string(i), 10, w));
  }
  Router r = router(ts, Strategy::weighted);
  std::map<std::string, uint32_t> count;
  for (uint32_t i = 0; i < 10 * total; ++i) ++count[names(r, decide(r))[0]];
  for (auto &t : ts) CHECK_MESSAGE(count[t.name] == 10 * t.weight, t.name);

  // Three targets 1:2:7; with the 7 down the others share 1:2.
  Router s =
      router({target("x", 10, 1), target("y", 10, 2), target("z", 10, 7)}, Strategy::weighted);
  std::map<std::string, int> c;
  for (int i = 0; i < 1000; ++i) ++c[names(s, decide(s))[0]];
  CHECK(c["x"] == 100);
  CHECK(c["y"] == 200);
  CHECK(c["z"] == 700);
  s.pool().force_health(idx(s, "z"), false, T0);
  c.clear();
  for (int i = 0; i < 999; ++i) ++c[names(s, decide(s))[0]];
  CHECK(c["z"] == 0);
  CHECK(c["x"] >= 332);
  CHECK(c["x"] <= 334);
  CHECK(c["y"] >= 665);
  CHECK(c["y"] <= 667);
}

TEST_CASE("least busy: (active + reserved) / capacity, ties by priority then order") {
  Router r = router({target("a", 10, 1, 1), target("b", 10), target("c", 4), target("d", 10, 1, 0)},
                    Strategy::least_busy);
  TargetPool &p = r.pool();
  auto load = [&](std::string_view name, int n) {
    for (int i = 0; i < n; ++i) REQUIRE(p.try_reserve(idx(r, name), T0).ok());
  };
  load("a", 5);  // 0.5
  load("b", 2);  // 0.2
  load("c", 1);  // 0.25
  load("d", 2);  // 0.2, same as b and same priority: list order
  Decision d = decide(r);
  CHECK(names(r, d) == V{"b", "d", "c", "a"});
  CHECK(d.candidates[0].score == doctest::Approx(0.2));
  CHECK(d.candidates[3].score == doctest::Approx(0.5));
  load("c", 3);  // full
  d = decide(r);
  CHECK(names(r, d) == V{"b", "d", "a"});
  CHECK(skipped(r, d) == V{"c:full"});
}

TEST_CASE("most idle: fresh data ranked by idle agents; stale and missing data last") {
  auto strict = target("strict");
  strict.availability.rule = AgentRule::idle_agent;
  Router r =
      router({target("a"), target("b"), target("stale"), target("none"), target("c"), strict},
             Strategy::most_idle);
  TargetPool &p = r.pool();
  p.update_availability(idx(r, "a"), {3, 5, 0, 0}, T0);
  p.update_availability(idx(r, "b"), {7, 9, 0, 0}, T0);
  p.update_availability(idx(r, "c"), {3, 3, 0, 0}, T0);
  p.update_availability(idx(r, "stale"), {50, 50, 0, 0}, T0 - 31s);  // older than 30 s
  p.update_availability(idx(r, "strict"), {9, 9, 0, 0}, T0 - 31s);
  Decision d = decide(r);
  CHECK(names(r, d) == V{"b", "a", "c", "stale", "none"});
  CHECK(skipped(r, d) == V{"strict:stale availability"});
  CHECK(d.candidates[0].score == 7);
  CHECK_FALSE(d.candidates[2].fallback);
  CHECK(d.candidates[3].fallback);
  CHECK(d.candidates[4].fallback);
  // Reservations take agents: five on b leave it 2 idle, behind a and c (3 each).
  for (int i = 0; i < 5; ++i) REQUIRE(p.try_reserve(idx(r, "b"), T0).ok());
  CHECK(names(r, decide(r)) == V{"a", "c", "b", "stale", "none"});
}

namespace {
// The first candidate for each of n keys.
std::vector<std::string> firsts(Router &r, int n, std::vector<std::string> *seconds = nullptr) {
  std::vector<std::string> out;
  for (int k = 0; k < n; ++k) {
    Vars v(r);
    v.str("call.from", "+4930" + std::to_string(1000000 + k * 7919));
    Decision d = decide(r, input(T0, v.bindings()));
    out.push_back(d.candidates.empty() ? "" : r.pool().name(d.candidates[0].target));
    if (seconds)
      seconds->push_back(d.candidates.size() > 1 ? r.pool().name(d.candidates[1].target) : "");
  }
  return out;
}
std::vector<TargetConfig> ten(int skip = -1, uint32_t weight_of_t0 = 1) {
  std::vector<TargetConfig> ts;
  for (int i = 0; i < 10; ++i)
    if (i != skip) ts.push_back(target("t" + std::to_string(i), 10, i == 0 ? weight_of_t0 : 1));
  return ts;
}
}  // namespace

TEST_CASE("sticky: the same key gets the same order") {
  Router r = router(ten(), Strategy::sticky);
  Vars v(r);
  v.str("call.from", "+12125550100");
  Decision a = decide(r, input(T0, v.bindings()));
  Decision b = decide(r, input(T0, v.bindings()));
  CHECK(names(r, a) == names(r, b));
  CHECK(a.candidates.size() == 10);
  CHECK(a.key == "+12125550100");
  CHECK(a.candidates[0].score >= a.candidates[1].score);
  // Keys spread over the targets.
  std::map<std::string, int> count;
  for (auto &f : firsts(r, 10000)) ++count[f];
  CHECK(count.size() == 10);
  for (auto &[name, n] : count) CHECK_MESSAGE((n > 800 && n < 1200), name << " " << n);
}

TEST_CASE("sticky: removing a target moves only that target's keys, to their second choice") {
  Router full = router(ten(), Strategy::sticky);
  std::vector<std::string> second;
  auto before = firsts(full, 10000, &second);
  Router less = router(ten(4), Strategy::sticky);
  auto after = firsts(less, 10000);
  int moved = 0;
  for (size_t k = 0; k < before.size(); ++k) {
    if (before[k] == "t4") {
      ++moved;
      CHECK(after[k] == second[k]);
    } else {
      REQUIRE(after[k] == before[k]);
    }
  }
  CHECK(moved > 800);
  // The same when the target is down rather than removed; and adding it back moves only the
  // keys it wins.
  full.pool().force_health(idx(full, "t4"), false, T0);
  CHECK(firsts(full, 10000) == after);
  full.pool().force_health(idx(full, "t4"), true, T0);
  CHECK(firsts(full, 10000) == before);
}

TEST_CASE("sticky: weighted rendezvous shares follow the weights") {
  Router r = router(ten(-1, 4), Strategy::sticky);  // t0 weighs 4 of 13
  std::map<std::string, int> count;
  for (auto &f : firsts(r, 13000)) ++count[f];
  CHECK(count["t0"] > 3600);  // expected 4000
  CHECK(count["t0"] < 4400);
  CHECK(count["t5"] > 800);  // expected 1000
  CHECK(count["t5"] < 1200);
}

TEST_CASE("sticky: no key or a key expression over other variables") {
  Router r = router({target("a", 10, 1, 2), target("b", 10, 1, 1)}, Strategy::sticky);
  Decision d = decide(r);  // call.from is null
  CHECK(names(r, d) == V{"b", "a"});
  CHECK(d.candidates[0].fallback);
  CHECK(d.note == "no call key; failover order");

  Router k =
      router({target("a"), target("b"), target("c")}, Strategy::sticky, {}, "vars.account_id");
  CHECK(k.variables() == V{"vars.account_id"});
  Vars v(k);
  v.num("vars.account_id", 123456);
  Decision n = decide(k, input(T0, v.bindings()));
  CHECK(n.key == "123456");
  CHECK(n.candidates.size() == 3);
  CHECK_FALSE(n.candidates[0].fallback);
}

TEST_CASE("rules: the chosen target first, then failover order") {
  std::vector<RuleSpec> rules = {{"vars.tier == 'gold'", "c"},
                                 {"starts_with(call.from, '+44')", "b"},
                                 {"vars.score / vars.zero > 1", "a"}};
  Router r = router({target("a", 10, 1, 1), target("b"), target("c")}, Strategy::rules, rules);
  Vars gold(r);
  gold.str("vars.tier", "gold");
  Decision d = decide(r, input(T0, gold.bindings()));
  CHECK(names(r, d) == V{"c", "b", "a"});
  CHECK(d.rule == 0);
  CHECK(d.rule_target == static_cast<int32_t>(idx(r, "c")));
  CHECK_FALSE(d.candidates[0].fallback);
  CHECK(d.candidates[1].fallback);
  CHECK(r.describe(d) == "plan p entry 0 rules rule 1 -> c: c, b, a");

  Vars uk(r);
  uk.str("call.from", "+442071234567");
  uk.str("vars.tier", "silver");
  d = decide(r, input(T0, uk.bindings()));
  CHECK(names(r, d) == V{"b", "c", "a"});
  CHECK(d.rule == 1);

  // The chosen target is down: skipped, the rest in failover order.
  r.pool().force_health(idx(r, "c"), false, T0);
  d = decide(r, input(T0, gold.bindings()));
  CHECK(names(r, d) == V{"b", "a"});
  CHECK(skipped(r, d) == V{"c:down"});
  CHECK(d.rule_target == static_cast<int32_t>(idx(r, "c")));
  r.pool().force_health(idx(r, "c"), true, T0);

  // A rule that fails to evaluate: the call is still routed, in failover order, with a note.
  Vars err(r);
  err.num("vars.score", 5).num("vars.zero", 0);
  d = decide(r, input(T0, err.bindings()));
  CHECK(names(r, d) == V{"b", "c", "a"});
  CHECK(d.rule == -1);
  CHECK(d.note.find("division by zero") != std::string::npos);
  CHECK(d.note.find("failover order") != std::string::npos);

  // No rule matches: failover order.
  d = decide(r);
  CHECK(names(r, d) == V{"b", "c", "a"});
  CHECK(d.rule == -1);
  CHECK(d.note.empty());
}

TEST_CASE("reserve_first walks the candidates in order") {
  Router r = router({target("a", 1), target("b", 1)}, Strategy::failover);
  Decision d = decide(r);
  REQUIRE(r.pool().try_reserve(idx(r, "a"), T0).ok());  // a fills up after the decision
  size_t tried = 99;
  auto slot = r.reserve_first(d, T0, &tried);
  REQUIRE(slot);
  CHECK(tried == 1);
  CHECK(slot->target == idx(r, "b"));
  CHECK_FALSE(r.reserve_first(d, T0));
}

TEST_CASE("decisions reuse the Decision's storage") {
  Router r = router({target("a"), target("b")}, Strategy::least_busy);
  Decision d;
  REQUIRE(r.decide(0, input(), d).ok());
  const Candidate *data = d.candidates.data();
  REQUIRE(r.decide(0, input(), d).ok());
  CHECK(d.candidates.data() == data);
  CHECK(r.decide(7, input(), d).error().code == ivr::Errc::not_found);
  CHECK(r.decide("nope", input()).error().message == "plan 'nope': no such plan");
}
