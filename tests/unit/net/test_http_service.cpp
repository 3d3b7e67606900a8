// HttpService against the real test server (tests/net/http_test_server.py) over loopback:
// cache, stale-if-error, retries, Retry-After, the call's budget, circuit breakers,
// cancellation, destruction with lookups in flight, and when completions run. Time only
// passes through loop timers; no test asserts how long something took, only what happened
// before what (a marker timer against a completion) and that runs end before safety bounds.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/json.h"
#include "net/http_client.h"
#include "net/http_service.h"
#include "test_server.h"

using namespace ivr::net;
using ivr::Status;
using ivr::test::TestHttpServer;
using ivr::test::TestLoop;
using namespace std::chrono_literals;

namespace {

TestHttpServer &server() {
  static TestHttpServer shared;
  return shared;
}

// A key no other test uses: the server's sequences and counters live as long as it does.
std::string fresh_key(const char *what) {
  static int n = 0;
  return std::string(what) + "-" + std::to_string(++n);
}

std::string sequence_url(const TestHttpServer &s, const std::string &key, const std::string &codes,
                         const std::string &extra = "") {
  return s.url("/sequence?key=" + key + "&codes=" + codes + extra);
}

// Requests the server saw for `path` (and `key`), read with a plain client.
int hits(TestLoop &loop, const TestHttpServer &s, const std::string &path,
         const std::string &key = "") {
  HttpClient client(loop.base());
  HttpRequest req;
  req.url = s.url("/hits?path=" + path + (key.empty() ? "" : "&key=" + key));
  std::optional<HttpResponse> got;
  client.start(req, [&](HttpResponse &&r) { got = std::move(r); });
  REQUIRE(loop.run_until([&] { return got.has_value(); }));
  REQUIRE(got->status == 200);
  auto doc = ivr::json::parse(got->body);
  REQUIRE(doc.ok());
  return static_cast<int>(doc->root().find("count")->number);
}

int body_n(const FetchResult &r) {  // "n" of a /sequence answer
  auto doc = ivr::json::parse(r.response.body);
  REQUIRE_MESSAGE(doc.ok(), r.response.body);
  return static_cast<int>(doc->root().find("n")->number);
}

HttpServiceOptions fast_options() {
  HttpServiceOptions o;
  o.seed = 42;
  o.retry.base_delay = 20ms;
  o.retry.max_delay = 200ms;
  return o;
}

std::unique_ptr<HttpService> make_service(TestLoop &loop, HttpServiceOptions o = fast_options(),
                                          RequestAuthorizer *authorizer = nullptr) {
  auto made = HttpService::create(loop.base(), std::move(o), authorizer);
  REQUIRE_MESSAGE(made.ok(), made.error().message);
  return std::move(made).value();
}

FetchRequest get(std::string url) {
  FetchRequest f;
  f.request.url = std::move(url);
  f.request.timeout_ms = 2000;
  return f;
}

// Runs one lookup to its end; also checks its callback ran once and never inside fetch().
FetchResult run(TestLoop &loop, HttpService &svc, FetchRequest req,
                std::chrono::milliseconds limit = 20s) {
  std::optional<FetchResult> result;
  int calls = 0;
  bool inside = true;
  svc.fetch(std::move(req), [&](FetchResult &&r) {
    CHECK_FALSE(inside);
    ++calls;
    result = std::move(r);
  });
  inside = false;
  REQUIRE(loop.run_until([&] { return result.has_value(); }, limit));
  CHECK(calls == 1);
  return std::move(*result);
}

// A stand-in for the engine's authorizer (the HTTP path stays real): sets a header, answers
// at once, later, twice or never, as told.
struct ScriptedAuthorizer final : RequestAuthorizer {
  enum class Mode { sync_ok, sync_fail, never, twice, sign };
  Mode mode = Mode::sync_ok;
  int authorized = 0, rejected = 0;
  std::vector<std::function<void(Status)>> parked;

