// The JSON payloads of the engine's webhook events: the "data" member of a delivery (see
// net/webhook_dispatcher.h for the envelope and docs/net.md, "In the engine").
//
// Every string value is JSON-escaped, and bytes that are not valid UTF-8 (a hostile From
// display name, a header from a broken peer) become U+FFFD, so the payload is always one
// valid JSON value whatever the caller sent.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/call.h"
#include "core/call_event.h"

namespace ivr::core {

// The webhook type of an engine event: "call.started", "call.answered", "dtmf", "flow.node",
// "call.ended"; "" for events that are not published (prompt_finished, collect_done,
// media_updated: host-level details).
std::string_view webhook_event_type(EventType type);

// Names as the C ABI spells them ("remote_hangup", "info", ...).
const char *end_reason_name(EndReason reason);
const char *dtmf_source_name(media::DtmfSource source);

// `s` with every byte sequence that is not valid UTF-8 (overlong forms, surrogates, code
// points above U+10FFFF, truncated sequences) replaced by U+FFFD.
std::string valid_utf8(std::string_view s);

// The payload of one event of a call: `seq` is its 1-based position among the call's
// webhook events (all types, so a subscriber to some types sees gaps). Reads the event's
// type-specific fields, the call's facts and its timeline; `event.call` may be null.
std::string event_json(const CallEvent &event, const CallFacts &facts, const CallTimeline &timeline,
                       uint64_t seq);

}  // namespace ivr::core
