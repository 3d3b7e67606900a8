// Events the engine reports about calls; the C shim turns them into ivr_event.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "media/dtmf.h"

namespace ivr::core {

class Call;

// Values match the public enums in ivr/event.h.
enum class EventType : int {
  call_started = 1,
  call_answered = 2,
  dtmf = 3,
  prompt_finished = 4,
  collect_done = 5,
  call_ended = 6,
  media_updated = 7,
  flow_step = 8,
  route_decided = 9,   // a routing decision: candidates in order, skipped targets and why
  route_attempt = 10,  // a delivery attempt failed: target, uri, sip_code, reason
  call_queued = 11,    // no target could take the call: it waits (position, priority)
  call_delivered = 12  // a dialing system answered: the call is bridged to it
};
enum class PromptEnd : int { completed = 0, stopped = 1, barged_in = 2, failed = 3 };
enum class CollectEnd : int {
  max_digits = 0,
  terminator = 1,
  first_timeout = 2,
  inter_timeout = 3,
  cancelled = 4
};
enum class EndReason : int {
  remote_hangup = 0,
  remote_cancel = 1,
  local_hangup = 2,
  rejected = 3,
  no_media = 4,
  engine_stop = 5,
  error = 6
};

struct CallEvent {
  EventType type = EventType::call_started;
  std::shared_ptr<Call> call;
  media::DtmfDigit dtmf{};
  std::string prompt;
  PromptEnd prompt_end = PromptEnd::completed;
  std::string digits;
  CollectEnd collect_end = CollectEnd::max_digits;
  media::DtmfSource digits_source = media::DtmfSource::rfc4733;
  EndReason end_reason = EndReason::local_hangup;
  int sip_code = 0;
  std::string reason;
  bool on_hold = false;
  // Calls run by a flow (core/flow_runner.h): where they are, and their record at the end.
  std::string flow_id, flow_version, flow_node, flow_verb, flow_detail;
  std::string flow_path, flow_end, flow_error;
  std::vector<std::string> flow_nodes;  // the path as a list (webhooks); capped by the session
  uint64_t flow_nodes_dropped = 0;      // nodes entered beyond the cap
  // Routing events: the plan, the target and URI concerned, what was decided or happened
  // (Router::describe for route.decided, the failure for route.attempt), queue figures.
  std::string route_plan, route_target, route_uri, route_detail;
  int queue_position = 0, queue_priority = 0;
  uint32_t route_attempt = 0;  // 1-based number of the INVITE (route.attempt, call.delivered)
  // route.decided: the strategy, the candidates in order and the targets passed over (name,
  // reason).
  std::string route_strategy;
  std::vector<std::string> route_candidates;
  std::vector<std::pair<std::string, std::string>> route_skipped;
};

}  // namespace ivr::core
