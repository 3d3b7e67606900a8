// HttpClient against a real server (tests/net/http_test_server.py) on 127.0.0.1, driven by
// a real event_base. Every loop run is bounded by a safety timer.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/json.h"
#include "net/http_client.h"
#include "test_server.h"

using namespace ivr::net;
using ivr::test::TestHttpServer;
using namespace std::chrono_literals;

namespace {

// One event_base per test.
class Loop {
 public:
  Loop() : base_(event_base_new()) { REQUIRE(base_ != nullptr); }
  ~Loop() { event_base_free(base_); }
  Loop(const Loop &) = delete;
  Loop &operator=(const Loop &) = delete;
  event_base *base() const { return base_; }

  // Runs the loop until done() holds or `limit` passes (the safety net); returns done().
  bool run_until(const std::function<bool()> &done, std::chrono::milliseconds limit = 20s) {
    bool expired = false;
    event *guard = evtimer_new(base_, &Loop::on_expire, &expired);
    const timeval tv{static_cast<time_t>(limit.count() / 1000),
                     static_cast<suseconds_t>(limit.count() % 1000 * 1000)};
    evtimer_add(guard, &tv);
    while (!done() && !expired) event_base_loop(base_, EVLOOP_ONCE);
    event_free(guard);
    return done();
  }
  // Runs the loop for a while (to show nothing else happens).
  void run_for(std::chrono::milliseconds span) {
    run_until([] { return false; }, span);
  }

  // Calls fn once after `delay`, from the loop.
  void after(std::chrono::milliseconds delay, std::function<void()> fn) {
    auto *owned = new std::function<void()>(std::move(fn));
    const timeval tv{static_cast<time_t>(delay.count() / 1000),
                     static_cast<suseconds_t>(delay.count() % 1000 * 1000)};
    event_base_once(
        base_, -1, EV_TIMEOUT,
        [](evutil_socket_t, short, void *arg) {
          std::unique_ptr<std::function<void()>> f(static_cast<std::function<void()> *>(arg));
          (*f)();
        },
        owned, &tv);
  }

 private:
  static void on_expire(evutil_socket_t, short, void *arg) { *static_cast<bool *>(arg) = true; }
  event_base *base_;
};

// Starts one request and runs the loop until it completes.
HttpResponse fetch(Loop &loop, HttpClient &client, HttpRequest request) {
  std::optional<HttpResponse> result;
  client.start(std::move(request), [&](HttpResponse &&r) { result = std::move(r); });
  REQUIRE(loop.run_until([&] { return result.has_value(); }));
  return std::move(*result);
}

HttpResponse fetch(Loop &loop, HttpClient &client, const std::string &url) {
  HttpRequest request;
  request.url = url;
  return fetch(loop, client, std::move(request));
}

// The plain-HTTP + HTTPS server most tests share (started on first use).
TestHttpServer &server() {
  static TestHttpServer shared({.tls = true, .mtls = true});
  return shared;
}

ivr::json::Document parse_json(const std::string &text) {
  auto doc = ivr::json::parse(text);
  REQUIRE_MESSAGE(doc.ok(), text);
  return std::move(doc.value());
}

std::string json_string(const ivr::json::Value &object, std::string_view key) {
  const ivr::json::Value *v = object.find(key);
  REQUIRE(v != nullptr);
  REQUIRE(v->is(ivr::json::Kind::string));
  return v->string;
}

// The value of request header `name` as the server saw it in /echo, or "" if absent.
std::string echoed_header(const ivr::json::Value &echo, std::string_view name) {
  const ivr::json::Value *headers = echo.find("headers");
  REQUIRE(headers != nullptr);
  for (const auto &pair : headers->items)
    if (pair.items.size() == 2 && pair.items[0].string == name) return pair.items[1].string;
  return "";
}

}  // namespace

