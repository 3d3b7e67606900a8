// OAuth2 client credentials: the token request, the token response parser, and the manager's
// cache, expiry, coalescing, 401 invalidation and error handling over a fake fetcher (a unit
// test of the cache logic: the fake answers with canned HttpResponse values).
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "net/crypto.h"
#include "net/oauth2.h"

using namespace ivr::net;
using namespace std::chrono_literals;
using SteadyTime = std::chrono::steady_clock::time_point;

namespace {

const std::string kSecret = "cl1ent-S3cret+/=";

const std::string *find_header(const Headers &headers, std::string_view name) {
  for (const auto &[n, v] : headers) {
    if (n.size() != name.size()) continue;
    bool same = true;
    for (size_t i = 0; i < n.size(); ++i)
      same &= std::tolower(static_cast<unsigned char>(n[i])) ==
              std::tolower(static_cast<unsigned char>(name[i]));
    if (same) return &v;
  }
  return nullptr;
}

HttpResponse json_response(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.headers.emplace_back("Content-Type", "application/json");
  r.body = std::move(body);
  return r;
}

HttpResponse token_response(const std::string &token, int expires_in = 3600) {
  return json_response(200, R"({"access_token":")" + token +
                                R"(","token_type":"Bearer","expires_in":)" +
                                std::to_string(expires_in) + "}");
}

OAuth2Config base_config() {
  OAuth2Config c;
  c.token_url = "https://auth.example.com/oauth2/token";
  c.client_id = "ivr-client";
  c.client_secret_name = "oauth.client";
  c.scope = "calls:read calls:write";
  return c;
}

// A fetcher whose responses the test hands out: every request waits in `pending`.
struct FakeEndpoint {
  std::mutex mu;
  std::vector<HttpRequest> requests;
  std::vector<OAuth2TokenManager::ResponseCallback> pending;

  OAuth2TokenManager::Fetcher fetcher() {
    return [this](HttpRequest request, OAuth2TokenManager::ResponseCallback done) {
      std::lock_guard lock(mu);
      requests.push_back(std::move(request));
      pending.push_back(std::move(done));
    };
  }
  size_t pending_count() {
    std::lock_guard lock(mu);
    return pending.size();
  }
  // Answers the oldest pending request.
  void answer(HttpResponse response) {
    OAuth2TokenManager::ResponseCallback cb;
    {
      std::lock_guard lock(mu);
      REQUIRE_FALSE(pending.empty());
      cb = std::move(pending.front());
      pending.erase(pending.begin());
    }
    cb(std::move(response));
  }
};

struct FakeClock {
  SteadyTime now = SteadyTime(1000h);
  OAuth2TokenManager::Clock fn() {
    return [this] { return now; };
  }
};

struct Harness {
  FakeEndpoint endpoint;
  FakeClock clock;
  std::shared_ptr<MapSecretStore> secrets =
      std::make_shared<MapSecretStore>(MapSecretStore{{"oauth.client", kSecret}});
  std::unique_ptr<OAuth2TokenManager> manager;

  explicit Harness(OAuth2Config config = base_config()) {
    manager = std::make_unique<OAuth2TokenManager>(std::move(config), secrets, endpoint.fetcher(),
                                                   clock.fn());
  }

  // get_token, recording what it answered.
  struct Answer {
    bool called = false;
    ivr::Result<std::string> result = ivr::Error{ivr::Errc::internal, "not called"};
  };
  std::shared_ptr<Answer> ask() {
    auto a = std::make_shared<Answer>();
    manager->get_token([a](ivr::Result<std::string> r) {
      a->called = true;
      a->result = std::move(r);
    });
    return a;
  }
};

}  // namespace

// ---- the token request ----

TEST_CASE("oauth2: token request with HTTP basic client authentication") {
  OAuth2Config c = base_config();
  c.client_id = "client:id";
  c.audience = "https://api.example.com";
  c.extra_params = {{"resource", "urn:x y"}};
  c.timeout_ms = 3000;
  auto r = build_token_request(c, "sec ret+");
  REQUIRE(r.ok());
  CHECK(r->method == "POST");
  CHECK(r->url == c.token_url);
  CHECK(r->timeout_ms == 3000);
  CHECK(*find_header(r->headers, "Content-Type") == "application/x-www-form-urlencoded");
  CHECK(*find_header(r->headers, "Accept") == "application/json");
  CHECK(r->body ==
        "grant_type=client_credentials&scope=calls%3Aread+calls%3Awrite"
        "&audience=https%3A%2F%2Fapi.example.com&resource=urn%3Ax+y");
  // RFC 6749 2.3.1: id and secret form-urlencoded, then Basic.
  CHECK(*find_header(r->headers, "Authorization") ==
        "Basic " + base64_encode("client%3Aid:sec+ret%2B"));
}

