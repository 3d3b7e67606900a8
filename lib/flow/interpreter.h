// The per-call interpreter: runs one call through its pinned program as an asynchronous
// state machine. A step starts work on the CallPort and returns; the port's completion
// re-enters the session (on the engine loop, or in the simulator).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "db/connector.h"
#include "flow/program.h"
#include "net/http_client.h"

namespace ivr::flow {

enum class CollectEnd { max_digits, terminator, first_timeout, inter_timeout, cancelled };

// One http step as the port performs it. Auth, retries, the cache and the circuit breaker
// are the port's (the engine's net layer; the simulator answers from a script).
struct HttpStart {
  net::HttpRequest request;
  std::string auth;  // auth profile name, "" for none
  unsigned retries = 0;
  bool retry_non_idempotent = false;
  uint32_t cache_ttl_ms = 0, stale_if_error_ms = 0;
  uint32_t budget_ms = 0;  // what is left of the call's http budget: no retry may end later
};

// How it ended. A response with any status is reason ""; the interpreter judges the status.
struct HttpDone {
  // "" (a response arrived), or: timeout, connect, tls, too_large, protocol, circuit_open,
  // budget, auth, cancelled.
  std::string reason;
  std::string error;  // detail when reason is set
  net::HttpResponse response;
  bool cached = false, stale = false;  // answered from the cache (stale: after a failure)
  unsigned attempts = 1;
};

// One db step as the port performs it: the connector named, the statement with its
// parameters rendered. The port enforces timeout_ms.
struct DbStart {
  std::string connector;
  db::QueryRequest query;
};

struct DbDone {
  // "" (the query ran), or: timeout, connect, query, busy, connector (none of that name).
  std::string reason;
  std::string error;  // detail when reason is set
  db::Rows rows;
};

// What a route step may read of the call while it runs: the routing rules' variables and the
// target's header templates (routing config, not the flow's) are resolved against the call.
class RouteVariables {
 public:
  virtual ~RouteVariables() = default;
  // A variable by dotted name (call.*, vars.*, steps.*); null when the call has none.
  virtual rules::Value get(std::string_view name) const = 0;
  // Renders template text ("{{vars.lead_id}}") against the call's variables; an unknown
  // variable renders empty; a malformed template is an error naming the reason.
  virtual Result<std::string> render(std::string_view template_text) const = 0;
};

// One route (or enqueue) step as the port performs it: decide with the routing plan, dial the
// candidates in order (failover), queue when none can take the call. docs/flows.md, "route".
struct RouteStart {
  std::string node;
  std::string plan;                                          // the routing plan's name
  std::vector<std::pair<std::string, std::string>> headers;  // rendered, added to the INVITE
  std::string caller_id;             // From user toward the dialing system ("" = the caller's)
  uint32_t ring_timeout_ms = 20000;  // per attempt
  unsigned max_attempts = 0;         // candidates dialled at most (0 = all)
  bool queue = false;                // wait in the queue when no target can take the call
  uint32_t priority = 500;           // queue priority 0-999, lower first
  uint32_t max_wait_s = 0;           // queue: 0 = no limit
  std::string hold_file;             // queue: prompt looped while waiting ("" = silence)
  // queue: spoken every announce_every_s (0 = never); {position}, {wait_minutes} and
  // {wait_seconds} are replaced by the port.
  std::string announce_text, announce_voice = "en";
  unsigned announce_rate_wpm = 160;
  uint32_t announce_every_s = 0;
  // queue: (after_s, priority) steps that raise the priority while the call waits.
  std::vector<std::pair<uint32_t, uint32_t>> escalate;
  const RouteVariables *variables = nullptr;  // valid until the step completes or is cancelled
};

struct RouteDone {
  // "ended": delivered, then the dialing system hung up (the caller is still there);
  // "transferred": handed over by REFER (accepted) or 302 (sent), by the target's delivery
  // method: the call leaves the engine and the flow ends;
  // "failed": no target took the call (every candidate refused, or none and no queue);
  // "timeout": max_wait_s passed in the queue; "error": the step could not run (unknown plan,
  // routing not configured...): `error` says why.
  std::string outcome;
  std::string error;
  std::string target, uri;  // the last target/URI dialled ("" when none)
  int sip_status = 0;       // the last final SIP status from a dialing system (0 when none)
  unsigned attempts = 0;    // INVITEs sent
  uint32_t queued_ms = 0;   // time spent in the queue
  uint32_t talk_ms = 0;     // delivered: time from the answer to the far end's hang-up
};

// A transfer step: hand the call to an explicit SIP URI and leave the path.
struct TransferStart {
  std::string uri;
  enum class Method : uint8_t { refer, redirect } method = Method::refer;  // REFER or 302
};

struct TransferDone {
  bool ok = false;     // the far end accepted (REFER: a final 2xx NOTIFY; 302: sent)
  int sip_status = 0;  // the REFER's or NOTIFY's status when it failed
  std::string error;   // why it failed
};

struct CustomArgs {
  std::vector<std::pair<std::string, std::string>> values;  // rendered arguments
};

// The call as the interpreter sees it. Every start_* call completes exactly once by the
// matching Session::on_* call, never from inside the start_* call itself. A prompt replaced
// by a newer one before it ends is not reported: on_prompt_done is for the latest prompt.
class CallPort {
 public:
  virtual ~CallPort() = default;
  virtual void start_answer() = 0;                       // -> on_answered
  virtual void start_play(const std::string &file) = 0;  // -> on_prompt_done
  virtual void start_say(const std::string &text, const std::string &voice,
                         unsigned rate_wpm) = 0;  // -> on_prompt_done
  // Digits; a prompt started just before plays meanwhile (barge-in per request).
  virtual void start_collect(const CollectRequest &req) = 0;  // -> on_collect_done
  virtual void start_timer(uint32_t ms, uint64_t token) = 0;  // -> on_timer(token)
  virtual void cancel_timer(uint64_t token) = 0;
  virtual void start_custom(const std::string &verb, const CustomArgs &args,
                            uint64_t token) = 0;                        // -> on_custom_done
  virtual void start_http(const HttpStart &req, uint64_t token) = 0;    // -> on_http_done
  virtual void cancel_http(uint64_t token) = 0;                         // no completion follows
  virtual void start_db(const DbStart &req, uint64_t token) = 0;        // -> on_db_done
  virtual void cancel_db(uint64_t token) = 0;                           // no completion follows
  virtual void start_route(const RouteStart &req, uint64_t token) = 0;  // -> on_route_done
  virtual void cancel_route(uint64_t token) = 0;  // no completion follows; legs are ended
  virtual void start_transfer(const TransferStart &req,
                              uint64_t token) = 0;  // -> on_transfer_done
  virtual void stop_prompt() = 0;
  // Ends the call (BYE when answered, else a final status). No completion follows.
  virtual void hangup(int sip_status, const std::string &reason) = 0;
};

// Read-only facts set when the call starts.
struct CallInfo {
  std::string call_id, from, to, from_uri, to_uri;
  std::vector<std::pair<std::string, std::string>> headers;  // as received
  std::chrono::system_clock::time_point started_at;
  bool answered = false;  // answered before the flow started
};

struct TraceEntry {
  std::string node;  // "menu", or "subflow_name/node"
  std::string verb;
  std::string detail;  // "file welcome.wav", "digits 12 (terminator)", "-> sales"
};

enum class EndReason { completed, hangup_verb, caller_hangup, error, step_limit };
const char *end_reason_name(EndReason r);

// How a custom verb finished.
struct CustomResult {
  std::string exit;  // "" or "next": the next exit; otherwise a name from the node's exits
  std::vector<std::pair<std::string, std::string>> values;  // steps.<node>.<name> = value
  std::string error;                                        // not empty: the verb failed (on_error)
};

inline constexpr size_t kMaxPathRecord = 1000;

struct SessionLimits {
  unsigned max_steps_without_wait = 1000;
  unsigned max_subflow_depth = 16;
};

class Session {
 public:
  using Clock = std::function<std::chrono::system_clock::time_point()>;
  // Called for every node entered and every decision (events, logs, the simulator).
  using TraceSink = std::function<void(const TraceEntry &)>;

