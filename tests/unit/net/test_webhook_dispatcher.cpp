// WebhookDispatcher against a real receiver on loopback (tests/net/webhook_receiver.py):
// signed delivery, retries and Retry-After, an endpoint outage, dead letters, filtering,
// subscription removal, concurrency limits and a restart that resumes pending records.
#include <doctest/doctest.h>
#include <event2/event.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/json.h"
#include "net/webhook_dispatcher.h"
#include "net/webhook_signature.h"
#include "webhook_test_receiver.h"

using namespace ivr;
using namespace ivr::net;
using namespace std::chrono_literals;

namespace {

struct HookTempDir {
  std::string path;
  HookTempDir() {
    std::string tmpl = "/tmp/ivr-webhook-test-XXXXXX";
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~HookTempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Loop {
  event_base *base = event_base_new();
  ~Loop() { event_base_free(base); }
  // Runs the loop in 10 ms slices until pred() holds; false after `limit`.
  bool run_until(const std::function<bool()> &pred, std::chrono::milliseconds limit = 20s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      timeval tv{0, 10000};
      event_base_loopexit(base, &tv);
      event_base_dispatch(base);
    }
    return true;
  }
  void run_for(std::chrono::milliseconds d) {
    const auto end = std::chrono::steady_clock::now() + d;
    (void)run_until([&] { return std::chrono::steady_clock::now() >= end; }, d + 1s);
  }
};

struct Reports {
  std::vector<DeliveryReport> all;
  size_t count(DeliveryOutcome o) const {
    size_t n = 0;
    for (auto &r : all) n += r.outcome == o;
    return n;
  }
};

WebhookDispatcherOptions make_options(const std::string &dir, Reports &reports) {
  WebhookDispatcherOptions o;
  o.spool.directory = dir;
  o.seed = 42;
  o.on_report = [&reports](const DeliveryReport &r) { reports.all.push_back(r); };
  return o;
}

WebhookSubscription make_sub(std::string name, std::string url,
                             std::vector<std::string> types = {"*"}) {
  WebhookSubscription s;
  s.name = std::move(name);
  s.url = std::move(url);
  s.event_types = std::move(types);
  s.secrets = {"whsec_test_1"};
  s.backoff_base = 10ms;
  s.backoff_max = 100ms;
  s.timeout_ms = 5000;
  return s;
}

std::unique_ptr<WebhookDispatcher> make_dispatcher(Loop &loop, WebhookDispatcherOptions o) {
  auto d = WebhookDispatcher::create(loop.base, std::move(o));
  REQUIRE_MESSAGE(d.ok(), d.error().message);
  return std::move(*d);
}

const std::string *header(const json::Value &request, std::string_view name) {
  for (auto &h : request.find("headers")->items) {
    const std::string &k = h.items[0].string;
    if (k.size() == name.size() && std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) {
          return std::tolower(a) == std::tolower(b);
        }))
      return &h.items[1].string;
  }
  return nullptr;
}

std::vector<std::string> received_ids(test::WebhookTestReceiver &rx, std::string_view path,
                                      int status = 200) {
  std::vector<std::string> ids;
  auto doc = rx.received(path);
  for (auto &r : doc.root().find("requests")->items)
    if (static_cast<int>(r.find("status")->number) == status)
      ids.push_back(*header(r, "X-Ivr-Event-Id"));
  return ids;
}

}  // namespace

TEST_CASE("webhook body and timestamps") {
  CHECK(rfc3339_utc_ms(0) == "1970-01-01T00:00:00.000Z");
  CHECK(rfc3339_utc_ms(1700000000123) == "2023-11-14T22:13:20.123Z");
  SpoolRecord r;
  r.id = "0190a1b2c3d4e5f60718293a4b5c6d7e";
  r.subscription = "crm";
  r.event_type = "call.ended";
  r.created_ms = 1700000000123;
  r.payload = std::make_shared<const std::string>(R"({"call_id":"c-42"})");
  CHECK(webhook_body(r) == R"({"id":"0190a1b2c3d4e5f60718293a4b5c6d7e","type":"call.ended",)"
                           R"("created_at":"2023-11-14T22:13:20.123Z","subscription":"crm",)"
                           R"("data":{"call_id":"c-42"}})");
  auto parsed = json::parse(webhook_body(r));
  CHECK(parsed.ok());
}