TEST_CASE("oauth2: token request with credentials in the body") {
  OAuth2Config c = base_config();
  c.client_auth = OAuth2ClientAuth::body;
  c.scope.clear();
  auto r = build_token_request(c, "s&t");
  REQUIRE(r.ok());
  CHECK(find_header(r->headers, "Authorization") == nullptr);
  CHECK(r->body == "grant_type=client_credentials&client_id=ivr-client&client_secret=s%26t");
}

TEST_CASE("oauth2: token request configuration errors name the field") {
  auto err = [](OAuth2Config c) {
    auto r = build_token_request(c, kSecret);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find(kSecret) == std::string::npos);
    return r.error().message;
  };
  OAuth2Config c = base_config();
  c.token_url = "auth.example.com/token";
  CHECK(err(c).rfind("oauth2.token_url: ", 0) == 0);
  c = base_config();
  c.client_id.clear();
  CHECK(err(c) == "oauth2.client_id: empty");
  c = base_config();
  c.extra_params = {{"grant_type", "password"}};
  CHECK(err(c) == "oauth2.extra_params: 'grant_type' may not be set here");
}

// ---- the token response ----

TEST_CASE("oauth2: token response parsing") {
  auto ok = parse_token_response(json_response(
      200, R"({"access_token":"abc.def","token_type":"Bearer","expires_in":3600,"scope":"a b"})"));
  REQUIRE(ok.ok());
  CHECK(ok->access_token == "abc.def");
  CHECK(ok->token_type == "Bearer");
  CHECK(ok->expires_in == 3600s);
  CHECK(ok->expires_in_given);
  CHECK(ok->scope == "a b");

  auto str = parse_token_response(
      json_response(200, R"({"access_token":"t","token_type":"bearer","expires_in":"599"})"));
  REQUIRE(str.ok());
  CHECK(str->expires_in == 599s);

  auto none =
      parse_token_response(json_response(200, R"({"access_token":"t","token_type":"Bearer"})"));
  REQUIRE(none.ok());
  CHECK_FALSE(none->expires_in_given);

  auto huge = parse_token_response(
      json_response(200, R"({"access_token":"t","token_type":"Bearer","expires_in":99999999})"));
  REQUIRE(huge.ok());
  CHECK(huge->expires_in == 86400s);
}