  bool has_profile(const std::string &p) const override { return p == "p1" || p == "p2"; }
  void authorize(const std::string &profile, HttpRequest &request,
                 std::function<void(Status)> done) override {
    ++authorized;
    switch (mode) {
      case Mode::sync_ok:
        request.headers.emplace_back("X-Profile", profile);
        return done(Status{});
      case Mode::sign:  // a per-attempt signature: different every time
        request.headers.emplace_back("Authorization", "Sig " + std::to_string(authorized));
        return done(Status{});
      case Mode::sync_fail:
        return done(Status{ivr::Errc::not_found, "secret 'x' not found"});
      case Mode::never:
        parked.push_back(std::move(done));
        return;
      case Mode::twice:
        done(Status{});
        return done(Status{});
    }
  }
  bool unauthorized(const std::string &, const HttpRequest &) override {
    ++rejected;
    return false;
  }
};

}  // namespace

TEST_CASE("http service: options are checked") {
  TestLoop loop;
  CHECK_FALSE(HttpService::create(nullptr).ok());
  HttpServiceOptions o;
  o.retry.base_delay = 0ms;
  auto bad = HttpService::create(loop.base(), o);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.rfind("retry.base_delay", 0) == 0);
  o = {};
  o.breaker.failure_threshold = 0;
  bad = HttpService::create(loop.base(), o);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.rfind("breaker.", 0) == 0);
}

TEST_CASE("http service: a fresh cache hit does not reach the server") {
  TestLoop loop;
  auto svc = make_service(loop);
  const std::string key = fresh_key("fresh");
  FetchRequest req = get(sequence_url(server(), key, "200"));
  req.cache_ttl = 60s;

  FetchResult first = run(loop, *svc, req);
  CHECK(first.reason == "");
  CHECK(first.response.status == 200);
  CHECK_FALSE(first.cached);
  CHECK(first.attempts == 1);

  for (int i = 0; i < 3; ++i) {
    FetchResult again = run(loop, *svc, req);
    CHECK(again.reason == "");
    CHECK(again.cached);
    CHECK_FALSE(again.stale);
    CHECK(again.attempts == 0);
    CHECK(body_n(again) == 1);  // the first answer
  }
  CHECK(hits(loop, server(), "/sequence", key) == 1);
  CHECK(svc->counters().cache_hits == 3);
  CHECK(svc->counters().requests == 1);

  // Another URL (a different query) is another entry.
  FetchRequest other = get(sequence_url(server(), key, "200", "&x=1"));
  other.cache_ttl = 60s;
  CHECK_FALSE(run(loop, *svc, other).cached);
  CHECK(hits(loop, server(), "/sequence", key) == 2);
}

TEST_CASE("http service: an entry expires after its TTL") {
  TestLoop loop;
  auto svc = make_service(loop);
  const std::string key = fresh_key("expiry");
  FetchRequest req = get(sequence_url(server(), key, "200"));
  req.cache_ttl = 100ms;
  CHECK(body_n(run(loop, *svc, req)) == 1);
  loop.run_for(250ms);
  FetchResult later = run(loop, *svc, req);
  CHECK_FALSE(later.cached);
  CHECK(later.attempts == 1);
  CHECK(body_n(later) == 2);
  CHECK(hits(loop, server(), "/sequence", key) == 2);
}