  Session(std::shared_ptr<const Program> program, CallPort &port, CallInfo info,
          SessionLimits limits = {});
  ~Session();
  Session(const Session &) = delete;
  Session &operator=(const Session &) = delete;

  void set_clock(Clock clock) { clock_ = std::move(clock); }
  void set_trace_sink(TraceSink sink) { sink_ = std::move(sink); }
  // Sets vars.<name> before start (host-provided values, simulate --var).
  void set_variable(const std::string &name, const std::string &value);

  void start();

  // Completions from the port.
  void on_answered();
  void on_prompt_done(bool ok);
  void on_collect_done(const std::string &digits, CollectEnd end);
  void on_timer(uint64_t token);
  void on_custom_done(uint64_t token, const CustomResult &result);
  void on_http_done(uint64_t token, HttpDone &&done);
  void on_db_done(uint64_t token, DbDone &&done);
  void on_route_done(uint64_t token, RouteDone &&done);
  void on_transfer_done(uint64_t token, TransferDone &&done);
  // The caller hung up or the call ended outside the flow: the session stops.
  void on_call_ended();

  bool finished() const { return finished_; }
  EndReason end_reason() const { return end_reason_; }
  const std::string &error() const { return error_; }
  // The nodes entered, in order: the first kMaxPathRecord of them, then a count of the rest
  // (a call that loops for hours must not grow its record without bound).
  const std::vector<std::string> &path() const { return path_; }
  uint64_t path_dropped() const { return path_dropped_; }
  // "a > b > c", with " > ... (+N more)" when entries were dropped.
  std::string path_text() const;
  const Program &program() const { return *program_; }
  std::string current_node() const;
  // vars.* and steps.* values set so far, rendered as text (for records and the simulator).
  std::vector<std::pair<std::string, std::string>> variables() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::shared_ptr<const Program> program_;
  Clock clock_;
  TraceSink sink_;
  bool finished_ = false;
  EndReason end_reason_ = EndReason::completed;
  std::string error_;
  std::vector<std::string> path_;
  uint64_t path_dropped_ = 0;
  friend struct Impl;
};

}  // namespace ivr::flow