TEST_CASE("webhook subscriptions are validated, naming the field") {
  auto base = make_sub("crm", "http://127.0.0.1:9/hook");
  CHECK(base.validate().ok());
  auto expect = [](WebhookSubscription s, std::string_view field) {
    Status st = s.validate();
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().code == Errc::invalid_argument);
    CHECK_MESSAGE(st.error().message.find(field) != std::string::npos, st.error().message);
  };
  auto s = base;
  s.name = "bad name";
  expect(s, "subscription name");
  s = base;
  s.url = "ftp://example.com/";
  expect(s, "url:");
  s = base;
  s.event_types = {};
  expect(s, "event_types:");
  s = base;
  s.event_types = {"call ended"};
  expect(s, "event_types[0]");
  s = base;
  s.secrets = {};
  expect(s, "secrets:");
  s = base;
  s.secrets = {"a", ""};
  expect(s, "secrets[1]");
  s = base;
  s.headers = {{"X-Ivr-Event-Id", "x"}};
  expect(s, "headers[0]");
  s = base;
  s.headers = {{"X-Tenant", "a\r\nb"}};
  expect(s, "headers[0]");
  s = base;
  s.timeout_ms = 0;
  expect(s, "timeout_ms");
  s = base;
  s.max_attempts = 0;
  expect(s, "max_attempts");
  s = base;
  s.backoff_max = 1ms;
  expect(s, "backoff_max");
  s = base;
  s.max_concurrency = 0;
  expect(s, "max_concurrency");
  CHECK(base.matches("dtmf"));
  s = base;
  s.event_types = {"call.started", "call.ended"};
  CHECK(s.matches("call.ended"));
  CHECK_FALSE(s.matches("dtmf"));
}

TEST_CASE("webhook: a signed delivery, verified by the receiver") {
  test::WebhookTestReceiver rx;
  HookTempDir dir;
  Loop loop;
  Reports reports;
  auto d = make_dispatcher(loop, make_options(dir.path, reports));
  auto sub = make_sub("crm", rx.url("/crm"), {"call.ended"});
  sub.secrets = {"old-secret", "new-secret"};
  sub.headers = {{"X-Tenant", "t-1"}};
  REQUIRE(d->set_subscription(sub).ok());
  d->start();

  std::optional<Status> durable;
  auto ids = d->publish("call.ended", R"({"call_id":"c-1","duration_s":37})",
                        [&](Status st) { durable = st; });
  REQUIRE(ids.ok());
  REQUIRE(ids->size() == 1);
  CHECK_FALSE(durable.has_value());  // never inside publish()
  REQUIRE(loop.run_until([&] { return reports.count(DeliveryOutcome::delivered) == 1; }));
  REQUIRE(loop.run_until([&] { return durable.has_value(); }));
  CHECK(durable->ok());

  auto doc = rx.received("/crm");
  auto &requests = doc.root().find("requests")->items;
  REQUIRE(requests.size() == 1);
  const json::Value &req = requests[0];
  const std::string &body = req.find("body")->string;
  CHECK(*header(req, "X-Ivr-Event-Id") == (*ids)[0]);
  CHECK(*header(req, "X-Ivr-Event-Type") == "call.ended");
  CHECK(*header(req, "X-Ivr-Attempt") == "1");
  CHECK(*header(req, "Content-Type") == "application/json");
  CHECK(*header(req, "X-Tenant") == "t-1");
  const std::string *sig = header(req, "X-Ivr-Signature");
  REQUIRE(sig != nullptr);
  std::vector<std::string> receiver_secret = {"new-secret"};
  CHECK(verify_webhook_signature(*sig, body, receiver_secret, wall_ms() / 1000));
  std::vector<std::string> old_secret = {"old-secret"};
  CHECK(verify_webhook_signature(*sig, body, old_secret, wall_ms() / 1000));
  std::vector<std::string> wrong = {"wrong"};
  CHECK(verify_webhook_signature(*sig, body, wrong, wall_ms() / 1000).error ==
        SignatureErrc::mismatch);
  CHECK(verify_webhook_signature(*sig, body + " ", receiver_secret, wall_ms() / 1000).error ==
        SignatureErrc::mismatch);

  auto parsed = json::parse(body);
  REQUIRE(parsed.ok());
  const json::Value &root = parsed->root();
  CHECK(root.find("id")->string == (*ids)[0]);
  CHECK(root.find("type")->string == "call.ended");
  CHECK(root.find("subscription")->string == "crm");
  CHECK(root.find("created_at")->string.size() == 24);
  CHECK(root.find("created_at")->string.back() == 'Z');
  CHECK(root.find("data")->find("call_id")->string == "c-1");
  CHECK(root.find("data")->find("duration_s")->number == 37);

  auto c = d->counters();
  CHECK(c.published == 1);
  CHECK(c.delivered == 1);
  CHECK(c.failed_attempts == 0);
  CHECK(c.queued == 0);
  CHECK(c.in_flight == 0);
}