TEST_CASE("http service: stale-if-error serves the old answer when the server fails") {
  TestLoop loop;
  auto svc = make_service(loop);

  SUBCASE("503 after the TTL") {
    const std::string key = fresh_key("stale503");
    FetchRequest req = get(sequence_url(server(), key, "200,503"));
    req.cache_ttl = 100ms;
    req.stale_if_error = 60s;
    CHECK(run(loop, *svc, req).response.status == 200);
    loop.run_for(200ms);
    FetchResult r = run(loop, *svc, req);
    CHECK(r.reason == "");
    CHECK(r.stale);
    CHECK(r.cached);
    CHECK(r.attempts == 1);  // the live request was made and failed
    CHECK(r.response.status == 200);
    CHECK(body_n(r) == 1);
    CHECK(r.error.find("HTTP 503") != std::string::npos);
    CHECK(hits(loop, server(), "/sequence", key) == 2);
    CHECK(svc->counters().stale_served == 1);
    CHECK(svc->cache_counters().stale_served == 1);
    // The 503 did not wipe the entry: still served stale.
    CHECK(run(loop, *svc, req).stale);
  }
  SUBCASE("a closed port after the TTL, and nothing once the stale window has passed") {
    std::optional<TestHttpServer> doomed;
    doomed.emplace();
    const std::string url = doomed->url("/sequence?key=k&codes=200");
    FetchRequest req = get(url);
    req.cache_ttl = 100ms;
    req.stale_if_error = 1500ms;
    CHECK(run(loop, *svc, req).response.status == 200);
    doomed.reset();  // the port is closed now
    loop.run_for(200ms);
    FetchResult r = run(loop, *svc, req);
    CHECK(r.reason == "");
    CHECK(r.stale);
    CHECK(r.response.status == 200);
    CHECK(r.error.find("connect") != std::string::npos);
    loop.run_for(1600ms);  // past ttl + stale_if_error
    FetchResult gone = run(loop, *svc, req);
    CHECK(gone.reason == "connect");
    CHECK_FALSE(gone.stale);
    CHECK(gone.response.status == 0);
  }
  SUBCASE("no stale window: the failure is reported") {
    const std::string key = fresh_key("nostale");
    FetchRequest req = get(sequence_url(server(), key, "200,503"));
    req.cache_ttl = 50ms;
    CHECK(run(loop, *svc, req).response.status == 200);
    loop.run_for(150ms);
    FetchResult r = run(loop, *svc, req);
    CHECK(r.reason == "");
    CHECK_FALSE(r.stale);
    CHECK(r.response.status == 503);
  }
}

TEST_CASE("http service: retries") {
  TestLoop loop;
  auto svc = make_service(loop);

  SUBCASE("503, 503, 200 with three attempts succeeds on the third") {
    const std::string key = fresh_key("retry3");
    FetchRequest req = get(sequence_url(server(), key, "503,503,200"));
    req.max_attempts = 3;
    FetchResult r = run(loop, *svc, req);
    CHECK(r.reason == "");
    CHECK(r.response.status == 200);
    CHECK(r.attempts == 3);
    CHECK(r.give_up == "");
    CHECK(hits(loop, server(), "/sequence", key) == 3);
    CHECK(svc->counters().retries == 2);
  }
  SUBCASE("with two attempts the 503 comes back as a response") {
    const std::string key = fresh_key("retry2");
    FetchRequest req = get(sequence_url(server(), key, "503,503,200"));
    req.max_attempts = 2;
    FetchResult r = run(loop, *svc, req);
    CHECK(r.reason == "");
    CHECK(r.response.status == 503);
    CHECK(r.attempts == 2);
    CHECK(r.give_up == "attempts_exhausted");
    CHECK(hits(loop, server(), "/sequence", key) == 2);
  }
  SUBCASE("a status that is not retried is returned at once") {
    const std::string key = fresh_key("retry500");
    FetchRequest req = get(sequence_url(server(), key, "500,200"));
    req.max_attempts = 3;
    FetchResult r = run(loop, *svc, req);
    CHECK(r.response.status == 500);
    CHECK(r.attempts == 1);
    CHECK(r.give_up == "not_retryable");
  }
  SUBCASE("a refused connection is retried, then reported") {
    std::optional<TestHttpServer> doomed;
    doomed.emplace();
    FetchRequest req = get(doomed->url("/status/200"));
    doomed.reset();
    req.max_attempts = 3;
    FetchResult r = run(loop, *svc, req);
    CHECK(r.reason == "connect");
    CHECK(r.attempts == 3);
    CHECK(r.give_up == "attempts_exhausted");
    CHECK_FALSE(r.error.empty());
  }
}