TEST_CASE("oauth2: token response errors name the field and never quote the token") {
  const std::string token = "TOPSECRET-ACCESS-TOKEN";
  auto err = [&](HttpResponse r, ivr::Errc code = ivr::Errc::parse) {
    auto t = parse_token_response(r);
    REQUIRE_FALSE(t.ok());
    CHECK(t.error().code == code);
    CHECK(t.error().message.find(token) == std::string::npos);
    return t.error().message;
  };
  CHECK(err(json_response(200, R"({"token_type":"Bearer"})")) ==
        "oauth2 token response: access_token: missing");
  CHECK(err(json_response(200, R"({"access_token":5,"token_type":"Bearer"})")) ==
        "oauth2 token response: access_token: expected a string, found number");
  CHECK(err(json_response(200, R"({"access_token":"","token_type":"Bearer"})")) ==
        "oauth2 token response: access_token: empty");
  CHECK(err(json_response(200, R"({"access_token":"a b )" + token + R"(","token_type":"Bearer"})"))
            .find("access_token: contains a space") != std::string::npos);
  CHECK(err(json_response(200, R"({"access_token":")" + token + R"("})")) ==
        "oauth2 token response: token_type: missing");
  CHECK(err(json_response(200, R"({"access_token":")" + token + R"(","token_type":null})")) ==
        "oauth2 token response: token_type: expected a string, found null");
  CHECK(err(json_response(200, R"({"access_token":")" + token + R"(","token_type":"mac"})"),
            ivr::Errc::unsupported) ==
        "oauth2 token response: token_type: 'mac' is not supported (only Bearer)");
  for (std::string bad : {"-1", "0", "1.5", "\"soon\"", "\"\"", "null", "1e3"}) {
    CAPTURE(bad);
    CHECK(err(json_response(200, R"({"access_token":")" + token +
                                     R"(","token_type":"Bearer","expires_in":)" + bad + "}")) ==
          "oauth2 token response: expires_in: expected a positive whole number of seconds");
  }
  CHECK(err(json_response(200, "<html>")).rfind("oauth2 token response: not JSON: ", 0) == 0);
  CHECK(err(json_response(200, "[1]")) == "oauth2 token response: expected an object, found array");

  // RFC 6749 section 5.2 errors, on a 4xx or (some servers) on a 200.
  CHECK(err(json_response(
                401,
                R"({"error":"invalid_client","error_description":"Client authentication failed"})"),
            ivr::Errc::invalid_argument) ==
        "oauth2 token endpoint answered 401: invalid_client (Client authentication failed)");
  CHECK(err(json_response(400, R"({"error":"invalid_scope"})"), ivr::Errc::invalid_argument) ==
        "oauth2 token endpoint answered 400: invalid_scope");
  CHECK(
      err(json_response(200, R"({"error":"unauthorized_client"})"), ivr::Errc::invalid_argument) ==
      "oauth2 token endpoint answered 200 with error unauthorized_client");
  CHECK(err(json_response(503, "Service Unavailable"), ivr::Errc::io) ==
        "oauth2 token endpoint answered 503");
  CHECK(err(json_response(400, R"({"error":"x\u0001y","error_description":")" +
                                   std::string(300, 'd') + "\"}"),
            ivr::Errc::invalid_argument)
            .size() < 300);

  HttpResponse timeout;
  timeout.error = HttpErrc::timeout;
  timeout.error_text = "Operation timed out after 5000 milliseconds";
  CHECK(err(timeout, ivr::Errc::io) ==
        "oauth2 token request failed: timeout: Operation timed out after 5000 milliseconds");
}

// ---- the manager ----

TEST_CASE("oauth2 manager: fetches once, serves from the cache, refreshes before expiry") {
  Harness h;
  auto first = h.ask();
  CHECK_FALSE(first->called);  // waits for the fetch
  REQUIRE(h.endpoint.pending_count() == 1);
  CHECK(h.endpoint.requests[0].body.find("grant_type=client_credentials") == 0);
  h.endpoint.answer(token_response("T1", 3600));
  REQUIRE(first->called);
  REQUIRE(first->result.ok());
  CHECK(first->result.value() == "T1");

  // Cached: answered before get_token returns, no new request.
  h.clock.now += 3539s;  // 3600 - 60 (margin) - 1
  auto cached = h.ask();
  REQUIRE(cached->called);
  CHECK(cached->result.value() == "T1");
  CHECK(h.endpoint.pending_count() == 0);

  // At expiry minus the margin the next caller fetches anew.
  h.clock.now += 1s;
  auto refresh = h.ask();
  CHECK_FALSE(refresh->called);
  REQUIRE(h.endpoint.pending_count() == 1);
  h.endpoint.answer(token_response("T2", 3600));
  CHECK(refresh->result.value() == "T2");

  auto s = h.manager->stats();
  CHECK(s.fetches == 2);
  CHECK(s.cache_hits == 1);
  CHECK(s.coalesced == 0);
  CHECK(s.failures == 0);
}

TEST_CASE("oauth2 manager: lifetime counts from when the request left; short lifetimes") {
  SUBCASE("slow token endpoint") {
    Harness h;
    auto a = h.ask();
    h.clock.now += 30s;  // the answer takes 30 s
    h.endpoint.answer(token_response("T1", 3600));
    h.clock.now += 3600s - 60s - 30s - 1s;
    CHECK(h.ask()->called);
    h.clock.now += 1s;
    CHECK_FALSE(h.ask()->called);
  }
  SUBCASE("a lifetime shorter than twice the margin refreshes at half-life") {
    Harness h;
    h.ask();
    h.endpoint.answer(token_response("T1", 10));
    h.clock.now += 4s;
    CHECK(h.ask()->called);
    h.clock.now += 1s;
    CHECK_FALSE(h.ask()->called);
  }
  SUBCASE("no expires_in: default_lifetime") {
    OAuth2Config c = base_config();
    c.default_lifetime = 120s;
    c.refresh_margin = 20s;
    Harness h(c);
    h.ask();
    h.endpoint.answer(json_response(200, R"({"access_token":"T1","token_type":"Bearer"})"));
    h.clock.now += 99s;
    CHECK(h.ask()->called);
    h.clock.now += 1s;
    CHECK_FALSE(h.ask()->called);
  }
}

