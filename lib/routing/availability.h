// Availability connectors: one generic model (poll an HTTP API, map the answer to an
// AvailabilitySample) and vendor presets that fill it in from a few fields. This file is the
// configuration, the mapping of a response body (pure: no I/O, fuzzed) and the JSON parser;
// availability_poller.h runs connectors on the engine loop. docs/routing.md, "Availability
// connectors".
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/json.h"
#include "common/result.h"
#include "routing/model.h"

namespace ivr::routing {

enum class AvailabilityFormat : uint8_t {
  json,  // JSON paths (net/json_path.h)
  xml,   // XPath 1.0 (SOAP); a SOAP fault is an error
  csv,   // RFC 4180 text: a header row and column names, or column indexes
  pipe,  // '|'-separated lines, no quoting (VICIdial non-agent API)
};
const char *availability_format_name(AvailabilityFormat f);

// The four figures of an AvailabilitySample, in its order.
enum class AvailabilityField : uint8_t {
  agents_available,
  agents_logged_in,
  calls_waiting,
  longest_wait_s
};
inline constexpr size_t kAvailabilityFields = 4;
const char *availability_field_name(AvailabilityField f);  // "agents_available", ...

// Where one figure comes from. Exactly one way per format:
// - json: `path` (a JSON path), or `path` naming an array plus `where`/`equals`/`value`:
//   the first element whose member at `where` (a JSON path inside it) equals `equals` gives
//   the value at `value` (Amazon Connect's MetricResults/Collections).
// - xml: `path`, an XPath expression (its string value is read).
// - csv/pipe: `column` (a name from the header row) or `index` (0-based position).
// The value must be a non-negative number (a fraction is rounded down) or, as text,
// [H:]MM:SS; it is then divided by `divide_by` (1000 for milliseconds).
struct FieldSource {
  std::string path;
  std::string where, equals, value;
  std::string column;
  std::optional<uint32_t> index;
  uint32_t divide_by = 1;
};

struct AvailabilityMapping {
  AvailabilityFormat format = AvailabilityFormat::json;
  // Figures without a source stay 0 (VICIdial has no longest wait). At least one is mapped.
  std::array<std::optional<FieldSource>, kAvailabilityFields> fields;
  // xml: prefix -> namespace URI for the XPath expressions.
  std::vector<std::pair<std::string, std::string>> namespaces;
  // csv/pipe: the first line names the columns (needed for `column`).
  bool header = false;
  // csv/pipe: the row whose `key_index` column equals `key_value` (after the header);
  // empty key_value: the first data row.
  uint32_t key_index = 0;
  std::string key_value;
  // pipe: a first line starting with this is the dialing system's error message.
  std::string error_prefix = "ERROR:";
};

// Limits on delimited text (outside input).
inline constexpr size_t kMaxDelimitedRows = 10000;
inline constexpr size_t kMaxDelimitedColumns = 256;
inline constexpr size_t kMaxDelimitedField = 4096;

using DelimitedRows = std::vector<std::vector<std::string>>;
// Splits text into rows of fields. csv: RFC 4180 (quoted fields with "" escapes and line
// breaks, CRLF or LF); otherwise split on `delimiter` with no quoting. Blank lines are
// skipped. Errc::parse naming the line: "line 3: unterminated quoted field".
Result<DelimitedRows> parse_delimited(std::string_view text, char delimiter, bool csv);

// Reads a figure's text: "12", "12.7" (12), "01:02:03" (3723), "02:03" (123).
Result<uint32_t> parse_figure(std::string_view text);

// Maps one response body. Errors (Errc::parse) name the figure and the reason:
//   "calls_waiting: column 'Calls In Queue' not found in the header row"
//   "agents_available: /total_available_workers is missing"
//   "agents_available: 'abc' is not a number"
Result<AvailabilitySample> map_availability(const AvailabilityMapping &mapping,
                                            std::string_view body);
// Checks a mapping (paths compile, sources fit the format); errors name the figure.
Status validate_mapping(const AvailabilityMapping &mapping);

using Millis = std::chrono::milliseconds;

struct ConnectorConfig {
  std::string name;    // the connector (letters, digits, '_', '-')
  std::string target;  // the target it reports for ("" = the connector's name)
  std::string preset;  // informational: "vicidial", "twilio", ... ("" = generic)
  // The request.
  std::string method = "GET";
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string auth;  // auth profile name ("" = none)
  Millis timeout{5000};
  // Schedule: a poll every `interval` (the next is skipped while one is in flight); the
  // data goes stale `stale_after` after the last good sample (or after start).
  Millis interval{5000};
  Millis stale_after{30000};
  AvailabilityMapping mapping;
};

Status validate_connector(const ConnectorConfig &c, std::string_view path);

// ---- presets: the generic model filled in from a vendor's documented API ----

// VICIdial non-agent API, function in_group_status (docs/NON-AGENT_API.txt):
//   GET {base_url}/non_agent_api.php?source=..&user=..&function=in_group_status
//       &in_groups=X&header=YES   (the password goes in through an auth profile: an API
//       key in the query named "pass")
//   in_group|total_calls|calls_waiting|agents_logged_in|agents_in_calls|agents_waiting|
//   agents_paused|agents_in_dispo|agents_in_dial
// agents_available = agents_waiting, no longest wait.
struct VicidialPreset {
  std::string base_url;  // "http://10.0.0.5/vicidial"
  std::string user;
  std::string source = "ivr";
  std::string in_group;
  std::string auth;  // profile adding pass=...
};
ConnectorConfig vicidial_in_group_status(std::string name, const VicidialPreset &p);

// Twilio TaskRouter TaskQueue RealTimeStatistics:
//   GET {base_url}/v1/Workspaces/{WS}/TaskQueues/{WQ}/RealTimeStatistics (Basic auth:
//   Account SID and auth token). total_available_workers, total_eligible_workers,
//   tasks_by_status.pending, longest_task_waiting_age (seconds).
struct TwilioPreset {
  std::string base_url = "https://taskrouter.twilio.com";
  std::string workspace_sid, task_queue_sid;
  std::string auth;  // a basic profile
};
ConnectorConfig twilio_taskqueue_statistics(std::string name, const TwilioPreset &p);

// Amazon Connect GetCurrentMetricData: POST {base_url}/metrics/current/{instance_id}, a
// JSON body filtering one queue on the VOICE channel, grouped by QUEUE, asking
// AGENTS_AVAILABLE, AGENTS_ONLINE, CONTACTS_IN_QUEUE, OLDEST_CONTACT_AGE (SECONDS; with a
// grouping the value is in seconds). Read from MetricResults[0].Collections by
// Metric.Name. SigV4 profile (service "connect").
struct AmazonConnectPreset {
  std::string base_url;  // "https://connect.eu-central-1.amazonaws.com"
  std::string instance_id, queue_id;
  std::string auth;  // a sigv4 profile
};
ConnectorConfig amazon_connect_current_metrics(std::string name, const AmazonConnectPreset &p);

// Five9 Supervisor Web Service getStatistics(statisticType=ACDStatus), SOAP 1.1 over
// {base_url} (".../wssupervisor/v13/SupervisorWebService"), Basic auth. The answer is a
// table: return/columns/values/data are the column names, return/rows/values/data the
// cells; the skill's row (first cell = skill name) is read by column name (the names
// below are the defaults; a deployment may rename them). The session's parameters
// (setSessionParameters) must have been set once beforehand: not done here yet.
struct Five9Preset {
  std::string base_url;
  std::string skill;
  std::string auth;  // a basic profile
  std::string col_available = "Agents Ready For Calls";
  std::string col_logged_in = "Agents Logged In";
  std::string col_waiting = "Calls In Queue";
  std::string col_longest = "Current Longest Queue Time";  // milliseconds
};
ConnectorConfig five9_acd_status(std::string name, const Five9Preset &p);

// Reads {"<name>": {connector}, ...}: either "preset": "vicidial" | "twilio" |
// "amazon_connect" | "five9" with that preset's fields, or the generic fields. Errors
// name the field: "routing.connectors.vici.interval_s: must be a number from 0.05 to 3600".
Result<std::vector<ConnectorConfig>> parse_availability_connectors(
    const json::Value &connectors, std::string_view path = "routing.connectors");
Result<std::vector<ConnectorConfig>> parse_availability_connectors(
    std::string_view json_text, std::string_view path = "routing.connectors");

}  // namespace ivr::routing