TEST_CASE("webhook: subscriptions filter by event type; disabled ones get nothing") {
  test::WebhookTestReceiver rx;
  HookTempDir dir;
  Loop loop;
  Reports reports;
  auto d = make_dispatcher(loop, make_options(dir.path, reports));
  REQUIRE(d->set_subscription(make_sub("a", rx.url("/a"), {"call.started"})).ok());
  REQUIRE(d->set_subscription(make_sub("b", rx.url("/b"), {"*"})).ok());
  REQUIRE(d->set_subscription(make_sub("c", rx.url("/c"), {"dtmf", "call.ended"})).ok());
  auto off = make_sub("d", rx.url("/d"), {"*"});
  off.enabled = false;
  REQUIRE(d->set_subscription(off).ok());
  d->start();

  CHECK(d->publish("call.started", R"({"n":1})")->size() == 2);
  CHECK(d->publish("dtmf", R"({"digit":"5"})")->size() == 2);
  CHECK(d->publish("flow.node", R"({"node":"menu"})")->size() == 1);
  REQUIRE(loop.run_until([&] { return reports.count(DeliveryOutcome::delivered) == 5; }));

  auto types = [&](std::string_view path) {
    std::multiset<std::string> out;
    auto doc = rx.received(path);
    for (auto &r : doc.root().find("requests")->items) out.insert(*header(r, "X-Ivr-Event-Type"));
    return out;
  };
  CHECK(types("/a") == std::multiset<std::string>{"call.started"});
  CHECK(types("/b") == std::multiset<std::string>{"call.started", "dtmf", "flow.node"});
  CHECK(types("/c") == std::multiset<std::string>{"dtmf"});
  CHECK(types("/d").empty());
  REQUIRE(d->remove_subscription("b").ok());
  auto none = d->publish("route.decided", "{}");
  REQUIRE(none.ok());
  CHECK(none->empty());
  CHECK(d->counters().published == 5);
  CHECK(d->counters().dead == 0);
}

