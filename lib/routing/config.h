// Routing configuration: targets, target sets, schedules and route plans, as values, plus
// the parser of the JSON that describes them (docs/routing.md, "Configuration"):
//
//   {"targets": {"vicidial": {"uris": ["sip:8300@10.0.0.5"], "capacity": 30, ...}},
//    "target_sets": {"sales": ["vicidial", "five9"]},
//    "schedules": {"office": {"time_zone": "Europe/Berlin", "weekly": {...}}},
//    "plans": {"sales": {"entries": [{"schedule": "office", "strategy": "weighted",
//                                     "set": "sales"},
//                                    {"strategy": "failover", "targets": ["overflow"]}]}}}
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/result.h"
#include "routing/availability.h"
#include "routing/model.h"
#include "rules/schedule.h"

namespace ivr::routing {

// A named list of targets (order matters: it is the failover order among equal priorities).
struct TargetSetConfig {
  std::string name;
  std::vector<std::string> targets;
};

// One rule of a rule-chosen entry: when `when` holds, `then` (a target name) goes first.
struct RuleSpec {
  std::string when;
  std::string then;
};

// One entry of a plan: during `schedule` (empty: always), route over `set` (a target set's
// name) or over `targets` (listed inline; exactly one of the two) with `strategy`.
struct PlanEntryConfig {
  std::string schedule;
  Strategy strategy = Strategy::failover;
  std::string set;
  std::vector<std::string> targets;
  std::vector<RuleSpec> rules;    // Strategy::rules: at least one
  std::string key = "call.from";  // Strategy::sticky: an expression yielding the call key
};

// Entries are tried in order; the first whose schedule is open wins.
struct PlanConfig {
  std::string name;
  std::vector<PlanEntryConfig> entries;
};

struct RoutingConfig {
  std::vector<TargetConfig> targets;  // configuration order
  std::vector<TargetSetConfig> sets;
  std::vector<PlanConfig> plans;
  rules::ScheduleRegistry schedules;  // for plan entries and in_schedule() in rules
  // "connectors": availability connectors (availability.h), each naming one of `targets`.
  std::vector<ConnectorConfig> connectors;
};

// Parses and validates (validate_routing_config). Errors: Errc::parse for malformed JSON
// ("line L, column C: ..."), Errc::invalid_argument otherwise, naming the field path under
// `path`: "routing.targets.vicidial.capacity: must be an integer from 1 to 100000".
Result<RoutingConfig> parse_routing_config(std::string_view json_text,
                                           std::string_view path = "routing");
Result<RoutingConfig> parse_routing_config(const json::Value &root,
                                           std::string_view path = "routing");

// Everything parse_routing_config checks beyond JSON types, for configurations built in
// code: target fields, unique names, sets and plans naming known targets and schedules,
// rules and sticky keys that compile, rule results naming targets of their entry.
Status validate_routing_config(const RoutingConfig &config, std::string_view path = "routing");

}  // namespace ivr::routing