TEST_CASE("http: GET with headers through /echo") {
  Loop loop;
  HttpClient client(loop.base());
  HttpRequest req;
  req.url = server().url("/echo?a=1&b=two");
  req.headers = {{"X-Test", "yes"}, {"Accept", "application/json"}};
  HttpResponse r = fetch(loop, client, req);
  CHECK(r.error == HttpErrc::none);
  CHECK(r.error_text.empty());
  CHECK(r.status == 200);
  CHECK(r.http_version == 11);
  CHECK(r.effective_url == req.url);
  CHECK(r.elapsed_ms > 0);
  REQUIRE(r.header("content-type") != nullptr);  // case-insensitive
  CHECK(*r.header("Content-Type") == "application/json");
  CHECK(r.header("X-Not-There") == nullptr);

  const auto doc = parse_json(r.body);
  CHECK(json_string(doc.root(), "method") == "GET");
  CHECK(json_string(doc.root(), "path") == "/echo");
  CHECK(json_string(doc.root(), "query") == "a=1&b=two");
  CHECK(json_string(doc.root(), "body").empty());
  CHECK(echoed_header(doc.root(), "X-Test") == "yes");
  CHECK(echoed_header(doc.root(), "Accept") == "application/json");
  CHECK(echoed_header(doc.root(), "User-Agent") == "libivr");
  CHECK(echoed_header(doc.root(), "Expect").empty());
}

TEST_CASE("http: POST, PUT, DELETE and HEAD") {
  Loop loop;
  HttpClientOptions options;
  options.user_agent = "ivr-test-agent";
  HttpClient client(loop.base(), options);

  SUBCASE("POST with a JSON body") {
    HttpRequest req;
    req.method = "POST";
    req.url = server().url("/echo");
    req.headers = {{"Content-Type", "application/json"}};
    req.body = R"({"caller":"+15551234"})";
    HttpResponse r = fetch(loop, client, req);
    REQUIRE(r.error == HttpErrc::none);
    const auto doc = parse_json(r.body);
    CHECK(json_string(doc.root(), "method") == "POST");
    CHECK(json_string(doc.root(), "body") == req.body);
    CHECK(echoed_header(doc.root(), "Content-Type") == "application/json");
    CHECK(echoed_header(doc.root(), "Content-Length") == std::to_string(req.body.size()));
    CHECK(echoed_header(doc.root(), "User-Agent") == "ivr-test-agent");
  }
  SUBCASE("a large POST body is sent without waiting for 100-continue") {
    HttpRequest req;
    req.method = "POST";
    req.url = server().url("/echo");
    req.body = std::string(2 << 20, 'b');
    req.max_response_bytes = 4 << 20;
    HttpResponse r = fetch(loop, client, req);
    REQUIRE(r.error == HttpErrc::none);
    const auto doc = parse_json(r.body);
    CHECK(json_string(doc.root(), "body").size() == req.body.size());
    CHECK(echoed_header(doc.root(), "Expect").empty());
  }
  SUBCASE("PUT with a body, DELETE without") {
    HttpRequest put;
    put.method = "PUT";
    put.url = server().url("/echo");
    put.body = "payload";
    HttpResponse r = fetch(loop, client, put);
    REQUIRE(r.error == HttpErrc::none);
    auto doc = parse_json(r.body);
    CHECK(json_string(doc.root(), "method") == "PUT");
    CHECK(json_string(doc.root(), "body") == "payload");

    HttpRequest del;
    del.method = "DELETE";
    del.url = server().url("/echo");
    r = fetch(loop, client, del);
    REQUIRE(r.error == HttpErrc::none);
    doc = parse_json(r.body);
    CHECK(json_string(doc.root(), "method") == "DELETE");
  }
  SUBCASE("HEAD has headers and no body") {
    HttpRequest head;
    head.method = "HEAD";
    head.url = server().url("/huge?bytes=1000");
    HttpResponse r = fetch(loop, client, head);
    REQUIRE(r.error == HttpErrc::none);
    CHECK(r.status == 200);
    CHECK(r.body.empty());
    REQUIRE(r.header("Content-Length") != nullptr);
    CHECK(*r.header("Content-Length") == "1000");
  }
}