TEST_CASE("webhook: publish rejects bad input and a full spool, all or nothing") {
  HookTempDir dir;
  Loop loop;
  Reports reports;
  auto o = make_options(dir.path, reports);
  o.spool.max_bytes = 4096;
  auto d = make_dispatcher(loop, std::move(o));
  // Not started, and nothing listens on port 9: records just wait in the spool.
  REQUIRE(d->set_subscription(make_sub("a", "http://127.0.0.1:9/a")).ok());
  REQUIRE(d->set_subscription(make_sub("b", "http://127.0.0.1:9/b")).ok());

  auto bad_type = d->publish("call ended", "{}");
  REQUIRE_FALSE(bad_type.ok());
  CHECK(bad_type.error().code == Errc::invalid_argument);
  CHECK(bad_type.error().message.find("event_type") != std::string::npos);
  auto bad_json = d->publish("dtmf", R"({"digit":)");
  REQUIRE_FALSE(bad_json.ok());
  CHECK(bad_json.error().code == Errc::invalid_argument);
  CHECK(bad_json.error().message.find("payload") != std::string::npos);
  auto two_values = d->publish("dtmf", R"({} {})");
  CHECK_FALSE(two_values.ok());

  // Each record is about 1.2 KB: three fit in 4096 bytes, four do not.
  const std::string payload = "{\"fill\":\"" + std::string(1100, 'x') + "\"}";
  auto first = d->publish("dtmf", payload);
  REQUIRE(first.ok());
  CHECK(first->size() == 2);
  auto second = d->publish("dtmf", payload);  // the first append fits, the second does not
  REQUIRE_FALSE(second.ok());
  CHECK(second.error().code == Errc::busy);
  CHECK(second.error().message.find("full") != std::string::npos);
  auto c = d->counters();
  CHECK(c.published == 2);
  CHECK(c.queued == 2);  // the half of the second publish was withdrawn
  CHECK(c.publish_rejected == 4);
  REQUIRE(d->flush().ok());
}

TEST_CASE("webhook: 503 is retried with backoff until the endpoint accepts") {
  test::WebhookTestReceiver rx;
  HookTempDir dir;
  Loop loop;
  Reports reports;
  auto d = make_dispatcher(loop, make_options(dir.path, reports));
  // The connection drop comes first: curl would silently resend a request whose reused
  // connection died (the receiver then sees one attempt twice; at-least-once allows it).
  rx.script("/r", R"([{"close":true},{"status":503,"body":"busy"},{"status":500}])");
  auto sub = make_sub("r", rx.url("/r"));
  sub.max_attempts = 10;
  REQUIRE(d->set_subscription(sub).ok());
  d->start();
  auto ids = d->publish("call.answered", R"({"call_id":"c-2"})");
  REQUIRE(ids.ok());
  REQUIRE(loop.run_until([&] { return reports.count(DeliveryOutcome::delivered) == 1; }));

  REQUIRE(reports.all.size() == 4);
  CHECK(reports.all[0].status == 0);
  CHECK(reports.all[0].error.rfind("protocol", 0) == 0);  // closed without an answer
  CHECK(reports.all[1].status == 503);
  CHECK(reports.all[1].error == "HTTP 503: busy");
  CHECK(reports.all[2].status == 500);
  for (int i = 0; i < 3; ++i) {
    CHECK(reports.all[i].attempt == static_cast<uint32_t>(i + 1));
    CHECK(reports.all[i].outcome == DeliveryOutcome::retry);
  }
  CHECK(reports.all[3].attempt == 4);

  auto doc = rx.received("/r");
  auto &requests = doc.root().find("requests")->items;
  REQUIRE(requests.size() == 4);
  std::vector<std::string> secret = {"whsec_test_1"};
  std::string first_body = requests[0].find("body")->string;
  for (size_t i = 0; i < requests.size(); ++i) {
    CHECK(*header(requests[i], "X-Ivr-Event-Id") == (*ids)[0]);  // the idempotency id
    CHECK(*header(requests[i], "X-Ivr-Attempt") == std::to_string(i + 1));
    CHECK(requests[i].find("body")->string == first_body);  // the same bytes every time
    CHECK(verify_webhook_signature(*header(requests[i], "X-Ivr-Signature"),
                                   requests[i].find("body")->string, secret, wall_ms() / 1000));
  }
  auto c = d->counters();
  CHECK(c.failed_attempts == 3);
  CHECK(c.delivered == 1);
  CHECK(c.dead == 0);
}

