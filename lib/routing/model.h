// The vocabulary of routing: dialing-system targets as configured, their live state, the
// strategies and the reasons a target is passed over. Pure data: no SIP, no I/O, no clock
// reads (every function that needs the time takes it as an argument).
// User documentation: docs/routing.md.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace ivr::routing {

// Monotonic time: health, reservations, availability age, queue waits. The engine passes
// steady_clock::now(); tests pass a virtual clock.
using Instant = std::chrono::steady_clock::time_point;
using Duration = std::chrono::steady_clock::duration;
// Wall-clock time: schedules and the rules' now() / in_schedule().
using WallTime = std::chrono::system_clock::time_point;

// Index of a target in its TargetPool, in configuration order. Valid until the pool is
// reconfigured.
using TargetIndex = uint32_t;

enum class Transport : uint8_t { udp, tcp, tls };
const char *transport_name(Transport t);

// Health as routing sees it. `draining` is set by an operator (no new calls; calls in
// progress continue) and wins over the probe's up/down.
enum class Health : uint8_t { up, down, draining };
const char *health_name(Health h);

// Why a target is not a candidate for a call.
enum class SkipReason : uint8_t {
  down,                // the health probe marked it down
  draining,            // an operator is draining it
  full,                // active + reserved calls reached its capacity
  stale_availability,  // its capacity rule needs agent data, and the data is stale or absent
  no_agents,           // its capacity rule needs an idle agent, and none is left
  tried,               // the caller excluded it (already tried for this call)
};
const char *skip_reason_name(
    SkipReason r);  // "down", "draining", "full", "stale availability", ...

// Why a delivery attempt failed (the bridge maps SIP outcomes onto these).
enum class FailReason : uint8_t {
  busy,          // 486, 600
  rejected,      // other 4xx / 6xx
  server_error,  // 5xx
  no_answer,     // no final answer within the timeout
  transport,     // no route, connection refused, TLS failure
};
inline constexpr size_t kFailReasons = 5;
const char *fail_reason_name(FailReason r);

enum class Strategy : uint8_t {
  failover,     // priority, then list order
  round_robin,  // rotate through the set
  weighted,     // smooth weighted round robin (nginx)
  least_busy,   // lowest (active + reserved) / capacity
  most_idle,    // most idle agents from availability data
  sticky,       // weighted rendezvous hash on a call key
  rules,        // a rule set names the target
};
const char *strategy_name(Strategy s);  // "failover", "round_robin", ...
bool parse_strategy(std::string_view name, Strategy &out);

// ---- configuration ----

struct SipTarget {
  std::string uri;  // "sip:8300@10.0.0.5:5060" or "sips:..."
  Transport transport = Transport::udp;
};

// A header added to the outbound INVITE. `value` is template text ("{{vars.lead_id}}"),
// rendered by the delivery side against the call's variables.
struct HeaderTemplate {
  std::string name;   // X-* or User-to-User
  std::string value;  // template text
};

// The SIP OPTIONS probe (sent by the SIP side) and the hysteresis its results go through.
struct ProbeConfig {
  bool enabled = true;
  uint32_t interval_s = 5;  // between probes
  uint32_t down_after = 2;  // consecutive failures that mark an up target down
  uint32_t up_after = 3;    // consecutive successes that mark a down target up
  uint32_t min_hold_s = 0;  // a state is kept at least this long before it may change
};

// What the target's capacity rule needs from availability data (docs/routing.md,
// "The capacity rule").
enum class AgentRule : uint8_t {
  none,        // channel capacity only; availability only ranks (most_idle)
  idle_agent,  // also needs an idle agent: fresh data and idle_agents() > 0
};
const char *agent_rule_name(AgentRule r);

struct AvailabilityConfig {
  AgentRule rule = AgentRule::none;
  // Count the dialing system's own waiting calls against its idle agents.
  bool subtract_calls_waiting = false;
  uint32_t stale_after_s = 30;  // data older than this is stale
};

// How a call is handed to the target: bridged (the engine stays in the path and can fail
// over), a blind transfer by REFER (the caller's leg is answered; it leaves the engine once
// the target accepts), or a 302 redirect (before the caller is answered; no failover once
// sent, the caller's side follows the Contact).
enum class DeliveryMethod : uint8_t { bridge, refer, redirect };
const char *delivery_method_name(DeliveryMethod m);

struct TargetConfig {
  std::string name;             // identifier: letters, digits, '_', '-' (1-64)
  std::vector<SipTarget> uris;  // tried in order by the delivery side
  std::string username;         // outbound digest username ("" = no authentication)
  std::string password_secret;  // the name of the secret holding the password
  uint32_t capacity = 1;        // maximum concurrent calls (reserved + active), 1-100000
  uint32_t weight = 1;          // 1-100, for weighted and sticky
  uint32_t priority = 0;        // 0-999, lower first (failover order)
  std::vector<HeaderTemplate> headers;
  DeliveryMethod delivery = DeliveryMethod::bridge;
  // A bridged call whose dialing system sends no RTP for this long is taken back (the
  // target vanished: crashed, unplugged, lost its network); 0 = never.
  uint32_t media_timeout_s = 60;
  ProbeConfig probe;
  AvailabilityConfig availability;
};

// Limits shared by the JSON parser and validate_target().
inline constexpr uint32_t kMaxCapacity = 100000;
inline constexpr uint32_t kMaxWeight = 100;
inline constexpr uint32_t kMaxPriority = 999;
inline constexpr uint32_t kMaxProbeInterval = 3600;
inline constexpr uint32_t kMaxThreshold = 100;
inline constexpr uint32_t kMaxHoldSeconds = 3600;
inline constexpr uint32_t kMaxStaleSeconds = 86400;
inline constexpr uint32_t kMaxMediaTimeout = 3600;
inline constexpr size_t kMaxHeaderValue = 1024;

bool valid_target_name(std::string_view name);
bool valid_secret_name(std::string_view name);
// X-<token> or User-to-User (any case).
bool valid_header_name(std::string_view name);
// "sip:" or "sips:" followed by at least one character, no spaces or control characters.
bool valid_sip_uri(std::string_view uri);

// A name as it may appear in an error path: printable ASCII up to 64 characters, else
// "(a member)" (a pasted secret or binary junk must not reach a log).
std::string shown_name(std::string_view name);

// Checks every field; errors are Errc::invalid_argument reading "<path>.<field>: <reason>",
// e.g. "routing.targets.vicidial.capacity: must be an integer from 1 to 100000".
Status validate_target(const TargetConfig &target, std::string_view path);

// ---- live state ----

// Availability reported by a connector (polled or pushed).
struct AvailabilitySample {
  uint32_t agents_available = 0;
  uint32_t agents_logged_in = 0;
  uint32_t calls_waiting = 0;
  uint32_t longest_wait_s = 0;
};

struct Availability {
  AvailabilitySample sample;
  Instant updated_at{};
  bool present = false;          // a sample has arrived
  bool marked_stale = false;     // the connector said its data is unusable (poll failed)
  uint32_t committed_since = 0;  // calls delivered since the sample (not yet reflected)
};

struct Counters {
  uint32_t active = 0;                          // delivered calls in progress
  uint32_t reserved = 0;                        // slots held for calls being offered or dialled
  uint64_t offered = 0;                         // reservations made
  uint64_t answered = 0;                        // reservations committed (call delivered)
  uint64_t completed = 0;                       // delivered calls that ended
  std::array<uint64_t, kFailReasons> failed{};  // by FailReason
};

}  // namespace ivr::routing
