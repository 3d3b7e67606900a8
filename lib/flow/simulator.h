// Runs a flow on a simulated call, without SIP or media: a scripted caller, a virtual
// clock, and a trace of every node, prompt and decision. Used by `ivr-flow simulate` and
// by the interpreter's tests.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "flow/interpreter.h"

namespace ivr::flow {

// A scripted answer to an http node.
struct SimHttpReply {
  std::string reason;  // "" for a response; else a transport failure ("timeout", "connect", ...)
  std::string error;   // its detail
  int status = 200;
  std::string body;
  net::Headers headers;
  uint32_t delay_ms = 100;  // virtual time until the answer; at or past the timeout: "timeout"
  bool cached = false;
};

// A scripted answer to a db node: rows, or a failure.
struct SimDbReply {
  std::string reason;  // "" for rows; else timeout, connect, query, busy, connector
  std::string error;
  db::Rows rows;
  uint32_t delay_ms = 20;  // virtual time until the answer; at or past the timeout: "timeout"
};

// A scripted end of a route or enqueue node (the engine's routing, simulated).
struct SimRouteReply {
  std::string outcome = "ended";  // ended, failed, timeout or error
  std::string target;             // the target that took (or last refused) the call
  int sip_status = 0;             // 0: 200 when ended, 486 when failed at a target
  std::string error;              // the reason, for failed and error
};

// A scripted end of a transfer node.
struct SimTransferReply {
  bool ok = true;
  int sip_status = 0;  // when it failed
  std::string error;
};

struct SimulationOptions {
  // The caller's keypresses. Each collect consumes digits until its terminator or
  // max_digits; ',' ends one input (the next collect starts after it); an empty input
  // (",,") is a collect with no digits; when the script runs out, collects time out.
  std::string digits;
  std::map<std::string, std::string> vars;  // vars.<name> before start
  CallInfo call;                            // from, to, headers; started_at = the clock
  // Custom verbs: verb name -> result (exit and values); a verb not listed fails.
  std::map<std::string, CustomResult> custom_results;
  // http nodes: node (as in the path: "lookup", "sub/lookup") -> answers in turn; the last
  // one repeats. A node without answers fails with reason "connect".
  std::map<std::string, std::vector<SimHttpReply>> http;
  // db nodes: node -> answers in turn (the last repeats). A node without answers fails with
  // reason "connector".
  std::map<std::string, std::vector<SimDbReply>> db;
  // route and enqueue nodes: node -> ends in turn (the last repeats). Virtual time: a call
  // delivered rings 2 s and talks 60 s; a refusal comes after 2 s; a queue timeout after the
  // node's max_wait_s (60 s without one); an error after 10 ms. A node without a script fails
  // ("no routing in the simulator").
  std::map<std::string, std::vector<SimRouteReply>> route;
  // transfer nodes: node -> ends in turn (the last repeats), after 100 ms. A node without a
  // script fails ("no transfer in the simulator").
  std::map<std::string, std::vector<SimTransferReply>> transfer;
  // When >= 0, the caller hangs up at this virtual time (ms from the start).
  int64_t hangup_at_ms = -1;
  // A flow may legitimately wait forever (a pause loop): the simulation stops after this
  // much virtual time or this many port completions, and says so (SimulationResult::cut_off).
  uint64_t max_duration_ms = 4 * 3600 * 1000;
  uint64_t max_events = 100000;
  uint32_t prompt_ms = 1000;  // simulated length of a prompt file
  SessionLimits limits;
};

struct SimulationStep {
  uint64_t at_ms = 0;  // virtual time
  TraceEntry entry;
};

struct SimulationResult {
  std::vector<SimulationStep> trace;
  std::vector<std::string> path;
  std::string path_text;  // joined by " > ", with a count of dropped entries
  EndReason end = EndReason::completed;
  std::string error;
  int hangup_status = 0;
  std::string hangup_reason;
  std::vector<std::pair<std::string, std::string>> variables;
  uint64_t duration_ms = 0;
  std::string cut_off;  // not empty: why the simulation stopped before the flow ended
  std::vector<std::pair<std::string, HttpStart>> http_requests;  // node, request, in order
  std::vector<std::pair<std::string, DbStart>> db_queries;       // node, query, in order
  // node, request, in order (variables is null: it lived as long as the call)
  std::vector<std::pair<std::string, RouteStart>> routes;
  std::vector<std::pair<std::string, TransferStart>> transfers;
};

SimulationResult simulate(std::shared_ptr<const Program> program, const SimulationOptions &opts);

}  // namespace ivr::flow