TEST_CASE("webhook: Retry-After on 429/503 is honoured, capped by backoff_max") {
  test::WebhookTestReceiver rx;
  HookTempDir dir;
  Loop loop;
  Reports reports;
  std::vector<int64_t> report_clock;  // the wall clock when each report arrived
  auto o = make_options(dir.path, reports);
  o.on_report = [&](const DeliveryReport &r) {
    reports.all.push_back(r);
    report_clock.push_back(wall_ms());
  };
  auto d = make_dispatcher(loop, std::move(o));
  rx.script("/ra", R"([{"status":503,"retry_after":"1"}])");
  rx.script("/cap", R"([{"status":429,"retry_after":"3600"}])");
  auto ra = make_sub("ra", rx.url("/ra"));
  ra.backoff_max = 5s;
  REQUIRE(d->set_subscription(ra).ok());
  auto cap = make_sub("cap", rx.url("/cap"));
  cap.backoff_max = 200ms;
  REQUIRE(d->set_subscription(cap).ok());
  d->start();
  REQUIRE(d->publish("call.queued", "{}").ok());
  REQUIRE(loop.run_until([&] { return reports.count(DeliveryOutcome::delivered) == 2; }));

  std::map<std::string, std::vector<size_t>> by_sub;
  for (size_t i = 0; i < reports.all.size(); ++i) by_sub[reports.all[i].subscription].push_back(i);
  REQUIRE(by_sub["ra"].size() == 2);
  REQUIRE(by_sub["cap"].size() == 2);
  const auto &ra_retry = reports.all[by_sub["ra"][0]];
  CHECK(ra_retry.outcome == DeliveryOutcome::retry);
  // Scheduled one second after the failure was seen (the receiver answered before that).
  auto doc = rx.received("/ra");
  auto &ra_requests = doc.root().find("requests")->items;
  REQUIRE(ra_requests.size() == 2);
  const auto first_answered = static_cast<int64_t>(ra_requests[0].find("time_ms")->number);
  CHECK(ra_retry.next_attempt_ms >= first_answered + 1000);
  CHECK(ra_retry.next_attempt_ms <= report_clock[by_sub["ra"][0]] + 1000);
  // The second attempt did not arrive before the delay asked for.
  CHECK(static_cast<int64_t>(ra_requests[1].find("time_ms")->number) >=
        ra_retry.next_attempt_ms - 1);
  // Retry-After: 3600 is capped at backoff_max (200 ms).
  const auto &cap_retry = reports.all[by_sub["cap"][0]];
  CHECK(cap_retry.status == 429);
  CHECK(cap_retry.next_attempt_ms <= report_clock[by_sub["cap"][0]] + 200);
}

TEST_CASE("webhook: the backoff is full jitter within base * 2^(n-1), at most backoff_max") {
  test::WebhookTestReceiver rx;
  HookTempDir dir;
  Loop loop;
  Reports reports;
  std::vector<int64_t> report_clock;
  auto o = make_options(dir.path, reports);
  o.on_report = [&](const DeliveryReport &r) {
    reports.all.push_back(r);
    report_clock.push_back(wall_ms());
  };
  auto d = make_dispatcher(loop, std::move(o));
  rx.script("/j", "[]", R"({"status":502})");
  auto sub = make_sub("j", rx.url("/j"));
  sub.backoff_base = 10ms;
  sub.backoff_max = 40ms;
  sub.max_attempts = 6;
  REQUIRE(d->set_subscription(sub).ok());
  d->start();
  REQUIRE(d->publish("dtmf", "{}").ok());
  REQUIRE(loop.run_until([&] { return reports.count(DeliveryOutcome::dead_lettered) == 1; }));
  REQUIRE(reports.all.size() == 6);
  const int64_t caps[] = {10, 20, 40, 40, 40};
  for (size_t i = 0; i < 5; ++i) {
    CHECK(reports.all[i].outcome == DeliveryOutcome::retry);
    CHECK(reports.all[i].next_attempt_ms <= report_clock[i] + caps[i]);
  }
  CHECK(rx.count("/j") == 6);
}

