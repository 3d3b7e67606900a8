#include "routing/config.h"
#include "routing_test_util.h"

using namespace rtest;
using ivr::Errc;

namespace {

const char *kGood = R"J({
  "description": "sales routing",
  "targets": {
    "vicidial": {
      "uris": ["sip:8300@10.0.0.5:5060", {"uri": "sip:8300@10.0.0.6", "transport": "tcp"}],
      "username": "ivr", "password_secret": "vicidial.sip",
      "capacity": 30, "weight": 60, "priority": 1,
      "headers": {"X-Lead-Id": "{{vars.lead_id}}", "User-to-User": "{{vars.uui}};encoding=hex"},
      "probe": {"interval_s": 5, "down_after": 2, "up_after": 3, "min_hold_s": 10},
      "availability": {"rule": "idle_agent", "subtract_calls_waiting": true, "stale_after_s": 20}
    },
    "five9": {"uris": ["sips:campaign@five9.example"], "capacity": 100, "weight": 40},
    "overflow": {"uris": ["sip:vm@10.0.0.9;transport=TLS"], "capacity": 5,
                 "probe": {"enabled": false}}
  },
  "target_sets": {"sales": ["vicidial", "five9"]},
  "schedules": {
    "office": {"time_zone": "Europe/Berlin",
               "weekly": {"mon": ["09:00-17:00"], "tue": ["09:00-17:00"]},
               "holidays": [{"date": "12-25"}],
               "overrides": [{"from": "2026-06-01T12:00", "to": "2026-06-01T13:00"}]}
  },
  "plans": {
    "sales": {"entries": [
      {"schedule": "office", "strategy": "weighted", "set": "sales"},
      {"strategy": "rules", "targets": ["vicidial", "overflow"],
       "rules": [{"when": "vars.tier == 'gold' && in_schedule('office')", "then": "vicidial"}]},
      {"strategy": "sticky", "set": "sales", "key": "vars.account"}
    ]},
    "simple": {"entries": [{"targets": ["overflow"]}]}
  }
})J";

std::string error_of(const std::string &json) {
  auto c = parse_routing_config(json);
  REQUIRE_MESSAGE(!c.ok(), "parsed unexpectedly: " << json);
  return c.error().message;
}

// A config whose one target has `fields` (inside the object) and one plan over it.
std::string with_target(const std::string &fields) {
  return R"({"targets": {"vicidial": {)" + fields +
         R"(}}, "plans": {"p": {"entries": [{"targets": ["vicidial"]}]}}})";
}

std::string with_entry(const std::string &entry) {
  return R"({"targets": {"a": {"uris": ["sip:a@h"], "capacity": 1},
                         "b": {"uris": ["sip:b@h"], "capacity": 1}},
             "target_sets": {"s": ["a", "b"]},
             "schedules": {"office": {"time_zone": "UTC", "weekly": {"mon": ["09:00-17:00"]}}},
             "plans": {"p": {"entries": [)" +
         entry + "]}}}";
}

}  // namespace

TEST_CASE("config: a full configuration") {
  auto c = parse_routing_config(kGood);
  REQUIRE_MESSAGE(c.ok(), (c.ok() ? "" : c.error().message));
  REQUIRE(c->targets.size() == 3);
  const TargetConfig &v = c->targets[0];
  CHECK(v.name == "vicidial");
  REQUIRE(v.uris.size() == 2);
  CHECK(v.uris[0].transport == Transport::udp);
  CHECK(v.uris[1].transport == Transport::tcp);
  CHECK(v.username == "ivr");
  CHECK(v.password_secret == "vicidial.sip");
  CHECK(v.capacity == 30);
  CHECK(v.weight == 60);
  CHECK(v.priority == 1);
  REQUIRE(v.headers.size() == 2);
  CHECK(v.headers[0].name == "X-Lead-Id");
  CHECK(v.headers[0].value == "{{vars.lead_id}}");
  CHECK(v.probe.min_hold_s == 10);
  CHECK(v.availability.rule == AgentRule::idle_agent);
  CHECK(v.availability.subtract_calls_waiting);
  CHECK(v.availability.stale_after_s == 20);
  CHECK(c->targets[1].uris[0].transport == Transport::tls);  // sips:
  CHECK(c->targets[2].uris[0].transport == Transport::tls);  // ;transport=TLS
  CHECK_FALSE(c->targets[2].probe.enabled);
  CHECK(c->targets[2].weight == 1);
  REQUIRE(c->sets.size() == 1);
  CHECK(c->schedules.find("office"));
  REQUIRE(c->plans.size() == 2);
  CHECK(c->plans[0].entries[1].strategy == Strategy::rules);
  CHECK(c->plans[0].entries[2].key == "vars.account");
  CHECK(c->plans[1].entries[0].strategy == Strategy::failover);

  auto r = Router::create(std::move(c).value(), T0);
  REQUIRE(r.ok());
  CHECK(r->variables() == V{"vars.tier", "vars.account"});
  CHECK(r->plan_count() == 2);
}