TEST_CASE("http service: POST is retried only when the request allows it") {
  TestLoop loop;
  auto svc = make_service(loop);
  const std::string key = fresh_key("post");
  FetchRequest req = get(sequence_url(server(), key, "503,200"));
  req.request.method = "POST";
  req.request.body = "{}";
  req.max_attempts = 3;
  FetchResult r = run(loop, *svc, req);
  CHECK(r.response.status == 503);
  CHECK(r.attempts == 1);
  CHECK(r.give_up == "not_idempotent");
  CHECK(hits(loop, server(), "/sequence", key) == 1);

  req.retry_non_idempotent = true;
  FetchResult allowed = run(loop, *svc, req);  // the sequence goes on: 200
  CHECK(allowed.response.status == 200);
  CHECK(allowed.attempts == 1);

  const std::string key2 = fresh_key("post2");
  FetchRequest again = get(sequence_url(server(), key2, "503,200"));
  again.request.method = "POST";
  again.max_attempts = 3;
  again.retry_non_idempotent = true;
  FetchResult retried = run(loop, *svc, again);
  CHECK(retried.response.status == 200);
  CHECK(retried.attempts == 2);
}

TEST_CASE("http service: Retry-After is honoured within limits") {
  TestLoop loop;

  SUBCASE("the retry waits as asked") {
    HttpServiceOptions o = fast_options();
    o.retry.max_delay = 5s;
    auto svc = make_service(loop, o);
    const std::string key = fresh_key("ra1");
    FetchRequest req = get(sequence_url(server(), key, "503,200", "&retry_after=1"));
    req.max_attempts = 2;
    std::vector<std::string> order;
    std::optional<FetchResult> result;
    svc->fetch(req, [&](FetchResult &&r) {
      order.push_back("done");
      result = std::move(r);
    });
    // Without Retry-After the jittered delay is at most 20 ms: the retry would land long
    // before this marker.
    loop.after(600ms, [&] { order.push_back("marker"); });
    REQUIRE(loop.run_until([&] { return result.has_value(); }));
    CHECK(result->response.status == 200);
    CHECK(result->attempts == 2);
    REQUIRE(order.size() == 2);
    CHECK(order[0] == "marker");
  }
  SUBCASE("a longer Retry-After is capped at max_delay") {
    auto svc = make_service(loop);  // max_delay 200 ms
    const std::string key = fresh_key("ra-cap");
    FetchRequest req = get(sequence_url(server(), key, "503,200", "&retry_after=3600"));
    req.max_attempts = 2;
    FetchResult r = run(loop, *svc, req, 10s);
    CHECK(r.response.status == 200);
    CHECK(r.attempts == 2);
  }
  SUBCASE("a Retry-After beyond the budget ends the lookup at once") {
    HttpServiceOptions o = fast_options();
    o.retry.max_delay = 60s;
    auto svc = make_service(loop, o);
    const std::string key = fresh_key("ra-budget");
    FetchRequest req = get(sequence_url(server(), key, "503,200", "&retry_after=30"));
    req.max_attempts = 2;
    req.budget = 5s;
    FetchResult r = run(loop, *svc, req, 3s);  // far below the 30 s asked for
    CHECK(r.reason == "");
    CHECK(r.response.status == 503);
    CHECK(r.attempts == 1);
    CHECK(r.give_up == "budget_exhausted");
  }
}