TEST_CASE("webhook: an endpoint that is down, then up, gets every event") {
  test::WebhookTestReceiver rx;
  HookTempDir dir;
  Loop loop;
  Reports reports;
  auto d = make_dispatcher(loop, make_options(dir.path, reports));
  auto sub = make_sub("down", rx.url("/down"));
  sub.max_attempts = 1000;
  REQUIRE(d->set_subscription(sub).ok());
  d->start();
  rx.down();
  std::set<std::string> published;
  for (int i = 0; i < 3; ++i) {
    auto ids = d->publish("call.started", "{\"n\":" + std::to_string(i) + "}");
    REQUIRE(ids.ok());
    published.insert((*ids)[0]);
  }
  REQUIRE(loop.run_until([&] { return d->counters().failed_attempts >= 6; }));
  CHECK(reports.all[0].error.rfind("connect", 0) == 0);
  CHECK(d->counters().delivered == 0);
  rx.up();
  REQUIRE(loop.run_until([&] { return d->counters().delivered == 3; }));
  auto got = received_ids(rx, "/down");
  CHECK(std::set<std::string>(got.begin(), got.end()) == published);
  CHECK(d->counters().queued == 0);
}

TEST_CASE("webhook: dead letters after max_attempts, listed, requeued, delivered, purged") {
  test::WebhookTestReceiver rx;
  HookTempDir dir;
  Loop loop;
  Reports reports;
  auto d = make_dispatcher(loop, make_options(dir.path, reports));
  rx.script("/dl", "[]", R"({"status":500,"body":"broken"})");
  auto sub = make_sub("dl", rx.url("/dl"));
  sub.max_attempts = 3;
  REQUIRE(d->set_subscription(sub).ok());
  rx.script("/gone", "[]", R"({"status":410})");
  REQUIRE(d->set_subscription(make_sub("gone", rx.url("/gone"), {"call.delivered"})).ok());
  d->start();
  const int64_t before = wall_ms();
  auto ids = d->publish("call.ended", R"({"call_id":"c-3"})");
  REQUIRE(ids.ok());
  REQUIRE(ids->size() == 1);
  const std::string id = (*ids)[0];
  REQUIRE(loop.run_until([&] { return reports.count(DeliveryOutcome::dead_lettered) == 1; }));
  loop.run_for(100ms);  // nothing more is sent once it is dead
  CHECK(rx.count("/dl") == 3);

  auto dead = d->dead_letters();
  REQUIRE(dead.size() == 1);
  CHECK(dead[0].id == id);
  CHECK(dead[0].subscription == "dl");
  CHECK(dead[0].event_type == "call.ended");
  CHECK(dead[0].attempts == 3);
  CHECK(dead[0].last_error.find("HTTP 500: broken") != std::string::npos);
  CHECK(dead[0].created_ms >= before);
  auto c = d->counters();
  CHECK(c.dead_lettered == 1);
  CHECK(c.dead == 1);
  CHECK(c.queued == 0);
  CHECK(c.failed_attempts == 3);

  // 410 Gone goes to the dead letters at once.
  auto gone = d->publish("call.delivered", "{}");
  REQUIRE(gone.ok());
  REQUIRE(gone->size() == 2);
  REQUIRE(loop.run_until([&] { return d->counters().dead == 3; }));
  CHECK(rx.count("/gone") == 1);

  CHECK(d->requeue("00000000000000000000000000000000").error().code == Errc::not_found);
  CHECK(d->purge("00000000000000000000000000000000").error().code == Errc::not_found);

  rx.script("/dl", "[]", R"({"status":204})");
  REQUIRE(d->requeue(id).ok());
  CHECK(d->requeue(id).error().code == Errc::bad_state);  // pending now
  CHECK(d->purge(id).error().code == Errc::bad_state);    // nothing pending is dropped
  REQUIRE(loop.run_until([&] { return d->counters().delivered == 1; }));
  auto got = received_ids(rx, "/dl", 204);
  REQUIRE(got.size() == 1);
  CHECK(got[0] == id);
  CHECK(d->dead_letters().size() == 2);

  auto purged_one = d->dead_letters()[0].id;
  CHECK(d->purge(purged_one).ok());
  auto purged = d->purge_dead_letters();
  REQUIRE(purged.ok());
  CHECK(*purged == 1);
  CHECK(d->dead_letters().empty());
  CHECK(d->counters().requeued == 1);
}

