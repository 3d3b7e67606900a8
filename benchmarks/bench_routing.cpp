// Micro-benchmark for lib/routing (issue 5, item 8): routing decision latency per strategy
// over 50 targets (rule-chosen with a 20-rule set), and priority-queue operations with
// 10 000 waiting calls (enqueue, remove, position, set_priority, offer to the head with
// cancel or confirm). Each operation is timed on its own with std::chrono::steady_clock;
// heap allocations are counted by replacing global operator new in this binary.
// Results and how to read them: docs/benchmarks.md.
//
//   bench-routing [--decisions N] [--ops N] [--seed S]
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <random>
#include <string>
#include <vector>

#include "routing/call_queue.h"
#include "routing/config.h"
#include "routing/router.h"

#include "alloc_counter.h"  // g_news: heap allocations so far

namespace {

using namespace ivr::routing;
using Clock = std::chrono::steady_clock;
using ivr::rules::Value;

volatile uint64_t g_sink = 0;

[[noreturn]] void die(const std::string &what) {
  std::fprintf(stderr, "bench-routing: %s\n", what.c_str());
  std::exit(1);
}

struct Stats {
  double p50, p99, max, mean;
};

Stats stats_of(std::vector<double> &v) {
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[std::min(v.size() - 1, size_t(q * double(v.size())))]; };
  double sum = 0;
  for (double x : v) sum += x;
  return {at(0.50), at(0.99), v.back(), sum / double(v.size())};
}

void print_row(const char *label, std::vector<double> &ns, uint64_t allocs) {
  Stats s = stats_of(ns);
  std::printf("%-34s %8.2f %8.2f %9.1f %8.2f %8.2f\n", label, s.p50 / 1e3, s.p99 / 1e3, s.max / 1e3,
              s.mean / 1e3, double(allocs) / double(ns.size()));
}

constexpr int kTargets = 50;
constexpr int kRules = 20;

std::string tname(int i) {
  char b[8];
  std::snprintf(b, sizeof b, "t%02d", i);
  return b;
}

// Rule i of the 20-rule set. Rules 0-18 test literals no binding holds (so they are
// evaluated and fail); rule 19 matches about a third of the calls (gold tier, score >= 50).
std::string rule_source(int i) {
  if (i == kRules - 1) return "vars.tier == 'gold' && vars.score >= 50";
  char to[16];
  std::snprintf(to, sizeof to, "+18005559%03d", i);
  switch (i % 4) {
    case 0:
      return "vars.tier == 'tier" + std::to_string(i) + "' && vars.score >= " + std::to_string(i);
    case 1:
      return std::string("call.to == '") + to + "'";
    case 2:
      return "starts_with(call.from, '+44') && vars.language == 'lang" + std::to_string(i) + "'";
    default:
      return std::string("vars.score > 100 || call.to in ['") + to + "', '+19005550000']";
  }
}

struct Env {
  std::deque<std::string> text;
  std::vector<Value> slots;
};

}  // namespace