TEST_CASE("http service: the budget bounds the lookup") {
  TestLoop loop;
  auto svc = make_service(loop);

  SUBCASE("a slow server and a small budget") {
    FetchRequest req = get(server().url("/slow?ms=4000"));
    req.request.timeout_ms = 3000;
    req.budget = 300ms;
    bool marker = false, done_before_marker = false;
    std::optional<FetchResult> result;
    svc->fetch(req, [&](FetchResult &&r) {
      done_before_marker = !marker;
      result = std::move(r);
    });
    loop.after(2500ms, [&] { marker = true; });  // far beyond the budget, before the answer
    REQUIRE(loop.run_until([&] { return result.has_value(); }, 10s));
    CHECK(done_before_marker);
    CHECK(result->reason == "budget");
    CHECK(result->attempts == 1);
    loop.run_until([&] { return marker; });
  }
  SUBCASE("no per-attempt timeout: the budget still ends it") {
    FetchRequest req = get(server().url("/slow?ms=4000"));
    req.request.timeout_ms = 0;
    req.budget = 300ms;
    bool marker = false, done_before_marker = false;
    std::optional<FetchResult> result;
    svc->fetch(req, [&](FetchResult &&r) {
      done_before_marker = !marker;
      result = std::move(r);
    });
    loop.after(2500ms, [&] { marker = true; });
    REQUIRE(loop.run_until([&] { return result.has_value(); }, 10s));
    CHECK(done_before_marker);
    CHECK((result->reason == "budget" || result->reason == "timeout"));
    loop.run_until([&] { return marker; });
  }
  SUBCASE("the attempt's own timeout, shorter than the budget") {
    FetchRequest req = get(server().url("/slow?ms=3000"));
    req.request.timeout_ms = 200;
    req.budget = 10s;
    FetchResult r = run(loop, *svc, req, 5s);
    CHECK(r.reason == "timeout");
    CHECK(r.attempts == 1);
  }
  SUBCASE("retries stop when another attempt would not fit") {
    HttpServiceOptions o = fast_options();
    o.breaker.failure_threshold = 1000;  // (five 503s in a row would open the circuit)
    svc = make_service(loop, o);
    const std::string key = fresh_key("budget-retry");
    FetchRequest req = get(sequence_url(server(), key, "503"));
    req.max_attempts = 50;
    req.request.timeout_ms = 400;
    req.budget = 1000ms;
    FetchResult r = run(loop, *svc, req, 5s);
    CHECK(r.reason == "");
    CHECK(r.response.status == 503);
    CHECK(r.give_up == "budget_exhausted");
    CHECK(r.attempts >= 1);
    CHECK(r.attempts < 50);
  }
  SUBCASE("a spent budget sends nothing") {
    const std::string key = fresh_key("budget0");
    FetchRequest req = get(sequence_url(server(), key, "200"));
    req.budget = 0ms;
    FetchResult r = run(loop, *svc, req);
    CHECK(r.reason == "budget");
    CHECK(r.attempts == 0);
    CHECK(hits(loop, server(), "/sequence", key) == 0);
  }
}

TEST_CASE("http service: circuit breaker per origin") {
  TestLoop loop;
  HttpServiceOptions o = fast_options();
  o.breaker.failure_threshold = 3;
  o.breaker.cooldown = 200ms;
  auto svc = make_service(loop, o);
  std::vector<std::string> transitions;
  svc->on_breaker_change([&](const BreakerTransition &t) {
    transitions.push_back(std::string(breaker_state_name(t.from)) + "->" +
                          breaker_state_name(t.to));
  });
  TestHttpServer own;  // its own origin, so other tests' traffic does not count
  const std::string key = fresh_key("breaker");
  FetchRequest req = get(own.url("/sequence?key=" + key + "&codes=503,503,503,200"));
  for (int i = 0; i < 3; ++i) CHECK(run(loop, *svc, req).response.status == 503);
  REQUIRE(transitions == std::vector<std::string>{"closed->open"});

  FetchResult rejected = run(loop, *svc, req);
  CHECK(rejected.reason == "circuit_open");
  CHECK(rejected.attempts == 0);
  CHECK(rejected.error.find("ms") != std::string::npos);
  CHECK(hits(loop, own, "/sequence", key) == 3);  // the rejected one never left
  CHECK(svc->counters().circuit_rejections == 1);

  // Another origin is not affected.
  FetchResult elsewhere = run(loop, *svc, get(server().url("/status/200")));
  CHECK(elsewhere.reason == "");
  CHECK(elsewhere.response.status == 200);

  loop.run_for(300ms);  // past the cool-down
  FetchResult probe = run(loop, *svc, req);
  CHECK(probe.reason == "");
  CHECK(probe.response.status == 200);
  CHECK(hits(loop, own, "/sequence", key) == 4);
  auto snap = svc->breaker(*origin_of(own.url("/")));
  REQUIRE(snap.has_value());
  CHECK(snap->state == BreakerState::closed);
  CHECK(transitions ==
        std::vector<std::string>{"closed->open", "open->half_open", "half_open->closed"});
}