TEST_CASE("oauth2 manager: callers queue behind one fetch in flight") {
  Harness h;
  std::vector<std::shared_ptr<Harness::Answer>> answers;
  for (int i = 0; i < 5; ++i) answers.push_back(h.ask());
  CHECK(h.endpoint.pending_count() == 1);
  for (auto &a : answers) CHECK_FALSE(a->called);
  h.endpoint.answer(token_response("T1"));
  for (auto &a : answers) {
    REQUIRE(a->called);
    CHECK(a->result.value() == "T1");
  }
  CHECK(h.manager->stats().fetches == 1);
  CHECK(h.manager->stats().coalesced == 4);
}

TEST_CASE("oauth2 manager: a failed fetch fails every waiter, is not cached, and leaks nothing") {
  Harness h;
  auto a = h.ask();
  auto b = h.ask();
  // A hostile or buggy server echoing the credentials back.
  std::string echoed_basic = base64_encode("ivr-client:" + form_urlencode(kSecret));
  h.endpoint.answer(
      json_response(401, R"({"error":"invalid_client","error_description":"bad secret )" + kSecret +
                             " / " + form_urlencode(kSecret) + " / " + echoed_basic + R"("})"));
  for (auto &x : {a, b}) {
    REQUIRE(x->called);
    REQUIRE_FALSE(x->result.ok());
    const std::string &msg = x->result.error().message;
    CAPTURE(msg);
    CHECK(msg.rfind("oauth2 (auth.example.com): oauth2 token endpoint answered 401: "
                    "invalid_client (bad secret [redacted]",
                    0) == 0);
    CHECK(msg.find(kSecret) == std::string::npos);
    CHECK(msg.find(form_urlencode(kSecret)) == std::string::npos);
    CHECK(msg.find(echoed_basic) == std::string::npos);
    CHECK(x->result.error().code == ivr::Errc::invalid_argument);
  }
  CHECK(h.manager->stats().failures == 1);

  // The next call fetches again.
  auto c = h.ask();
  CHECK_FALSE(c->called);
  REQUIRE(h.endpoint.pending_count() == 1);
  h.endpoint.answer(token_response("T1"));
  CHECK(c->result.value() == "T1");

  // Transport errors too.
  h.manager->invalidate();
  auto d = h.ask();
  HttpResponse refused;
  refused.error = HttpErrc::connect;
  refused.error_text = "Connection refused";
  h.endpoint.answer(refused);
  REQUIRE_FALSE(d->result.ok());
  CHECK(d->result.error().code == ivr::Errc::io);
  CHECK(d->result.error().message ==
        "oauth2 (auth.example.com): oauth2 token request failed: connect: Connection refused");
}

TEST_CASE("oauth2 manager: invalidation after a 401") {
  Harness h;
  h.ask();
  h.endpoint.answer(token_response("T1"));
  CHECK(h.ask()->called);

  // A request with T1 got 401: the next call fetches anew.
  h.manager->invalidate("T1");
  auto a = h.ask();
  CHECK_FALSE(a->called);
  h.endpoint.answer(token_response("T2"));
  CHECK(a->result.value() == "T2");

  // A late 401 for T1 does not throw away T2.
  h.manager->invalidate("T1");
  auto b = h.ask();
  REQUIRE(b->called);
  CHECK(b->result.value() == "T2");
  CHECK(h.endpoint.pending_count() == 0);

  // Invalidation while a fetch is in flight: the fetched token is still the new one.
  h.manager->invalidate();
  auto c = h.ask();
  h.manager->invalidate("T2");
  h.endpoint.answer(token_response("T3"));
  CHECK(c->result.value() == "T3");
  CHECK(h.ask()->result.value() == "T3");
}