int main(int argc, char **argv) {
  size_t decisions = 100000;
  size_t ops = 100000;
  uint32_t seed = 1;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--decisions") && i + 1 < argc) {
      decisions = std::strtoul(argv[++i], nullptr, 10);
    } else if (!std::strcmp(argv[i], "--ops") && i + 1 < argc) {
      ops = std::strtoul(argv[++i], nullptr, 10);
    } else if (!std::strcmp(argv[i], "--seed") && i + 1 < argc) {
      seed = uint32_t(std::strtoul(argv[++i], nullptr, 10));
    } else {
      std::fprintf(stderr, "usage: bench-routing [--decisions N] [--ops N] [--seed S]\n");
      return 2;
    }
  }
  decisions = std::max<size_t>(decisions, 100);
  ops = std::max<size_t>(ops, 100);
  std::mt19937 rng(seed);
  const Instant t0 = Instant{} + std::chrono::hours(1);

  // ---- configuration: 50 targets, one plan per strategy over all of them ----
  RoutingConfig config;
  for (int i = 0; i < kTargets; ++i) {
    TargetConfig t;
    t.name = tname(i);
    t.uris = {{"sip:queue@" + t.name + ".example", Transport::udp}};
    t.capacity = 100;
    t.weight = 1 + rng() % 100;
    t.priority = rng() % 5;
    if (i % 5 == 0) t.availability.rule = AgentRule::idle_agent;
    config.targets.push_back(std::move(t));
  }
  std::vector<std::string> all;
  for (int i = 0; i < kTargets; ++i) all.push_back(tname(i));
  const Strategy strategies[] = {Strategy::failover,   Strategy::round_robin, Strategy::weighted,
                                 Strategy::least_busy, Strategy::most_idle,   Strategy::sticky,
                                 Strategy::rules};
  for (Strategy s : strategies) {
    PlanEntryConfig e;
    e.strategy = s;
    e.targets = all;
    if (s == Strategy::rules)
      for (int i = 0; i < kRules; ++i) e.rules.push_back({rule_source(i), tname(i)});
    config.plans.push_back({strategy_name(s), {e}});
  }
  auto created = Router::create(std::move(config), t0);
  if (!created.ok()) die(created.error().message);
  Router router = std::move(created).value();
  TargetPool &pool = router.pool();

  // Live state: two down, one draining, one full, random load elsewhere; availability for
  // all but five (those are stale), so every skip reason and ranking path is taken.
  for (TargetIndex i = 0; i < kTargets; ++i) {
    if (i == 7 || i == 23) pool.force_health(i, false, t0);
    if (i == 31) pool.set_draining(i, true);
    uint32_t load = i == 42 ? 100 : rng() % 60;
    for (uint32_t k = 0; k < load; ++k)
      if (!pool.try_reserve(i, t0).ok()) break;
    if (i % 10 != 9) {
      AvailabilitySample s;
      s.agents_logged_in = 80;
      s.agents_available = 40 + rng() % 40;
      s.calls_waiting = rng() % 5;
      pool.update_availability(i, s, t0);
    }
  }

  // Bindings: 256 callers with varied numbers, tiers, languages and scores.
  constexpr size_t kEnvs = 256;
  std::vector<Env> envs(kEnvs);
  std::vector<ivr::rules::Bindings> binds;
  const char *tiers[] = {"bronze", "silver", "gold", "platinum"};
  const char *langs[] = {"en", "es", "fr", "de"};
  const char *prefixes[] = {"+1212", "+1415", "+44207", "+4930", "+33142", "+1646"};
  for (Env &e : envs) {
    e.slots.assign(router.variables().size(), Value{});
    auto set = [&](const char *name, Value v) {
      int64_t slot = router.slot_of(name);
      if (slot >= 0) e.slots[size_t(slot)] = v;
    };
    auto set_str = [&](const char *name, std::string s) {
      e.text.push_back(std::move(s));
      set(name, Value::string(e.text.back()));
    };
    char buf[32];
    std::snprintf(buf, sizeof buf, "%s%07u", prefixes[rng() % 6], unsigned(rng() % 10000000));
    set_str("call.from", buf);
    std::snprintf(buf, sizeof buf, "+18005550%03u", unsigned(rng() % 1000));
    set_str("call.to", buf);
    set_str("vars.tier", tiers[rng() % 4]);
    set_str("vars.language", langs[rng() % 4]);
    set("vars.score", Value::number(double(rng() % 101)));
  }
  for (Env &e : envs) binds.push_back({e.slots.data(), e.slots.size()});

  // Timer cost and how often the VM takes the CPU away (as bench-rules measures it).
  double timer_ns;
  {
    constexpr int n = 100000;
    auto a = Clock::now();
    for (int i = 0; i < n; ++i) g_sink = g_sink + uint64_t(Clock::now().time_since_epoch().count());
    timer_ns = std::chrono::duration<double, std::nano>(Clock::now() - a).count() / n;
  }
  size_t gaps = 0;
  double gap_total = 0;
  std::vector<double> gap_len;
  {
    auto end = Clock::now() + std::chrono::seconds(1);
    auto prev = Clock::now();
    for (;;) {
      auto t = Clock::now();
      double d = std::chrono::duration<double, std::nano>(t - prev).count();
      if (d > 5000) {
        ++gaps;
        gap_total += d;
        gap_len.push_back(d);
      }
      prev = t;
      if (t > end) break;
    }
  }
  std::sort(gap_len.begin(), gap_len.end());
  std::printf(
      "machine: %zu gaps > 5 us per second while spinning, median %.1f us, %.1f %% of the "
      "time\n",
      gaps, gap_len.empty() ? 0.0 : gap_len[gap_len.size() / 2] / 1e3, gap_total / 1e7);
  std::printf(
      "bench-routing: %d targets, %d rules, %zu decisions, %zu queue ops, seed %u, "
      "steady_clock::now() %.1f ns\n\n",
      kTargets, kRules, decisions, ops, seed, timer_ns);

  // ---- (1) decisions ----
  std::printf("%-34s %8s %8s %9s %8s %8s\n", "decision (50 targets), us", "p50", "p99", "max",
              "mean", "allocs");
  const WallTime wall =
      std::chrono::sys_days{std::chrono::year{2026} / 3 / 2} + std::chrono::hours(10);
  Decision d;
  std::vector<double> ns(decisions);
  for (uint32_t plan = 0; plan < router.plan_count(); ++plan) {
    DecisionInput in;
    in.now = t0;
    in.wall = wall;
    size_t matched = 0, candidates = 0;
    for (size_t i = 0; i < 5000; ++i) {
      in.bindings = binds[i % kEnvs];
      if (!router.decide(plan, in, d).ok()) die("decide failed");
    }
    uint64_t a0 = g_news.load();
    for (size_t i = 0; i < decisions; ++i) {
      in.bindings = binds[i % kEnvs];
      auto s = Clock::now();
      (void)router.decide(plan, in, d);
      auto e = Clock::now();
      ns[i] = std::chrono::duration<double, std::nano>(e - s).count();
      matched += d.rule >= 0;
      candidates += d.candidates.size();
    }
    uint64_t allocs = g_news.load() - a0;
    std::string label = router.plan_name(plan);
    if (label == "rules")
      label += " (20 rules, " + std::to_string(matched * 100 / decisions) + "% match)";
    print_row(label.c_str(), ns, allocs);
    g_sink = g_sink + candidates;
  }
  // The whole routing step of a call: decide, reserve the first candidate, release it.
  {
    uint32_t plan = *router.find_plan("weighted");
    DecisionInput in;
    in.now = t0;
    in.wall = wall;
    uint64_t a0 = g_news.load();
    for (size_t i = 0; i < decisions; ++i) {
      auto s = Clock::now();
      (void)router.decide(plan, in, d);
      auto slot = router.reserve_first(d, t0);
      if (slot) (void)pool.release(*slot);
      auto e = Clock::now();
      ns[i] = std::chrono::duration<double, std::nano>(e - s).count();
    }
    print_row("weighted + reserve + release", ns, g_news.load() - a0);
  }

  // ---- (2) the queue with 10 000 waiting calls ----
  std::printf("\n%-34s %8s %8s %9s %8s %8s\n", "queue (10 000 waiting), us", "p50", "p99", "max",
              "mean", "allocs");
  TargetPool qpool;
  {
    TargetConfig t;
    t.name = "agents";
    t.uris = {{"sip:a@h", Transport::udp}};
    t.capacity = kMaxCapacity;
    if (!qpool.configure({t}, t0).ok()) die("queue pool");
  }
  CallQueue q({200000, 0.2, seed});
  std::vector<uint64_t> ids;  // waiting calls
  uint64_t next_call = 1;
  Instant now = t0;
  auto prio = [&] { return uint32_t(rng() % 10) * 100 + uint32_t(rng() % 3); };
  std::vector<double> fill(10000);
  uint64_t a0 = g_news.load();
  for (size_t i = 0; i < 10000; ++i) {
    now += std::chrono::milliseconds(1);
    std::optional<Duration> mw;
    if (i % 2) mw = std::chrono::minutes(30);
    auto s = Clock::now();
    auto r = q.enqueue(next_call, prio(), now, mw);
    auto e = Clock::now();
    if (!r.ok()) die(r.error().message);
    fill[i] = std::chrono::duration<double, std::nano>(e - s).count();
    ids.push_back(next_call++);
  }
  print_row("enqueue (filling 0 -> 10 000)", fill, g_news.load() - a0);

  ns.assign(ops, 0);
  std::vector<double> ns2(ops);
  // Hang-up of a random waiting call, then a new call joins (size stays 10 000).
  uint64_t alloc_remove = 0, alloc_enqueue = 0;
  for (size_t i = 0; i < ops; ++i) {
    now += std::chrono::milliseconds(1);
    size_t k = rng() % ids.size();
    uint64_t a = g_news.load();
    auto s = Clock::now();
    auto r = q.remove(ids[k], qpool);
    auto e = Clock::now();
    alloc_remove += g_news.load() - a;
    if (!r.ok()) die(r.error().message);
    ns[i] = std::chrono::duration<double, std::nano>(e - s).count();
    ids[k] = ids.back();
    ids.pop_back();
    std::optional<Duration> mw;
    if (i % 2) mw = std::chrono::minutes(30);
    a = g_news.load();
    s = Clock::now();
    auto p = q.enqueue(next_call, prio(), now, mw);
    e = Clock::now();
    alloc_enqueue += g_news.load() - a;
    if (!p.ok()) die(p.error().message);
    ns2[i] = std::chrono::duration<double, std::nano>(e - s).count();
    ids.push_back(next_call++);
  }
  print_row("enqueue (at 10 000)", ns2, alloc_enqueue);
  print_row("remove (hang-up, random call)", ns, alloc_remove);

  a0 = g_news.load();
  for (size_t i = 0; i < ops; ++i) {
    uint64_t c = ids[rng() % ids.size()];
    auto s = Clock::now();
    auto r = q.position(c);
    auto e = Clock::now();
    g_sink = g_sink + r.value();
    ns[i] = std::chrono::duration<double, std::nano>(e - s).count();
  }
  print_row("position (random call)", ns, g_news.load() - a0);

  a0 = g_news.load();
  for (size_t i = 0; i < ops; ++i) {
    uint64_t c = ids[rng() % ids.size()];
    uint32_t p = prio();
    auto s = Clock::now();
    auto r = q.set_priority(c, p);
    auto e = Clock::now();
    g_sink = g_sink + r.value();
    ns[i] = std::chrono::duration<double, std::nano>(e - s).count();
  }
  print_row("set_priority (random call)", ns, g_news.load() - a0);

  a0 = g_news.load();
  for (size_t i = 0; i < ops; ++i) {
    uint64_t c = ids[rng() % ids.size()];
    auto s = Clock::now();
    auto w = q.estimated_wait(c);
    auto e = Clock::now();
    g_sink = g_sink + (w ? uint64_t(w->count()) : 0);
    ns[i] = std::chrono::duration<double, std::nano>(e - s).count();
  }
  print_row("estimated_wait (random call)", ns, g_news.load() - a0);

  // Offer to the head and cancel (the head keeps its place).
  uint64_t alloc_cancel = 0;
  a0 = g_news.load();
  for (size_t i = 0; i < ops; ++i) {
    auto s = Clock::now();
    auto o = q.offer(qpool, 0, now);
    auto e = Clock::now();
    if (!o.ok()) die(o.error().message);
    ns[i] = std::chrono::duration<double, std::nano>(e - s).count();
    uint64_t a = g_news.load();
    s = Clock::now();
    (void)q.cancel(*o, qpool);
    e = Clock::now();
    alloc_cancel += g_news.load() - a;
    ns2[i] = std::chrono::duration<double, std::nano>(e - s).count();
  }
  print_row("offer head (reserve a slot)", ns, g_news.load() - a0 - alloc_cancel);
  print_row("cancel offer", ns2, alloc_cancel);

  // Offer to the head and confirm (the call leaves; a new one joins to keep 10 000).
  a0 = g_news.load();
  uint64_t alloc_other = 0;
  for (size_t i = 0; i < ops; ++i) {
    now += std::chrono::milliseconds(1);
    auto s = Clock::now();
    auto o = q.offer(qpool, 0, now);
    if (!o.ok()) die(o.error().message);
    (void)q.confirm(*o, now);
    auto e = Clock::now();
    ns[i] = std::chrono::duration<double, std::nano>(e - s).count();
    uint64_t a = g_news.load();
    (void)qpool.release(o->slot);
    auto it = std::find(ids.begin(), ids.end(), o->call);
    *it = ids.back();
    ids.pop_back();
    if (!q.enqueue(next_call, prio(), now).ok()) die("enqueue");
    ids.push_back(next_call++);
    alloc_other += g_news.load() - a;
  }
  print_row("offer head + confirm", ns, g_news.load() - a0 - alloc_other);

  // Nothing due: the timer's check.
  a0 = g_news.load();
  for (size_t i = 0; i < ops; ++i) {
    auto s = Clock::now();
    auto out = q.expire(now);
    auto e = Clock::now();
    g_sink = g_sink + out.size();
    ns[i] = std::chrono::duration<double, std::nano>(e - s).count();
  }
  print_row("expire (nothing due)", ns, g_news.load() - a0);

  auto st = q.stats(now);
  std::printf("\nqueue at the end: %zu calls, %zu priorities in use, service interval %.1f ms\n",
              st.size, st.by_priority.size(),
              st.service_interval
                  ? std::chrono::duration<double, std::milli>(*st.service_interval).count()
                  : 0.0);
  return 0;
}
