#include "core/event_json.h"

#include "common/text.h"
#include "net/webhook_dispatcher.h"

namespace ivr::core {
namespace {

// Headers copied into call.started and call.ended: the caller data a receiver cares about
// (X-* and User-to-User), bounded so a hostile INVITE cannot bloat every event.
constexpr size_t kMaxHeaders = 32;
constexpr size_t kMaxHeaderValueBytes = 1024;

bool carried_header(std::string_view name) {
  return (name.size() > 2 && text::iequals(name.substr(0, 2), "x-")) ||
         text::iequals(name, "User-to-User");
}

// A JSON object written member by member; every string is made valid UTF-8 and escaped.
class JsonObject {
 public:
  JsonObject() { out_ = "{"; }

  JsonObject &string(std::string_view key, std::string_view value) {
    this->key(key);
    text::append_json_quoted(out_, valid_utf8(value));
    return *this;
  }
  JsonObject &number(std::string_view key, int64_t value) {
    this->key(key);
    out_ += std::to_string(value);
    return *this;
  }
  // RFC 3339 UTC with milliseconds, or null for 0 (did not happen).
  JsonObject &time(std::string_view key, int64_t unix_ms) {
    this->key(key);
    if (unix_ms == 0)
      out_ += "null";
    else
      text::append_json_quoted(out_, net::rfc3339_utc_ms(unix_ms));
    return *this;
  }
  JsonObject &raw(std::string_view key, std::string_view json) {
    this->key(key);
    out_ += json;
    return *this;
  }
  std::string finish() {
    out_ += '}';
    return std::move(out_);
  }

 private:
  void key(std::string_view k) {
    if (out_.size() > 1) out_ += ',';
    text::append_json_quoted(out_, k);
    out_ += ':';
  }
  std::string out_;
};

std::string string_array(const std::vector<std::string> &items) {
  std::string out = "[";
  for (const auto &item : items) {
    if (out.size() > 1) out += ',';
    text::append_json_quoted(out, valid_utf8(item));
  }
  return out + "]";
}

// [["X-Lead-Id","L-42"],...] in INVITE order (a name may repeat).
std::string carried_headers(const CallFacts &facts) {
  std::string out = "[";
  size_t n = 0;
  for (const auto &h : facts.headers) {
    if (!carried_header(h.name)) continue;
    if (n++ == kMaxHeaders) break;
    if (out.size() > 1) out += ',';
    out += '[';
    text::append_json_quoted(out, valid_utf8(h.name));
    out += ',';
    std::string_view value = h.value;
    text::append_json_quoted(out, valid_utf8(value.substr(0, kMaxHeaderValueBytes)));
    out += ']';
  }
  return out + "]";
}

void add_parties(JsonObject &o, const CallFacts &facts) {
  o.string("from", facts.from)
      .string("from_user", facts.from_user)
      .string("to", facts.to)
      .string("to_user", facts.to_user);
}

// The flow a call runs, when it runs one: where it is.
void add_flow_position(JsonObject &o, const CallEvent &e) {
  if (e.flow_id.empty()) return;
  o.string("flow_id", e.flow_id).string("flow_version", e.flow_version);
  if (!e.flow_node.empty()) o.string("flow_node", e.flow_node);
}

}  // namespace

std::string_view webhook_event_type(EventType type) {
  switch (type) {
    case EventType::call_started:
      return "call.started";
    case EventType::call_answered:
      return "call.answered";
    case EventType::dtmf:
      return "dtmf";
    case EventType::flow_step:
      return "flow.node";
    case EventType::call_ended:
      return "call.ended";
    case EventType::route_decided:
      return "route.decided";
    case EventType::route_attempt:
      return "route.attempt";
    case EventType::call_queued:
      return "call.queued";
    case EventType::call_delivered:
      return "call.delivered";
    case EventType::prompt_finished:
    case EventType::collect_done:
    case EventType::media_updated:
      return "";
  }
  return "";
}

const char *end_reason_name(EndReason reason) {
  switch (reason) {
    case EndReason::remote_hangup:
      return "remote_hangup";
    case EndReason::remote_cancel:
      return "remote_cancel";
    case EndReason::local_hangup:
      return "local_hangup";
    case EndReason::rejected:
      return "rejected";
    case EndReason::no_media:
      return "no_media";
    case EndReason::engine_stop:
      return "engine_stop";
    case EndReason::error:
      return "error";
  }
  return "unknown";
}

const char *dtmf_source_name(media::DtmfSource source) {
  switch (source) {
    case media::DtmfSource::rfc4733:
      return "rfc4733";
    case media::DtmfSource::info:
      return "info";
    case media::DtmfSource::inband:
      return "inband";
  }
  return "unknown";
}

std::string valid_utf8(std::string_view s) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    // Lead byte: sequence length and the range the second byte must be in (RFC 3629 table),
    // which excludes overlong forms, surrogates and code points above U+10FFFF.
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    }
    size_t good = 0;  // bytes of a valid sequence seen so far
    if (len > 0) {
      good = 1;
      while (good < len && i + good < s.size()) {
        auto b = static_cast<unsigned char>(s[i + good]);
        bool ok = good == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
        if (!ok) break;
        ++good;
      }
    }
    if (len > 0 && good == len) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      // One replacement per maximal invalid prefix (the W3C/Unicode "substitution of
      // maximal subparts" practice), then resynchronise at the next byte.
      out += kReplacement;
      i += good > 0 ? good : 1;
    }
  }
  return out;
}