TEST_CASE("http: error statuses are responses, not errors") {
  Loop loop;
  HttpClient client(loop.base());
  for (int code : {200, 201, 204, 404, 500, 503}) {
    CAPTURE(code);
    HttpResponse r = fetch(loop, client, server().url("/status/" + std::to_string(code)));
    CHECK(r.error == HttpErrc::none);
    CHECK(r.status == code);
    if (code != 204) CHECK(r.body == "status " + std::to_string(code) + "\n");
  }
}

TEST_CASE("http: response headers keep repeats and order") {
  Loop loop;
  HttpClient client(loop.base());
  HttpResponse r = fetch(loop, client, server().url("/headers?X-A=1&X-B=two&X-A=3"));
  REQUIRE(r.error == HttpErrc::none);
  std::vector<std::string> a_values;
  for (const auto &[name, value] : r.headers)
    if (name == "X-A") a_values.push_back(value);
  CHECK(a_values == std::vector<std::string>{"1", "3"});
  REQUIRE(r.header("x-b") != nullptr);
  CHECK(*r.header("x-b") == "two");
}

TEST_CASE("http: timeout, and the loop keeps running meanwhile") {
  Loop loop;
  HttpClient client(loop.base());
  std::vector<std::string> order;
  std::optional<HttpResponse> result;
  HttpRequest req;
  req.url = server().url("/slow?ms=3000");
  req.timeout_ms = 400;
  client.start(req, [&](HttpResponse &&r) {
    order.push_back("response");
    result = std::move(r);
  });
  loop.after(20ms, [&] {
    order.push_back("timer");
    CHECK(client.in_flight() == 1);
  });
  REQUIRE(loop.run_until([&] { return result.has_value(); }));
  CHECK(order == std::vector<std::string>{"timer", "response"});
  CHECK(result->error == HttpErrc::timeout);
  CHECK(result->status == 0);
  CHECK(!result->error_text.empty());
  CHECK(client.in_flight() == 0);
}

TEST_CASE("http: a body that stops arriving times out; a slow but steady one completes") {
  Loop loop;
  HttpClient client(loop.base());
  HttpRequest req;
  req.url = server().url("/drip?chunks=5&size=3&ms=30");
  HttpResponse r = fetch(loop, client, req);
  CHECK(r.error == HttpErrc::none);
  CHECK(r.body == std::string(15, 'd'));

  req.url = server().url("/drip?chunks=10&size=1&ms=200");
  req.timeout_ms = 300;  // headers arrive at once, the body would take 2 s
  r = fetch(loop, client, req);
  CHECK(r.error == HttpErrc::timeout);
  CHECK(r.body.empty());
}

TEST_CASE("http: connection refused") {
  // A socket bound but not listening refuses connections, and keeps the port ours.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(getsockname(fd, reinterpret_cast<sockaddr *>(&addr), &len) == 0);

  Loop loop;
  HttpClient client(loop.base());
  HttpResponse r =
      fetch(loop, client, "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/");
  close(fd);
  CHECK(r.error == HttpErrc::connect);
  CHECK(r.status == 0);
  CHECK(!r.error_text.empty());
}

TEST_CASE("http: broken servers are protocol errors") {
  Loop loop;
  HttpClient client(loop.base());
  SUBCASE("garbage instead of a status line") {
    // curl 7.88 reports it as HTTP/0.9, which it refuses (CURLE_UNSUPPORTED_PROTOCOL).
    HttpResponse r = fetch(loop, client, server().url("/malformed"));
    CHECK(r.error == HttpErrc::protocol);
    CHECK(r.status == 0);
    CHECK(!r.error_text.empty());
  }
  SUBCASE("connection closed without an answer") {
    // curl: CURLE_GOT_NOTHING ("Empty reply from server").
    HttpResponse r = fetch(loop, client, server().url("/close"));
    CHECK(r.error == HttpErrc::protocol);
    CHECK(r.error_text.find("Empty reply") != std::string::npos);
  }
}