TEST_CASE("oauth2 manager: secret problems, a synchronous fetcher, re-entrant callbacks") {
  SUBCASE("missing secret") {
    Harness h;
    h.secrets->set("oauth.client", "");
    auto a = h.ask();
    REQUIRE(a->called);
    REQUIRE_FALSE(a->result.ok());
    CHECK(a->result.error().message ==
          "oauth2 (auth.example.com): oauth2.client_secret_name: secret 'oauth.client' is empty "
          "(the secret map)");
    CHECK(h.endpoint.pending_count() == 0);
    CHECK(h.manager->stats().fetches == 0);
    // Fixed secret: the next call fetches (secrets are read at each fetch).
    h.secrets->set("oauth.client", kSecret);
    auto b = h.ask();
    CHECK(h.endpoint.pending_count() == 1);
    h.endpoint.answer(token_response("T1"));
    CHECK(b->result.value() == "T1");
  }
  SUBCASE("a fetcher that answers before returning, and a callback that asks again") {
    int fetches = 0;
    FakeClock clock;
    OAuth2TokenManager m(
        base_config(), std::make_shared<MapSecretStore>(MapSecretStore{{"oauth.client", kSecret}}),
        [&](HttpRequest, OAuth2TokenManager::ResponseCallback done) {
          ++fetches;
          done(token_response("T" + std::to_string(fetches)));
        },
        clock.fn());
    std::string inner;
    std::string outer;
    m.get_token([&](ivr::Result<std::string> t) {
      outer = t.value();
      m.invalidate(t.value());
      m.get_token([&](ivr::Result<std::string> t2) { inner = t2.value(); });
    });
    CHECK(outer == "T1");
    CHECK(inner == "T2");
    CHECK(fetches == 2);
  }
  SUBCASE("a fetcher that calls back twice, or throws") {
    Harness h;
    auto a = h.ask();
    OAuth2TokenManager::ResponseCallback cb;
    {
      std::lock_guard lock(h.endpoint.mu);
      cb = h.endpoint.pending.front();
    }
    h.endpoint.answer(token_response("T1"));
    h.manager->invalidate();
    auto b = h.ask();             // a new fetch in flight
    cb(token_response("STALE"));  // the first fetch's callback again: ignored
    CHECK_FALSE(b->called);
    h.endpoint.answer(token_response("T2"));
    CHECK(b->result.value() == "T2");

    OAuth2TokenManager throwing(base_config(), h.secrets,
                                [](HttpRequest, OAuth2TokenManager::ResponseCallback) {
                                  throw std::runtime_error("boom");
                                });
    ivr::Result<std::string> r = std::string();
    throwing.get_token([&](ivr::Result<std::string> t) { r = std::move(t); });
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message == "oauth2 (auth.example.com): the fetcher threw: boom");
  }
  SUBCASE("destroyed while a fetch is in flight: the late answer is dropped") {
    Harness h;
    auto a = h.ask();
    h.manager.reset();
    h.endpoint.answer(token_response("T1"));
    CHECK_FALSE(a->called);
  }
}

TEST_CASE("oauth2 manager: authorize() sets the bearer header; describe() names no secret") {
  Harness h;
  HttpRequest req;
  req.url = "https://api.example.com/v1/calls";
  ivr::Result<HttpRequest> out = ivr::Error{ivr::Errc::internal, "not called"};
  h.manager->authorize(req, [&](ivr::Result<HttpRequest> r) { out = std::move(r); });
  h.endpoint.answer(token_response("T1"));
  REQUIRE(out.ok());
  CHECK(*find_header(out->headers, "Authorization") == "Bearer T1");
  CHECK(out->url == req.url);

  std::string d = h.manager->describe();
  CHECK(d ==
        "oauth2 client credentials (token url https://auth.example.com/oauth2/token, client id "
        "ivr-client, secret 'oauth.client', client auth basic, scope calls:read calls:write)");
  CHECK(d.find(kSecret) == std::string::npos);
}

TEST_CASE("oauth2 manager: concurrent callers on several threads share one fetch") {
  Harness h;
  constexpr int kThreads = 8;
  std::atomic<int> answered{0};
  std::mutex mu;
  std::vector<std::string> tokens;
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i)
    threads.emplace_back([&] {
      h.manager->get_token([&](ivr::Result<std::string> t) {
        std::lock_guard lock(mu);
        tokens.push_back(t.ok() ? t.value() : t.error().message);
        answered.fetch_add(1);
      });
    });
  // Every caller has queued (or fetched) once the threads have finished get_token.
  for (auto &t : threads) t.join();
  CHECK(answered.load() == 0);
  REQUIRE(h.endpoint.pending_count() == 1);
  std::thread responder([&] { h.endpoint.answer(token_response("T1")); });
  responder.join();
  CHECK(answered.load() == kThreads);
  for (const auto &t : tokens) CHECK(t == "T1");
  CHECK(h.manager->stats().fetches == 1);
  CHECK(h.manager->stats().coalesced == kThreads - 1);
}
