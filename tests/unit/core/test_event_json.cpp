// The webhook payloads of engine events (core/event_json.h): every payload parses as JSON
// whatever a caller put in its From header or X-* headers, times are RFC 3339 UTC with
// milliseconds, and each event type carries its fields.
#include <doctest/doctest.h>

#include <string>

#include "common/json.h"
#include "core/event_json.h"

using namespace ivr;
using namespace ivr::core;

namespace {

json::Document parse_ok(const std::string &text) {
  auto doc = json::parse(text);
  INFO(text);
  REQUIRE(doc.ok());
  REQUIRE(doc->root().is(json::Kind::object));
  return std::move(*doc);
}

const json::Value &member(const json::Value &object, std::string_view key) {
  const json::Value *v = object.find(key);
  INFO("missing member ", key);
  REQUIRE(v != nullptr);
  return *v;
}

std::string str(const json::Value &object, std::string_view key) {
  const json::Value &v = member(object, key);
  REQUIRE(v.is(json::Kind::string));
  return v.string;
}

double num(const json::Value &object, std::string_view key) {
  const json::Value &v = member(object, key);
  REQUIRE(v.is(json::Kind::number));
  return v.number;
}

CallFacts alice() {
  CallFacts f;
  f.call_id = "c-42@host";
  f.from = "\"Alice\" <sip:5551234@127.0.0.1:5061>;tag=1";
  f.from_user = "5551234";
  f.to = "<sip:4000@127.0.0.1>";
  f.to_user = "4000";
  f.request_uri = "sip:4000@127.0.0.1:5060";
  f.remote_signaling = "127.0.0.1:5061";
  return f;
}

CallEvent make_event(EventType type) {
  CallEvent e;
  e.type = type;
  return e;
}

}  // namespace

TEST_CASE("event json: engine events map to webhook types; host-only events are not published") {
  CHECK(webhook_event_type(EventType::call_started) == "call.started");
  CHECK(webhook_event_type(EventType::call_answered) == "call.answered");
  CHECK(webhook_event_type(EventType::dtmf) == "dtmf");
  CHECK(webhook_event_type(EventType::flow_step) == "flow.node");
  CHECK(webhook_event_type(EventType::call_ended) == "call.ended");
  CHECK(webhook_event_type(EventType::prompt_finished).empty());
  CHECK(webhook_event_type(EventType::collect_done).empty());
  CHECK(webhook_event_type(EventType::media_updated).empty());
}

TEST_CASE("event json: valid_utf8 keeps valid text and replaces every invalid sequence") {
  CHECK(valid_utf8("plain ascii") == "plain ascii");
  CHECK(valid_utf8("Jos\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x93\x9E") ==
        "Jos\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x93\x9E");
  const std::string r = "\xEF\xBF\xBD";
  CHECK(valid_utf8("a\xFF"
                   "b") == "a" + r + "b");                 // never a UTF-8 byte
  CHECK(valid_utf8("\xC0\xAF") == r + r);                  // overlong '/'
  CHECK(valid_utf8("\xED\xA0\x80") == r + r + r);          // a UTF-16 surrogate
  CHECK(valid_utf8("\xF4\x90\x80\x80") == r + r + r + r);  // above U+10FFFF
  CHECK(valid_utf8("end\xE2\x82") == "end" + r);           // cut short
  CHECK(valid_utf8("\xE2\x82x") == r + "x");               // broken in the middle
  CHECK(valid_utf8("\x80\x80") == r + r);                  // stray continuation bytes
  CHECK(valid_utf8(std::string_view("nul\0byte", 8)) == std::string("nul\0byte", 8));
}

TEST_CASE("event json: a hostile From display name and header values stay inside their strings") {
  CallFacts f = alice();
  f.from = "\"Eve\\\"\", \"admin\": true, \"x\": \"\r\n\t\x01\xFF\" <sip:eve@evil>";
  f.from_user = std::string("e\0ve", 4);
  f.headers = {{"Via", "SIP/2.0/UDP 10.0.0.1"},
               {"X-Lead-Id", "L-42\"}]}, {\"injected\": 1"},
               {"x-lower", "\\u0000 \x7F"},
               {"User-to-User", "04f8;encoding=hex"},
               {"X-Bad-Utf8", "caf\xC3"}};
  CallTimeline t{1700000000123, 0, 0};
  std::string text = event_json(make_event(EventType::call_started), f, t, 1);
  auto doc = parse_ok(text);
  const auto &root = doc.root();
  CHECK(root.members.size() == 10);  // nothing injected
  CHECK(root.find("admin") == nullptr);
  CHECK(str(root, "from") ==
        "\"Eve\\\"\", \"admin\": true, \"x\": \"\r\n\t\x01\xEF\xBF\xBD\" <sip:eve@evil>");
  CHECK(str(root, "from_user") == std::string("e\0ve", 4));
  CHECK(str(root, "call_id") == "c-42@host");
  CHECK(num(root, "seq") == 1);
  CHECK(str(root, "started_at") == "2023-11-14T22:13:20.123Z");
  CHECK(str(root, "request_uri") == "sip:4000@127.0.0.1:5060");
  CHECK(str(root, "remote") == "127.0.0.1:5061");
  const auto &headers = member(root, "headers");
  REQUIRE(headers.is(json::Kind::array));
  REQUIRE(headers.items.size() == 4);  // X-* and User-to-User only, in order
  CHECK(headers.items[0].items[0].string == "X-Lead-Id");
  CHECK(headers.items[0].items[1].string == "L-42\"}]}, {\"injected\": 1");
  CHECK(headers.items[1].items[1].string == "\\u0000 \x7F");
  CHECK(headers.items[2].items[0].string == "User-to-User");
  CHECK(headers.items[3].items[1].string == "caf\xEF\xBF\xBD");
  CHECK(root.find("flow_id") == nullptr);  // not run by a flow
}