TEST_CASE("http service: an open circuit serves a stale answer") {
  TestLoop loop;
  HttpServiceOptions o = fast_options();
  o.breaker.failure_threshold = 1;
  o.breaker.cooldown = 60s;
  auto svc = make_service(loop, o);
  TestHttpServer own;
  FetchRequest good = get(own.url("/status/200"));
  good.cache_ttl = 1ms;
  good.stale_if_error = 60s;
  CHECK(run(loop, *svc, good).response.status == 200);
  CHECK(run(loop, *svc, get(own.url("/status/503"))).response.status == 503);  // opens
  loop.run_for(20ms);
  FetchResult r = run(loop, *svc, good);
  CHECK(r.reason == "");
  CHECK(r.stale);
  CHECK(r.attempts == 0);
  CHECK(r.error.find("circuit_open") != std::string::npos);
  CHECK(hits(loop, own, "/status/200") == 1);
}

TEST_CASE("http service: cancel") {
  TestLoop loop;
  auto svc = make_service(loop);

  SUBCASE("during the request") {
    int calls = 0;
    std::optional<FetchResult> result;
    uint64_t id = svc->fetch(get(server().url("/slow?ms=2000")), [&](FetchResult &&r) {
      ++calls;
      result = std::move(r);
    });
    loop.after(50ms, [&] { svc->cancel(id); });
    REQUIRE(loop.run_until([&] { return result.has_value(); }, 5s));
    CHECK(result->reason == "cancelled");
    CHECK(result->attempts == 1);
    svc->cancel(id);  // again: nothing
    loop.run_for(100ms);
    CHECK(calls == 1);
    CHECK(svc->in_flight() == 0);
  }
  SUBCASE("while waiting to retry") {
    const std::string key = fresh_key("cancel-retry");
    FetchRequest req = get(sequence_url(server(), key, "503,200", "&retry_after=1"));
    req.max_attempts = 2;
    HttpServiceOptions o = fast_options();
    o.retry.max_delay = 5s;
    auto slow_retry = make_service(loop, o);
    int calls = 0;
    std::optional<FetchResult> result;
    uint64_t id = slow_retry->fetch(req, [&](FetchResult &&r) {
      ++calls;
      result = std::move(r);
    });
    loop.after(400ms, [&] { slow_retry->cancel(id); });
    REQUIRE(loop.run_until([&] { return result.has_value(); }, 5s));
    CHECK(result->reason == "cancelled");
    loop.run_for(1200ms);  // the retry timer would have fired by now
    CHECK(calls == 1);
    CHECK(hits(loop, server(), "/sequence", key) == 1);
  }
  SUBCASE("right after fetch(), before anything was sent") {
    int calls = 0;
    std::optional<FetchResult> result;
    uint64_t id = svc->fetch(get(server().url("/status/200")), [&](FetchResult &&r) {
      ++calls;
      result = std::move(r);
    });
    svc->cancel(id);
    REQUIRE(loop.run_until([&] { return result.has_value(); }));
    CHECK(result->reason == "cancelled");
    loop.run_for(100ms);
    CHECK(calls == 1);
  }
  SUBCASE("a completion already queued is delivered as cancelled") {
    const std::string key = fresh_key("cancel-queued");
    FetchRequest req = get(sequence_url(server(), key, "200"));
    req.cache_ttl = 60s;
    (void)run(loop, *svc, req);
    std::optional<FetchResult> result;
    uint64_t id = svc->fetch(req, [&](FetchResult &&r) { result = std::move(r); });
    svc->cancel(id);  // the cache hit is queued, not yet delivered
    REQUIRE(loop.run_until([&] { return result.has_value(); }));
    CHECK(result->reason == "cancelled");
  }
}