TEST_CASE("webhook: removing a subscription dead-letters its pending records") {
  test::WebhookTestReceiver rx;
  HookTempDir dir;
  Loop loop;
  Reports reports;
  auto d = make_dispatcher(loop, make_options(dir.path, reports));
  rx.script("/rm", R"([{"status":503,"delay_ms":300}])");
  auto sub = make_sub("rm", rx.url("/rm"));
  sub.max_concurrency = 1;
  REQUIRE(d->set_subscription(sub).ok());
  REQUIRE(d->set_subscription(make_sub("keep", rx.url("/keep"), {"dtmf"})).ok());
  d->start();
  for (int i = 0; i < 5; ++i) REQUIRE(d->publish("call.started", "{}").ok());
  REQUIRE(loop.run_until([&] { return d->counters().in_flight == 1; }));
  REQUIRE(d->remove_subscription("rm").ok());
  CHECK(d->remove_subscription("rm").error().code == Errc::not_found);
  CHECK(d->counters().dead == 4);  // at once
  // The one in flight fails (503): it joins them, it is not retried.
  REQUIRE(loop.run_until([&] { return d->counters().dead == 5; }));
  CHECK(d->counters().queued == 0);
  for (auto &dl : d->dead_letters()) {
    CHECK(dl.subscription == "rm");
    CHECK(dl.last_error.find("subscription removed") != std::string::npos);
    CHECK(d->requeue(dl.id).error().code == Errc::not_found);  // not configured
  }
  CHECK(rx.count("/rm") == 1);
  auto n = d->requeue_dead_letters();
  REQUIRE(n.ok());
  CHECK(*n == 0);
  CHECK(d->subscriptions().size() == 1);
}

TEST_CASE("webhook: concurrency limits per subscription and overall") {
  test::WebhookTestReceiver rx;
  HookTempDir dir;
  Loop loop;
  Reports reports;
  auto o = make_options(dir.path, reports);
  o.max_in_flight = 3;
  auto d = make_dispatcher(loop, std::move(o));
  rx.script("/p", "[]", R"({"status":200,"delay_ms":60})");
  rx.script("/q", "[]", R"({"status":200,"delay_ms":60})");
  auto p = make_sub("p", rx.url("/p"), {"call.started"});
  p.max_concurrency = 2;
  REQUIRE(d->set_subscription(p).ok());
  auto q = make_sub("q", rx.url("/q"), {"call.ended"});
  q.max_concurrency = 5;
  REQUIRE(d->set_subscription(q).ok());
  d->start();
  for (int i = 0; i < 8; ++i) {
    REQUIRE(d->publish("call.started", "{}").ok());
    REQUIRE(d->publish("call.ended", "{}").ok());
  }
  size_t most_in_flight = 0;
  REQUIRE(loop.run_until([&] {
    most_in_flight = std::max(most_in_flight, d->counters().in_flight);
    return d->counters().delivered == 16;
  }));
  CHECK(rx.max_in_flight("/p") <= 2);
  CHECK(rx.max_in_flight("*") <= 3);
  CHECK(rx.max_in_flight("*") >= 2);  // it does run deliveries side by side
  CHECK(most_in_flight <= 3);
  auto subs = d->subscriptions();
  REQUIRE(subs.size() == 2);
  CHECK(subs[0].name == "p");
  CHECK(subs[0].delivered == 8);
  CHECK(subs[1].delivered == 8);
}

