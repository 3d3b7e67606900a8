// A compiled flow: the immutable program that every call of one flow version shares.
// Built by compile() (compiler.h) from a validated flow document; format in docs/flows.md.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "net/response_map.h"
#include "rules/expr.h"
#include "rules/rule_set.h"
#include "rules/schedule.h"

namespace ivr::flow {

using NodeIndex = int32_t;
inline constexpr NodeIndex kNoNode = -1;

// A string with {{expression}} parts, rendered per call.
struct Template {
  struct Part {
    std::string text;                       // literal text (when expr is empty)
    std::optional<rules::Expression> expr;  // or an expression rendered as text
  };
  std::string source;
  std::vector<Part> parts;
  bool constant() const { return parts.size() <= 1 && (parts.empty() || !parts[0].expr); }
};

// Audio to play: a prompt file or text to speak.
struct Prompt {
  enum class Kind : uint8_t { none, file, say };
  Kind kind = Kind::none;
  Template content;  // file name or text
  std::string voice = "en";
  unsigned rate_wpm = 160;
};

// A JSON scalar from the document (set values, initial variables), owning its string.
struct Literal {
  rules::Type type = rules::Type::null;
  bool b = false;
  double n = 0;
  std::string s;
};

// Digit collection as the call's port performs it (one attempt of a gather or menu).
struct CollectRequest {
  unsigned max_digits = 1;
  std::string terminators;
  uint32_t first_digit_timeout_ms = 5000, inter_digit_timeout_ms = 3000;
  bool barge_in = true;
};

struct Answer {};
struct Play {
  Prompt prompt;
};
struct Gather {
  bool menu = false;
  Prompt prompt, no_input_prompt, invalid_prompt;
  CollectRequest collect;
  unsigned min_digits = 1;
  unsigned retries = 2;                      // attempts after the first one
  std::optional<rules::Expression> valid;    // gather: extra check on the digits
  std::string store;                         // gather: "vars.x" receives the digits
  std::map<std::string, NodeIndex> choices;  // menu: digit -> node
  NodeIndex on_no_input = kNoNode, on_invalid = kNoNode;
};
struct Set {
  struct Assignment {
    std::string variable;  // "vars.name"
    std::variant<rules::Expression, Template, Literal> value;
  };
  std::vector<Assignment> assignments;
};
struct If {
  rules::Expression condition;
  NodeIndex then_node = kNoNode, else_node = kNoNode;
};
struct Switch {
  struct Case {
    rules::Expression when;
    NodeIndex node = kNoNode;
  };
  std::vector<Case> cases;                   // `cases` form
  int rule_set = -1;                         // or `rule_set` form: index into Program
  std::map<std::string, NodeIndex> results;  // rule result -> node
  NodeIndex default_node = kNoNode;
};
struct ScheduleBranch {
  std::string schedule;
  NodeIndex open_node = kNoNode, closed_node = kNoNode;
};
struct Pause {
  uint32_t ms = 0;
};
struct Goto {};  // `target` is stored as next
struct Subflow {
  int graph = -1;
};
struct Return {};
struct Hangup {
  int sip_status = 0;  // 0: BYE (answered) or 480 (not answered)
  Template reason;
};
struct Custom {
  std::string verb;
  std::vector<std::pair<std::string, Template>> args;
  std::map<std::string, NodeIndex> exits;
  uint32_t timeout_ms = 10000;
  NodeIndex on_timeout = kNoNode;
};

// A JSON value whose strings are templates (an http body, GraphQL variables), rendered per
// call with JSON escaping.
struct JsonTemplate {
  enum class Kind : uint8_t { null, boolean, number, string, array, object };
  Kind kind = Kind::null;
  bool b = false;
  double n = 0;
  Template str;
  std::vector<std::pair<std::string, JsonTemplate>> members;  // object, in document order
  std::vector<JsonTemplate> items;                            // array
};

// An HTTP request to a web service (CRM lookup, GraphQL, SOAP); docs/flows.md, "http".
struct Http {
  enum class Body : uint8_t { none, json, form, text, graphql, soap };
  std::string method = "GET";
  Template url;
  std::vector<std::pair<std::string, Template>> query;    // appended to url, percent-encoded
  std::vector<std::pair<std::string, Template>> headers;  // name -> value
  Body body = Body::none;
  JsonTemplate json;                                   // json body, or GraphQL variables
  std::vector<std::pair<std::string, Template>> form;  // form body
  Template text;                                       // text body, or the SOAP envelope
  std::string content_type;                            // text body
  std::string graphql_query, graphql_operation;
  std::string soap_action;
  int soap_version = 11;  // 11 or 12
  std::string auth;       // the host's auth profile, "" for none
  uint32_t timeout_ms = 3000;
  unsigned retries = 0;
  bool retry_non_idempotent = false;
  uint32_t cache_ttl_ms = 0, stale_if_error_ms = 0;
  std::vector<std::pair<int, int>> accept_status{{200, 299}};  // inclusive ranges
  Prompt hold;  // played (repeated) while the request runs
  NodeIndex on_timeout = kNoNode;
  // What goes from the response into vars.* (JSON paths or XPath), and how faults are
  // recognised (GraphQL errors, SOAP faults). Set for every GraphQL or SOAP node and for any
  // node with "map".
  std::optional<net::ResponseMap> response;
};

// A query to a database connector of the host (SQLite, PostgreSQL, Redis, or the host's
// own); docs/flows.md, "db". The statement is literal: values only ever travel as params.
struct Db {
  std::string connector;
  std::string statement;
  std::vector<std::optional<Template>> params;  // nullopt: NULL
  uint32_t timeout_ms = 3000;
  uint32_t max_rows = 100;
  std::vector<std::pair<std::string, std::string>> map;  // vars.<name> -> a first-row column
  Prompt hold;
  NodeIndex on_empty = kNoNode;  // no rows (else next)
  NodeIndex on_timeout = kNoNode;
};

// A route or enqueue step: the engine's routing decides with the plan, dials the targets in
// order and, with queueing on, waits in its priority queue; docs/flows.md, "route". The
// targets, plans and the queue are the engine's routing configuration (docs/routing.md).
struct Route {
  Template plan;                                          // rendered: a routing plan's name
  std::vector<std::pair<std::string, Template>> headers;  // X-* and User-to-User
  Template caller_id;                                     // no parts: the caller's own
  uint32_t ring_timeout_ms = 20000;
  unsigned max_attempts = 0;                  // 0: every candidate
  bool queue = false;                         // enqueue, or route with a "queue" object
  uint32_t priority = 500;                    // 0-999, lower first; when priority_template is unset
  std::optional<Template> priority_template;  // rendered per call, checked 0-999 then
  uint32_t max_wait_s = 0;                    // 0: no limit
  Template hold_file;                         // no parts: silence
  // Spoken every announce_every_s (0: never); {position}, {wait_minutes} and
  // {wait_seconds} are the port's placeholders, passed through as written.
  std::string announce_text, announce_voice = "en";
  unsigned announce_rate_wpm = 160;
  uint32_t announce_every_s = 0;
  // Raises the call's queue priority while it waits: after after_s seconds, priority becomes
  // `priority` (a lower number); ascending after_s, descending priority.
  std::vector<std::pair<uint32_t, uint32_t>> escalate;  // (after_s, priority)
  NodeIndex on_failed = kNoNode, on_timeout = kNoNode;
};

// A transfer step: hand the call to a SIP URI (REFER, or a 302 before the answer) and leave
// the path; docs/flows.md, "transfer".
struct Transfer {
  Template to;  // rendered: must be a sip: or sips: URI
  enum class Method : uint8_t { refer, redirect } method = Method::refer;
  NodeIndex on_failed = kNoNode;
};

using VerbSpec = std::variant<Answer, Play, Gather, Set, If, Switch, ScheduleBranch, Pause, Goto,
                              Subflow, Return, Hangup, Custom, Http, Db, Route, Transfer>;

struct Node {
  std::string name;
  std::string verb;  // as written in the document ("play", "menu", "crm.lookup")
  VerbSpec spec;
  NodeIndex next = kNoNode;
  NodeIndex on_error = kNoNode;
  // Slots of this node's step results (steps.<name>.<field>), -1 when nobody reads them.
  int64_t slot_digits = -1, slot_result = -1, slot_attempts = -1;
};

struct Graph {
  std::string name;  // "" for the main flow, the subflow's name otherwise
  NodeIndex start = kNoNode;
  std::vector<Node> nodes;
};

struct Program {
  std::string id;
  std::string version;
  std::string description;
  std::vector<Graph> graphs;  // [0] is the main flow
  // Slots of every variable any expression reads: call.*, vars.*, steps.*.
  std::shared_ptr<rules::VariableTable> variables;
  std::vector<std::pair<std::string, Literal>> initial_vars;  // "vars.x" = value
  std::vector<rules::RuleSet> rule_sets;
  std::vector<std::string> rule_set_names;
  std::shared_ptr<rules::ScheduleRegistry> schedules;
  // Time all http and db steps of one call may spend waiting, together (the decision budget).
  uint32_t http_budget_ms = 10000;
  size_t node_count() const;
};

}  // namespace ivr::flow