std::string event_json(const CallEvent &e, const CallFacts &facts, const CallTimeline &timeline,
                       uint64_t seq) {
  JsonObject o;
  o.string("call_id", facts.call_id).number("seq", static_cast<int64_t>(seq));
  switch (e.type) {
    case EventType::call_started:
      add_parties(o, facts);
      o.string("request_uri", facts.request_uri)
          .string("remote", facts.remote_signaling)
          .raw("headers", carried_headers(facts))
          .time("started_at", timeline.started_ms);
      add_flow_position(o, e);
      break;
    case EventType::call_answered:
      o.time("answered_at", timeline.answered_ms);
      add_flow_position(o, e);
      break;
    case EventType::dtmf:
      o.string("digit", std::string_view(&e.dtmf.digit, e.dtmf.digit ? 1 : 0))
          .number("duration_ms", e.dtmf.duration_ms)
          .string("source", dtmf_source_name(e.dtmf.source));
      add_flow_position(o, e);
      break;
    case EventType::flow_step:
      o.string("flow_id", e.flow_id)
          .string("flow_version", e.flow_version)
          .string("node", e.flow_node)
          .string("verb", e.flow_verb)
          .string("detail", e.flow_detail);
      break;
    case EventType::call_ended: {
      add_parties(o, facts);
      o.raw("headers", carried_headers(facts))
          .time("started_at", timeline.started_ms)
          .time("answered_at", timeline.answered_ms)
          .time("ended_at", timeline.ended_ms);
      int64_t end = timeline.ended_ms;
      o.number("duration_ms", end > timeline.started_ms ? end - timeline.started_ms : 0)
          .number("talk_ms", timeline.answered_ms && end > timeline.answered_ms
                                 ? end - timeline.answered_ms
                                 : 0)
          .string("end_reason", end_reason_name(e.end_reason))
          .number("sip_status", e.sip_code)
          .string("reason", e.reason);
      if (!e.flow_id.empty()) {
        o.string("flow_id", e.flow_id)
            .string("flow_version", e.flow_version)
            .raw("flow_path", string_array(e.flow_nodes))
            .number("flow_path_dropped", static_cast<int64_t>(e.flow_nodes_dropped))
            .string("flow_end", e.flow_end)
            .string("flow_error", e.flow_error);
      }
      break;
    }
    case EventType::route_decided: {
      std::string skipped = "[";
      for (const auto &[target, reason] : e.route_skipped) {
        if (skipped.size() > 1) skipped += ',';
        skipped += JsonObject().string("target", target).string("reason", reason).finish();
      }
      skipped += ']';
      o.string("plan", e.route_plan)
          .string("strategy", e.route_strategy)
          .raw("candidates", string_array(e.route_candidates))
          .raw("skipped", skipped)
          .string("detail", e.route_detail);
      add_flow_position(o, e);
      break;
    }
    case EventType::route_attempt:
    case EventType::call_delivered:
      o.string("plan", e.route_plan)
          .string("target", e.route_target)
          .string("uri", e.route_uri)
          .number("attempt", e.route_attempt)
          .number("sip_status", e.sip_code)
          .string("detail", e.route_detail);
      add_flow_position(o, e);
      break;
    case EventType::call_queued:
      o.string("plan", e.route_plan)
          .number("position", e.queue_position)
          .number("priority", e.queue_priority)
          .string("detail", e.route_detail);
      add_flow_position(o, e);
      break;
    case EventType::prompt_finished:
    case EventType::collect_done:
    case EventType::media_updated:
      break;
  }
  return o.finish();
}

}  // namespace ivr::core