TEST_CASE("http service: destroying it with lookups in flight calls no callback") {
  TestLoop loop;
  int calls = 0;
  ScriptedAuthorizer auth;
  auth.mode = ScriptedAuthorizer::Mode::never;
  {
    HttpServiceOptions o = fast_options();
    o.retry.max_delay = 5s;
    auto svc = make_service(loop, o, &auth);
    auto count = [&](FetchResult &&) { ++calls; };
    svc->fetch(get(server().url("/slow?ms=1000")), count);  // a request in flight
    FetchRequest retrying =
        get(sequence_url(server(), fresh_key("destroy"), "503,200", "&retry_after=2"));
    retrying.max_attempts = 2;
    svc->fetch(retrying, count);  // waits to retry
    FetchRequest authorizing = get(server().url("/status/200"));
    authorizing.auth = "p1";
    svc->fetch(authorizing, count);  // waits for the authorizer
    loop.run_for(300ms);
    CHECK(svc->in_flight() == 3);
    svc->fetch(get("ftp://nowhere/"), count);  // completion queued, not delivered
  }
  // The authorizer answers after the service is gone: nothing happens.
  for (auto &done : auth.parked) done(Status{});
  loop.run_for(300ms);
  CHECK(calls == 0);
}

TEST_CASE("http service: a callback may destroy the service") {
  TestLoop loop;
  auto svc = make_service(loop);
  int calls = 0;
  svc->fetch(get("ftp://a/"), [&](FetchResult &&) {
    ++calls;
    svc.reset();
  });
  svc->fetch(get("ftp://b/"), [&](FetchResult &&) { ++calls; });
  loop.run_for(100ms);
  CHECK(calls == 1);
  CHECK(svc == nullptr);
}

TEST_CASE("http service: a callback may start and cancel lookups; a throw is dropped") {
  TestLoop loop;
  auto svc = make_service(loop);
  std::optional<FetchResult> second;
  uint64_t doomed = 0;
  svc->fetch(get("ftp://a/"), [&](FetchResult &&r) {
    CHECK(r.reason == "protocol");
    svc->fetch(get(server().url("/status/200")), [&](FetchResult &&r2) { second = std::move(r2); });
    svc->cancel(doomed);
    throw std::runtime_error("dropped");
  });
  std::optional<FetchResult> cancelled;
  doomed = svc->fetch(get(server().url("/slow?ms=2000")),
                      [&](FetchResult &&r) { cancelled = std::move(r); });
  REQUIRE(loop.run_until([&] { return second.has_value() && cancelled.has_value(); }, 5s));
  CHECK(second->response.status == 200);
  CHECK(cancelled->reason == "cancelled");
}

TEST_CASE("http service: completions never run inside fetch()") {
  TestLoop loop;
  HttpServiceOptions o = fast_options();
  o.breaker.failure_threshold = 1;
  o.breaker.cooldown = 60s;
  ScriptedAuthorizer auth;
  auto svc = make_service(loop, o, &auth);
  TestHttpServer own;
  // Open own's circuit first.
  CHECK(run(loop, *svc, get(own.url("/status/503"))).response.status == 503);
  // And cache an answer.
  FetchRequest cached = get(server().url("/sequence?key=" + fresh_key("inside") + "&codes=200"));
  cached.cache_ttl = 60s;
  (void)run(loop, *svc, cached);

  std::vector<std::pair<std::string, FetchRequest>> cases;
  cases.emplace_back("protocol", get("ftp://example.com/"));
  cases.emplace_back("", cached);
  FetchRequest zero = get(server().url("/status/200"));
  zero.budget = 0ms;
  cases.emplace_back("budget", zero);
  cases.emplace_back("circuit_open", get(own.url("/status/200")));
  FetchRequest unknown = get(server().url("/status/200"));
  unknown.auth = "nope";
  cases.emplace_back("auth", unknown);
  FetchRequest sync_ok = get(server().url("/status/200"));
  sync_ok.auth = "p1";
  cases.emplace_back("", sync_ok);

  for (auto &[reason, req] : cases) {
    CAPTURE(reason);
    FetchResult r = run(loop, *svc, req);  // run() checks the flag
    CHECK(r.reason == reason);
  }
  auth.mode = ScriptedAuthorizer::Mode::sync_fail;
  FetchRequest failing = get(server().url("/status/200"));
  failing.auth = "p1";
  FetchResult r = run(loop, *svc, failing);
  CHECK(r.reason == "auth");
  CHECK(r.error == "auth profile 'p1': secret 'x' not found");
  CHECK(r.attempts == 0);
}