TEST_CASE("event json: carried headers are bounded in number and size") {
  CallFacts f = alice();
  for (int i = 0; i < 40; ++i) f.headers.push_back({"X-H" + std::to_string(i), "v"});
  f.headers[0].value.assign(5000, 'a');
  auto doc = parse_ok(event_json(make_event(EventType::call_started), f, {1, 0, 0}, 1));
  const auto &headers = member(doc.root(), "headers");
  CHECK(headers.items.size() == 32);
  CHECK(headers.items[0].items[1].string.size() == 1024);
}

TEST_CASE("event json: call.ended is the call record with RFC 3339 UTC millisecond times") {
  CallFacts f = alice();
  f.headers = {{"X-Lead-Id", "L-42"}};
  CallEvent e = make_event(EventType::call_ended);
  e.end_reason = EndReason::remote_hangup;
  e.sip_code = 200;
  e.reason = "caller hung up";
  e.flow_id = "sales";
  e.flow_version = "3";
  e.flow_nodes = {"hello", "menu", "bye"};
  e.flow_end = "caller_hangup";
  CallTimeline t{1700000000123, 1700000002000, 1700000037123};
  auto doc = parse_ok(event_json(e, f, t, 9));
  const auto &root = doc.root();
  CHECK(num(root, "seq") == 9);
  CHECK(str(root, "from") == f.from);
  CHECK(str(root, "to_user") == "4000");
  CHECK(str(root, "started_at") == "2023-11-14T22:13:20.123Z");
  CHECK(str(root, "answered_at") == "2023-11-14T22:13:22.000Z");
  CHECK(str(root, "ended_at") == "2023-11-14T22:13:57.123Z");
  CHECK(num(root, "duration_ms") == 37000);
  CHECK(num(root, "talk_ms") == 35123);
  CHECK(str(root, "end_reason") == "remote_hangup");
  CHECK(num(root, "sip_status") == 200);
  CHECK(str(root, "reason") == "caller hung up");
  CHECK(str(root, "flow_id") == "sales");
  CHECK(str(root, "flow_version") == "3");
  const auto &path = member(root, "flow_path");
  REQUIRE(path.items.size() == 3);
  CHECK(path.items[1].string == "menu");
  CHECK(num(root, "flow_path_dropped") == 0);
  CHECK(str(root, "flow_end") == "caller_hangup");
  CHECK(str(root, "flow_error") == "");
  CHECK(member(root, "headers").items.size() == 1);
}

TEST_CASE("event json: an unanswered call has answered_at null and no talk time") {
  CallEvent e = make_event(EventType::call_ended);
  e.end_reason = EndReason::remote_cancel;
  e.sip_code = 487;
  auto doc = parse_ok(event_json(e, alice(), {1700000000000, 0, 1700000000999}, 2));
  CHECK(member(doc.root(), "answered_at").is(json::Kind::null));
  CHECK(num(doc.root(), "duration_ms") == 999);
  CHECK(num(doc.root(), "talk_ms") == 0);
  CHECK(str(doc.root(), "end_reason") == "remote_cancel");
  CHECK(doc.root().find("flow_id") == nullptr);
  // Times before 1970 or far ahead still format (the clock is the system's, not trusted).
  auto early = parse_ok(event_json(e, alice(), {-1, 0, 1}, 3));
  CHECK(str(early.root(), "started_at") == "1969-12-31T23:59:59.999Z");
}

TEST_CASE("event json: answered, dtmf and flow.node carry their fields and the flow position") {
  CallEvent answered = make_event(EventType::call_answered);
  answered.flow_id = "sales";
  answered.flow_version = "3";
  answered.flow_node = "hello";
  auto a = parse_ok(event_json(answered, alice(), {1700000000000, 1700000000250, 0}, 2));
  CHECK(str(a.root(), "answered_at") == "2023-11-14T22:13:20.250Z");
  CHECK(str(a.root(), "flow_node") == "hello");
  CHECK(a.root().find("from") == nullptr);

  CallEvent dtmf = make_event(EventType::dtmf);
  dtmf.dtmf = {'#', 160, media::DtmfSource::info};
  auto d = parse_ok(event_json(dtmf, alice(), {}, 3));
  CHECK(str(d.root(), "digit") == "#");
  CHECK(num(d.root(), "duration_ms") == 160);
  CHECK(str(d.root(), "source") == "info");
  CHECK(d.root().members.size() == 5);

  CallEvent step = make_event(EventType::flow_step);
  step.flow_id = "sales";
  step.flow_version = "3";
  step.flow_node = "menu";
  step.flow_verb = "gather";
  step.flow_detail = "say \"Press \\1\"\n";
  auto s = parse_ok(event_json(step, alice(), {}, 4));
  CHECK(str(s.root(), "node") == "menu");
  CHECK(str(s.root(), "verb") == "gather");
  CHECK(str(s.root(), "detail") == "say \"Press \\1\"\n");
  CHECK(str(s.root(), "flow_version") == "3");
}