TEST_CASE("http: response size cap") {
  Loop loop;
  HttpClient client(loop.base());
  HttpRequest req;
  req.max_response_bytes = 100000;
  for (const char *chunked : {"0", "1"}) {
    CAPTURE(chunked);
    req.url = server().url("/huge?bytes=100001&chunked=" + std::string(chunked));
    HttpResponse r = fetch(loop, client, req);
    CHECK(r.error == HttpErrc::too_large);
    CHECK(r.status == 0);
    CHECK(r.body.empty());
    CHECK(r.error_text.find("max_response_bytes") != std::string::npos);

    req.url = server().url("/huge?bytes=100000&chunked=" + std::string(chunked));
    r = fetch(loop, client, req);
    CHECK(r.error == HttpErrc::none);
    CHECK(r.body == std::string(100000, 'x'));
  }
  req.url = server().url("/many-headers?count=300&size=1000");  // 300 KB of headers
  HttpResponse many = fetch(loop, client, req);
  CHECK(many.error == HttpErrc::too_large);
  req.url = server().url("/many-headers?count=100&size=1000");
  many = fetch(loop, client, req);
  CHECK(many.error == HttpErrc::none);
  CHECK(many.headers.size() >= 100);

  req.url = server().url("/huge?bytes=3000000");
  req.max_response_bytes = 4 << 20;
  HttpResponse r = fetch(loop, client, req);
  CHECK(r.error == HttpErrc::none);
  CHECK(r.body.size() == 3000000);
}

TEST_CASE("http: redirects") {
  Loop loop;
  HttpClient client(loop.base());
  HttpRequest req;
  req.url = server().url("/redirect?to=/headers%3FX-Final%3D1&code=302");

  SUBCASE("followed: the final response only") {
    req.follow_redirects = true;
    HttpResponse r = fetch(loop, client, req);
    CHECK(r.error == HttpErrc::none);
    CHECK(r.status == 200);
    CHECK(r.effective_url == server().url("/headers?X-Final=1"));
    CHECK(r.header("X-Final") != nullptr);
    CHECK(r.header("X-Redirect") == nullptr);
    CHECK(r.header("Location") == nullptr);
    CHECK(r.body == "headers");
  }
  SUBCASE("not followed: the 3xx is the response") {
    HttpResponse r = fetch(loop, client, req);
    CHECK(r.error == HttpErrc::none);
    CHECK(r.status == 302);
    REQUIRE(r.header("Location") != nullptr);
    CHECK(*r.header("Location") == "/headers?X-Final=1");
    CHECK(r.effective_url == req.url);
  }
  SUBCASE("a loop is a protocol error") {
    req.url = server().url("/redirect-loop");
    req.follow_redirects = true;
    req.max_redirects = 3;
    HttpResponse r = fetch(loop, client, req);
    CHECK(r.error == HttpErrc::protocol);
    CHECK(r.error_text.find("redirect") != std::string::npos);
  }
  SUBCASE("a redirect to another scheme is refused") {
    req.url = server().url("/redirect?to=ftp://127.0.0.1/file");
    req.follow_redirects = true;
    HttpResponse r = fetch(loop, client, req);
    CHECK(r.error == HttpErrc::protocol);
  }
}