TEST_CASE("config: target errors name the field path") {
  CHECK(error_of(with_target(R"("uris": ["sip:a@h"], "capacity": 0)")) ==
        "routing.targets.vicidial.capacity: must be an integer from 1 to 100000");
  CHECK(error_of(with_target(R"("uris": ["sip:a@h"], "capacity": 2.5)")) ==
        "routing.targets.vicidial.capacity: must be an integer from 1 to 100000");
  CHECK(error_of(with_target(R"("uris": ["sip:a@h"])")) ==
        "routing.targets.vicidial.capacity: missing (the most concurrent calls the target "
        "takes, 1 to 100000)");
  CHECK(error_of(with_target(R"("capacity": 1)")) == "routing.targets.vicidial.uris: missing");
  CHECK(error_of(with_target(R"("uris": [], "capacity": 1)")) ==
        "routing.targets.vicidial.uris: at least one SIP URI is needed");
  CHECK(error_of(with_target(R"("uris": [7], "capacity": 1)")) ==
        "routing.targets.vicidial.uris[0]: must be a SIP URI string or {\"uri\": ..., "
        "\"transport\": ...}");
  CHECK(error_of(
            with_target(R"("uris": [{"uri": "sip:a@h", "transport": "sctp"}], "capacity": 1)")) ==
        "routing.targets.vicidial.uris[0].transport: must be udp, tcp or tls");
  CHECK(error_of(with_target(R"("uris": ["sip:a@h;transport=ws"], "capacity": 1)")) ==
        "routing.targets.vicidial.uris[0]: transport parameter must be udp, tcp or tls");
  CHECK(error_of(with_target(R"("uris": ["tel:+1212"], "capacity": 1)"))
            .rfind("routing.targets.vicidial.uris[0]: not a SIP URI", 0) == 0);
  CHECK(error_of(with_target(R"("uris": ["sip:a@h"], "capacity": 1, "weight": 0)")) ==
        "routing.targets.vicidial.weight: must be an integer from 1 to 100");
  CHECK(error_of(with_target(R"("uris": ["sip:a@h"], "capacity": 1, "priority": -1)")) ==
        "routing.targets.vicidial.priority: must be an integer from 0 to 999");
  CHECK(error_of(with_target(R"("uris": ["sip:a@h"], "capacity": 1, "headers": {"Via": "x"})")) ==
        "routing.targets.vicidial.headers.Via: header name must be X-<token> or User-to-User");
  CHECK(error_of(with_target(R"("uris": ["sip:a@h"], "capacity": 1, "headers": {"X-A": 1})")) ==
        "routing.targets.vicidial.headers.X-A: must be a string (template text)");
  CHECK(error_of(with_target(R"("uris": ["sip:a@h"], "capacity": 1, "probe": {"up_after": 0})")) ==
        "routing.targets.vicidial.probe.up_after: must be an integer from 1 to 100");
  CHECK(error_of(with_target(R"("uris": ["sip:a@h"], "capacity": 1, "probe": {"interval": 5})")) ==
        "routing.targets.vicidial.probe.interval: unknown field (known: enabled, interval_s, "
        "down_after, up_after, min_hold_s)");
  CHECK(error_of(with_target(
            R"("uris": ["sip:a@h"], "capacity": 1, "availability": {"rule": "agents"})")) ==
        "routing.targets.vicidial.availability.rule: must be \"none\" or \"idle_agent\"");
  CHECK(error_of(with_target(R"("uris": ["sip:a@h"], "capacity": 1, "password": "hunter2")")) ==
        "routing.targets.vicidial.password: unknown field (known: uris, username, "
        "password_secret, capacity, weight, priority, headers, delivery, media_timeout_s, probe, "
        "availability, "
        "description)");
  CHECK(error_of(with_target(R"("uris": ["sip:a@h"], "capacity": 1, "username": "u")")) ==
        "routing.targets.vicidial.password_secret: missing (username is set)");
  CHECK(error_of(R"({"targets": {"bad.name": {"uris": ["sip:a@h"], "capacity": 1}}, "plans": {}})")
            .rfind("routing.targets.bad.name: target name must be", 0) == 0);
  // A key that is not printable is not echoed.
  CHECK(error_of(R"({"targets": {"a\u0001b": {"uris": ["sip:a@h"], "capacity": 1}}, "plans": {}})")
            .rfind("routing.targets.(a member): target name must be", 0) == 0);
}