TEST_CASE("http service: authorization comes after the cache key, per profile") {
  TestLoop loop;
  ScriptedAuthorizer auth;
  auto svc = make_service(loop, fast_options(), &auth);
  const std::string key = fresh_key("authkey");

  // A per-attempt signature (Authorization differs every time) still hits the cache: the
  // key was computed before the authorizer ran.
  auth.mode = ScriptedAuthorizer::Mode::sign;
  FetchRequest req = get(sequence_url(server(), key, "200"));
  req.auth = "p1";
  req.cache_ttl = 60s;
  CHECK_FALSE(run(loop, *svc, req).cached);
  CHECK(run(loop, *svc, req).cached);
  CHECK(auth.authorized == 1);

  // Another profile never shares the answer.
  req.auth = "p2";
  FetchResult other = run(loop, *svc, req);
  CHECK_FALSE(other.cached);
  CHECK(body_n(other) == 2);
  // And no profile at all neither.
  req.auth.clear();
  CHECK_FALSE(run(loop, *svc, req).cached);
  CHECK(hits(loop, server(), "/sequence", key) == 3);
}

TEST_CASE("http service: the authorizer's wait counts against the budget") {
  TestLoop loop;
  ScriptedAuthorizer auth;
  auth.mode = ScriptedAuthorizer::Mode::never;
  HttpServiceOptions o = fast_options();
  o.breaker.failure_threshold = 1;
  auto svc = make_service(loop, o, &auth);
  FetchRequest req = get(server().url("/status/200"));
  req.auth = "p1";
  req.budget = 200ms;
  FetchResult r = run(loop, *svc, req, 5s);
  CHECK(r.reason == "budget");
  CHECK(r.attempts == 0);
  // A late answer changes nothing, and the breaker learnt nothing bad about the host.
  for (auto &done : auth.parked) done(Status{});
  loop.run_for(50ms);
  auto snap = svc->breaker(*origin_of(server().url("/")));
  REQUIRE(snap.has_value());
  CHECK(snap->state == BreakerState::closed);
  CHECK(snap->consecutive_failures == 0);
}

TEST_CASE("http service: an authorizer that answers twice sends one request") {
  TestLoop loop;
  ScriptedAuthorizer auth;
  auth.mode = ScriptedAuthorizer::Mode::twice;
  auto svc = make_service(loop, fast_options(), &auth);
  const std::string key = fresh_key("twice");
  FetchRequest req = get(sequence_url(server(), key, "200"));
  req.auth = "p1";
  FetchResult r = run(loop, *svc, req);
  CHECK(r.response.status == 200);
  CHECK(r.attempts == 1);
  loop.run_for(100ms);
  CHECK(hits(loop, server(), "/sequence", key) == 1);
}

TEST_CASE("http service: a 401 with a profile that cannot refresh is returned as is") {
  TestLoop loop;
  ScriptedAuthorizer auth;
  auto svc = make_service(loop, fast_options(), &auth);
  FetchRequest req = get(server().url("/protected"));
  req.auth = "p1";
  req.max_attempts = 3;
  FetchResult r = run(loop, *svc, req);
  CHECK(r.reason == "");
  CHECK(r.response.status == 401);
  CHECK(r.attempts == 1);
  CHECK(auth.rejected == 1);
}