TEST_CASE("http: requests that cannot start complete later with protocol") {
  Loop loop;
  HttpClient client(loop.base());
  struct Case {
    HttpRequest request;
    std::string field;
  };
  std::vector<Case> cases;
  auto add = [&](std::string url, std::string method, Headers headers, std::string field) {
    HttpRequest r;
    r.url = std::move(url);
    r.method = std::move(method);
    r.headers = std::move(headers);
    cases.push_back({std::move(r), std::move(field)});
  };
  add("", "GET", {}, "url");
  add("not a url", "GET", {}, "url");
  add("ftp://127.0.0.1/file", "GET", {}, "url: scheme 'ftp'");
  add("file:///etc/passwd", "GET", {}, "url: scheme 'file'");
  add(server().url("/echo"), "GET /x", {}, "method");
  add(server().url("/echo"), "", {}, "method");
  add(server().url("/echo"), "GET", {{"X-Ok", "1"}, {"Bad Name", "v"}}, "headers[1]");
  add(server().url("/echo"), "GET", {{"X-Inject", "a\r\nHost: evil"}}, "headers[0]");

  for (auto &c : cases) {
    CAPTURE(c.field);
    std::optional<HttpResponse> result;
    int calls = 0;
    client.start(c.request, [&](HttpResponse &&r) {
      ++calls;
      result = std::move(r);
    });
    CHECK(calls == 0);  // never from inside start()
    CHECK(client.in_flight() == 1);
    REQUIRE(loop.run_until([&] { return result.has_value(); }));
    CHECK(calls == 1);
    CHECK(result->error == HttpErrc::protocol);
    CHECK(result->error_text.rfind(c.field, 0) == 0);
  }
}

TEST_CASE("http: a callback that keeps restarting a failing request does not starve the loop") {
  Loop loop;
  HttpClient client(loop.base());
  bool timer_fired = false;
  int attempts = 0;
  std::function<void()> again = [&] {
    HttpRequest bad;
    bad.url = "ftp://127.0.0.1/";  // fails without touching the network
    client.start(bad, [&](HttpResponse &&) {
      ++attempts;
      if (!timer_fired) again();
    });
  };
  again();
  loop.after(10ms, [&] { timer_fired = true; });
  REQUIRE(loop.run_until([&] { return timer_fired && client.in_flight() == 0; }));
  CHECK(attempts > 1);
}

TEST_CASE("http: 60 concurrent requests all complete") {
  Loop loop;
  HttpClient client(loop.base());
  constexpr int kRequests = 60;
  std::vector<std::optional<HttpResponse>> results(kRequests);
  std::set<uint64_t> ids;
  int completed = 0;
  for (int i = 0; i < kRequests; ++i) {
    HttpRequest req;
    req.url = server().url("/slow?ms=50&i=" + std::to_string(i));
    if (i % 2) req.url = server().url("/echo?i=" + std::to_string(i));
    req.timeout_ms = 15000;
    ids.insert(client.start(req, [&, i](HttpResponse &&r) {
      results[i] = std::move(r);
      ++completed;
    }));
  }
  CHECK(ids.size() == kRequests);
  CHECK(client.in_flight() == kRequests);
  REQUIRE(loop.run_until([&] { return completed == kRequests; }, 60s));
  for (int i = 0; i < kRequests; ++i) {
    CAPTURE(i);
    CHECK(results[i]->error == HttpErrc::none);
    CHECK(results[i]->status == 200);
    if (i % 2) {
      const auto doc = parse_json(results[i]->body);
      CHECK(json_string(doc.root(), "query") == "i=" + std::to_string(i));
    } else {
      CHECK(results[i]->body == "slow");
    }
  }
  CHECK(client.in_flight() == 0);
}

TEST_CASE("http: sequential requests reuse one connection; callbacks may start requests") {
  Loop loop;
  HttpClient client(loop.base());
  std::vector<std::string> ports;
  std::vector<HttpErrc> errors;
  std::function<void()> next = [&] {
    HttpRequest req;
    req.url = server().url("/count");
    client.start(req, [&](HttpResponse &&r) {
      errors.push_back(r.error);
      const std::string *port = r.header("X-Client-Port");
      ports.push_back(port ? *port : "");
      if (ports.size() < 5) next();  // from inside the callback
    });
  };
  next();
  REQUIRE(loop.run_until([&] { return ports.size() == 5; }));
  CHECK(errors == std::vector<HttpErrc>(5, HttpErrc::none));
  CHECK(!ports[0].empty());
  CHECK(std::set<std::string>(ports.begin(), ports.end()).size() == 1);
}