TEST_CASE("config: a target's delivery method") {
  auto method = [](const char *field) {
    auto r = parse_routing_config(
        with_target(std::string(R"("uris": ["sip:a@h"], "capacity": 1)") + field));
    REQUIRE(r.ok());
    return r->targets[0].delivery;
  };
  CHECK(method("") == DeliveryMethod::bridge);
  CHECK(method(R"(, "delivery": "bridge")") == DeliveryMethod::bridge);
  CHECK(method(R"(, "delivery": "refer")") == DeliveryMethod::refer);
  CHECK(method(R"(, "delivery": "redirect")") == DeliveryMethod::redirect);
  CHECK(error_of(with_target(R"("uris": ["sip:a@h"], "capacity": 1, "delivery": "302")")) ==
        "routing.targets.vicidial.delivery: must be \"bridge\", \"refer\" or \"redirect\"");
  CHECK(std::string(delivery_method_name(DeliveryMethod::refer)) == "refer");
  CHECK(error_of(with_target(R"("uris": ["sip:a@h"], "capacity": 1, "media_timeout_s": 3601)")) ==
        "routing.targets.vicidial.media_timeout_s: must be an integer from 0 to 3600");
}

TEST_CASE("config: document, set and plan errors") {
  CHECK(parse_routing_config("{").error().code == Errc::parse);
  CHECK(error_of("[]") == "routing: must be an object with \"targets\" and \"plans\"");
  CHECK(error_of(R"({"plans": {}})") == "routing.targets: missing");
  CHECK(error_of(R"({"targets": {}})") == "routing.plans: missing");
  CHECK(error_of(R"({"targets": {}, "plans": {}, "queues": {}})") ==
        "routing.queues: unknown field (known: targets, target_sets, schedules, plans, "
        "connectors, description)");
  CHECK(error_of(R"({"targets": {"a": {"uris": ["sip:a@h"], "capacity": 1}},
                    "target_sets": {"s": ["a", "zz"]}, "plans": {}})") ==
        "routing.target_sets.s[1]: unknown target 'zz'");
  CHECK(error_of(R"({"targets": {"a": {"uris": ["sip:a@h"], "capacity": 1}},
                    "target_sets": {"s": ["a", "a"]}, "plans": {}})") ==
        "routing.target_sets.s[1]: target 'a' is listed twice");
  CHECK(error_of(R"({"targets": {"a": {"uris": ["sip:a@h"], "capacity": 1}},
                    "target_sets": {"s": []}, "plans": {}})") ==
        "routing.target_sets.s: at least one target is needed");
  CHECK(error_of(R"({"targets": {}, "plans": {"p": {"entries": []}}})") ==
        "routing.plans.p.entries: at least one entry is needed");

  CHECK(error_of(with_entry(R"({"strategy": "random", "set": "s"})")) ==
        "routing.plans.p.entries[0].strategy: must be failover, round_robin, weighted, "
        "least_busy, most_idle, sticky or rules");
  CHECK(error_of(with_entry(R"({"strategy": "failover"})")) ==
        "routing.plans.p.entries[0]: needs \"set\" (a target set) or \"targets\" (a list)");
  CHECK(error_of(with_entry(R"({"set": "s", "targets": ["a"]})")) ==
        "routing.plans.p.entries[0]: has both \"set\" and \"targets\"; keep one");
  CHECK(error_of(with_entry(R"({"set": "t"})")) ==
        "routing.plans.p.entries[0].set: unknown target set 't'");
  CHECK(error_of(with_entry(R"({"set": "s"}, {"schedule": "night", "set": "s"})")) ==
        "routing.plans.p.entries[1].schedule: unknown schedule 'night'");
  CHECK(error_of(with_entry(R"({"targets": ["a", "c"]})")) ==
        "routing.plans.p.entries[0].targets[1]: unknown target 'c'");
  CHECK(error_of(with_entry(R"({"strategy": "rules", "set": "s"})")) ==
        "routing.plans.p.entries[0].rules: strategy \"rules\" needs at least one rule");
  CHECK(error_of(with_entry(R"({"set": "s", "rules": [{"when": "true", "then": "a"}]})")) ==
        "routing.plans.p.entries[0].rules: only with strategy \"rules\"");
  CHECK(error_of(with_entry(
            R"({"strategy": "rules", "set": "s", "rules": [{"when": "true", "then": "c"}]})")) ==
        "routing.plans.p.entries[0].rules[0].then: 'c' is not a target of this entry");
  std::string e = error_of(with_entry(
      R"({"strategy": "rules", "set": "s", "rules": [{"when": "true", "then": "a"},
                                                     {"when": "vars.x ==", "then": "b"}]})"));
  CHECK(e.rfind("routing.plans.p.entries[0].rules[1].when: ", 0) == 0);
  CHECK(e.find("rule 2") == std::string::npos);
  e = error_of(with_entry(
      R"J({"strategy": "rules", "set": "s", "rules": [{"when": "in_schedule('x')", "then": "a"}]})J"));
  CHECK(e.find("unknown schedule 'x'") != std::string::npos);
  CHECK(error_of(with_entry(R"({"strategy": "rules", "set": "s", "rules": [{"when": "true"}]})")) ==
        "routing.plans.p.entries[0].rules[0].then: missing");
  CHECK(error_of(with_entry(R"({"set": "s", "key": "call.from"})")) ==
        "routing.plans.p.entries[0].key: only with strategy \"sticky\"");
  CHECK(error_of(with_entry(R"({"strategy": "sticky", "set": "s", "key": "other.x"})"))
            .rfind("routing.plans.p.entries[0].key: ", 0) == 0);
  CHECK(error_of(with_entry(R"({"set": "s", "weight": 3})")) ==
        "routing.plans.p.entries[0].weight: unknown field (known: schedule, strategy, set, "
        "targets, rules, key, description)");
}

TEST_CASE("config: schedule errors") {
  auto sched = [](const std::string &body) {
    return R"({"targets": {}, "schedules": {"office": )" + body + R"(}, "plans": {}})";
  };
  CHECK(error_of(sched(R"({"weekly": {}})")) == "routing.schedules.office.time_zone: missing");
  CHECK(error_of(sched(R"({"time_zone": "Mars/Olympus"})")) ==
        "routing.schedules.office.time_zone: unknown zone 'Mars/Olympus'");
  CHECK(error_of(sched(R"({"time_zone": "UTC", "weekly": {"monday": []}})")) ==
        "routing.schedules.office.weekly.monday: unknown day (mon, tue, wed, thu, fri, sat, sun)");
  CHECK(error_of(sched(R"({"time_zone": "UTC", "weekly": {"mon": ["9-5"]}})"))
            .rfind("routing.schedules.office.weekly.mon[0]: bad open time", 0) == 0);
  CHECK(error_of(sched(R"({"time_zone": "UTC", "weekly": {"mon": [9]}})")) ==
        "routing.schedules.office.weekly.mon[0]: must be a string \"HH:MM-HH:MM\"");
}