TEST_CASE("webhook: a restart resumes pending records; unconfigured ones become dead letters") {
  test::WebhookTestReceiver rx;
  HookTempDir dir;
  Loop loop;
  std::set<std::string> published;
  std::string orphan;
  {
    Reports reports;
    auto d = make_dispatcher(loop, make_options(dir.path, reports));
    auto sub = make_sub("resume", rx.url("/resume"), {"call.ended"});
    sub.max_attempts = 100;
    REQUIRE(d->set_subscription(sub).ok());
    REQUIRE(d->set_subscription(make_sub("old", rx.url("/old"), {"dtmf"})).ok());
    rx.down();
    d->start();
    int durable = 0;
    for (int i = 0; i < 4; ++i) {
      auto ids = d->publish("call.ended", "{}", [&](Status st) { durable += st.ok(); });
      REQUIRE(ids.ok());
      published.insert((*ids)[0]);
    }
    auto o = d->publish("dtmf", "{}", [&](Status st) { durable += st.ok(); });
    REQUIRE(o.ok());
    orphan = (*o)[0];
    REQUIRE(loop.run_until([&] { return durable == 5 && d->counters().failed_attempts >= 5; }));
    CHECK(d->counters().delivered == 0);
  }  // "crash": the dispatcher goes away with everything pending
  rx.up();
  Reports reports;
  auto d = make_dispatcher(loop, make_options(dir.path, reports));
  CHECK(d->counters().queued == 5);
  REQUIRE(d->set_subscription(make_sub("resume", rx.url("/resume"), {"call.ended"})).ok());
  d->start();
  REQUIRE(loop.run_until([&] { return d->counters().delivered == 4; }));
  auto got = received_ids(rx, "/resume");
  CHECK(std::set<std::string>(got.begin(), got.end()) == published);
  auto dead = d->dead_letters();
  REQUIRE(dead.size() == 1);
  CHECK(dead[0].id == orphan);
  CHECK(dead[0].last_error.find("not configured") != std::string::npos);
  CHECK(rx.count("/old") == 0);
  // The dispatcher holds the spool: a second one on the same directory is refused.
  Reports other;
  auto second = WebhookDispatcher::create(loop.base, make_options(dir.path, other));
  REQUIRE_FALSE(second.ok());
  CHECK(second.error().code == Errc::busy);
  CHECK(d->close().ok());
  CHECK(d->publish("dtmf", "{}").error().code == Errc::bad_state);
}

TEST_CASE("webhook: replacing a subscription keeps its queue; a timeout is a failed attempt") {
  test::WebhookTestReceiver rx;
  HookTempDir dir;
  Loop loop;
  Reports reports;
  auto d = make_dispatcher(loop, make_options(dir.path, reports));
  rx.script("/slow", "[]", R"({"status":200,"delay_ms":2000})");
  auto sub = make_sub("s", rx.url("/slow"));
  sub.timeout_ms = 100;
  sub.max_attempts = 100;
  REQUIRE(d->set_subscription(sub).ok());
  d->start();
  auto ids = d->publish("flow.node", R"({"node":"start"})");
  REQUIRE(ids.ok());
  REQUIRE(loop.run_until([&] { return d->counters().failed_attempts >= 1; }));
  CHECK(reports.all[0].error.rfind("timeout", 0) == 0);
  sub.url = rx.url("/fast");
  REQUIRE(d->set_subscription(sub).ok());
  REQUIRE(loop.run_until([&] { return d->counters().delivered == 1; }));
  auto got = received_ids(rx, "/fast");
  REQUIRE(got.size() == 1);
  CHECK(got[0] == (*ids)[0]);
}