TEST_CASE("http: HTTPS with the test CA, without it, and with verification off") {
  Loop loop;
  HttpClient client(loop.base());
  HttpRequest req;
  req.url = server().tls_url("/echo?tls=1");

  SUBCASE("verified against the test CA") {
    req.tls.ca_file = server().ca_file();
    HttpResponse r = fetch(loop, client, req);
    CHECK(r.error == HttpErrc::none);
    CHECK(r.status == 200);
    const auto doc = parse_json(r.body);
    CHECK(json_string(doc.root(), "query") == "tls=1");
  }
  SUBCASE("the system CAs do not know the test CA") {
    HttpResponse r = fetch(loop, client, req);
    CHECK(r.error == HttpErrc::tls);
    CHECK(!r.error_text.empty());
  }
  SUBCASE("a CA file that does not exist") {
    req.tls.ca_file = "/nonexistent/ca.pem";
    HttpResponse r = fetch(loop, client, req);
    CHECK(r.error == HttpErrc::tls);
  }
  SUBCASE("verification off") {
    req.tls.verify = false;
    HttpResponse r = fetch(loop, client, req);
    CHECK(r.error == HttpErrc::none);
    CHECK(r.status == 200);
  }
  SUBCASE("sequential HTTPS requests reuse the connection") {
    req.tls.ca_file = server().ca_file();
    std::set<std::string> ports;
    for (int i = 0; i < 3; ++i) {
      HttpResponse r = fetch(loop, client, req);
      REQUIRE(r.error == HttpErrc::none);
      ports.insert(*r.header("X-Client-Port"));
    }
    CHECK(ports.size() == 1);
  }
}

TEST_CASE("http: mutual TLS") {
  Loop loop;
  HttpClient client(loop.base());
  HttpRequest req;
  req.url = server().mtls_url("/status/200");
  req.tls.ca_file = server().ca_file();

  SUBCASE("with the client certificate") {
    req.tls.client_cert = server().client_cert();
    req.tls.client_key = server().client_key();
    HttpResponse r = fetch(loop, client, req);
    CHECK(r.error == HttpErrc::none);
    CHECK(r.status == 200);
  }
  SUBCASE("without one the server refuses the handshake") {
    // TLS 1.3: the server's alert arrives on curl's first read (CURLE_RECV_ERROR with an
    // OpenSSL "SSL routines" reason), which the client reports as tls.
    HttpResponse r = fetch(loop, client, req);
    CHECK(r.error == HttpErrc::tls);
    CHECK(r.status == 0);
    CHECK(r.error_text.find("alert certificate required") != std::string::npos);
  }
}

TEST_CASE("http: cancel") {
  Loop loop;
  HttpClient client(loop.base());
  HttpRequest slow;
  slow.url = server().url("/slow?ms=3000");

  SUBCASE("while in flight: cancelled, once") {
    int calls = 0;
    std::optional<HttpResponse> result;
    const uint64_t id = client.start(slow, [&](HttpResponse &&r) {
      ++calls;
      result = std::move(r);
    });
    loop.after(50ms, [&] {
      client.cancel(id);
      client.cancel(id);  // twice is the same as once
      CHECK(calls == 0);  // not from inside cancel()
    });
    REQUIRE(loop.run_until([&] { return result.has_value(); }));
    CHECK(result->error == HttpErrc::cancelled);
    CHECK(result->status == 0);
    loop.run_for(100ms);
    CHECK(calls == 1);
    CHECK(client.in_flight() == 0);
    client.cancel(id);  // already delivered: ignored
    client.cancel(12345);
    loop.run_for(20ms);
    CHECK(calls == 1);
  }
  SUBCASE("before the loop ever ran") {
    int calls = 0;
    HttpErrc error = HttpErrc::none;
    const uint64_t id = client.start(slow, [&](HttpResponse &&r) {
      ++calls;
      error = r.error;
    });
    client.cancel(id);
    REQUIRE(loop.run_until([&] { return calls > 0; }));
    loop.run_for(50ms);
    CHECK(calls == 1);
    CHECK(error == HttpErrc::cancelled);
  }
  SUBCASE("a request that failed but was not delivered yet reports cancelled") {
    std::vector<HttpErrc> errors;
    HttpRequest bad;
    bad.url = "gopher://127.0.0.1/";
    const uint64_t id = client.start(bad, [&](HttpResponse &&r) { errors.push_back(r.error); });
    client.cancel(id);
    REQUIRE(loop.run_until([&] { return !errors.empty(); }));
    loop.run_for(20ms);
    CHECK(errors == std::vector<HttpErrc>{HttpErrc::cancelled});
  }
  SUBCASE("a callback cancels another request") {
    std::optional<HttpResponse> fast_result, slow_result;
    const uint64_t slow_id =
        client.start(slow, [&](HttpResponse &&r) { slow_result = std::move(r); });
    HttpRequest fast;
    fast.url = server().url("/status/200");
    client.start(fast, [&](HttpResponse &&r) {
      fast_result = std::move(r);
      client.cancel(slow_id);
    });
    REQUIRE(loop.run_until([&] { return slow_result.has_value(); }));
    CHECK(fast_result->error == HttpErrc::none);
    CHECK(slow_result->error == HttpErrc::cancelled);
  }
}

TEST_CASE("http: destroying the client with requests in flight calls no callback") {
  Loop loop;
  int calls = 0;
  {
    HttpClient client(loop.base());
    HttpRequest slow;
    slow.url = server().url("/slow?ms=2000");
    for (int i = 0; i < 5; ++i) client.start(slow, [&](HttpResponse &&) { ++calls; });
    HttpRequest bad;
    bad.url = "ftp://x/";  // already failed, waiting for delivery
    client.start(bad, [&](HttpResponse &&) { ++calls; });
    HttpRequest tls;
    tls.url = server().tls_url("/slow?ms=2000");
    tls.tls.ca_file = server().ca_file();
    client.start(tls, [&](HttpResponse &&) { ++calls; });
    loop.run_for(200ms);  // connections open, requests sent
    CHECK(calls == 1);    // only the one that could not start
    calls = 0;
    client.start(slow, [&](HttpResponse &&) { ++calls; });
  }
  loop.run_for(200ms);  // nothing of the client may fire any more
  CHECK(calls == 0);
}

TEST_CASE("http: a callback may destroy the client") {
  Loop loop;
  auto client = std::make_unique<HttpClient>(loop.base());
  int calls = 0;
  HttpRequest slow;
  slow.url = server().url("/slow?ms=2000");
  client->start(slow, [&](HttpResponse &&) { ++calls; });
  HttpRequest fast;
  fast.url = server().url("/status/200");
  client->start(fast, [&](HttpResponse &&r) {
    ++calls;
    CHECK(r.status == 200);
    client.reset();
  });
  REQUIRE(loop.run_until([&] { return client == nullptr; }));
  loop.run_for(100ms);
  CHECK(calls == 1);
}

TEST_CASE("http: error names") {
  CHECK(std::string(http_errc_name(HttpErrc::none)) == "none");
  CHECK(std::string(http_errc_name(HttpErrc::timeout)) == "timeout");
  CHECK(std::string(http_errc_name(HttpErrc::connect)) == "connect");
  CHECK(std::string(http_errc_name(HttpErrc::tls)) == "tls");
  CHECK(std::string(http_errc_name(HttpErrc::too_large)) == "too_large");
  CHECK(std::string(http_errc_name(HttpErrc::protocol)) == "protocol");
  CHECK(std::string(http_errc_name(HttpErrc::cancelled)) == "cancelled");
}
