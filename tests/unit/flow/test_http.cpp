// The http verb: validation, the request each call renders, and its exits, through the
// simulator (scripted answers on a virtual clock).
#include "flow_test_util.h"

using namespace ivr::flow;
using flowtest::path_text;
using flowtest::var;

namespace {

SimulationResult run(const std::string &doc, SimulationOptions o = {}) {
  return simulate(flowtest::must_compile(doc), o);
}

SimHttpReply reply(int status, std::string body, uint32_t delay_ms = 100) {
  SimHttpReply r;
  r.status = status;
  r.body = std::move(body);
  r.delay_ms = delay_ms;
  r.headers = {{"Content-Type", "application/json"}};
  return r;
}

const char *kLookup = R"J({"flow": "crm", "start": "lookup", "nodes": {
  "lookup": {"verb": "http", "url": "https://crm.example.com/customers",
             "query": {"phone": "{{call.from}}", "fields": "tier,name"},
             "headers": {"Accept": "application/json", "X-Caller": "{{call.from}}"},
             "timeout_ms": 2000, "next": "found", "on_error": "failed", "on_timeout": "slow"},
  "found": {"verb": "hangup", "reason": "status {{steps.lookup.status}}"},
  "failed": {"verb": "hangup", "reason": "failed {{steps.lookup.reason}}: {{steps.lookup.error}}"},
  "slow": {"verb": "hangup", "reason": "slow {{steps.lookup.reason}}"}}})J";

}  // namespace

TEST_CASE("http: validation names every bad field") {
  std::string t = flowtest::problems_text(R"J({"flow": "f", "start": "a", "nodes": {
    "a": {"verb": "http", "method": "get", "url": "ftp://x", "headers": {"Bad Header": "x", "Ok": 3},
          "body": {"json": {}}, "graphql": {"query": "{a}"}, "timeout_ms": 99999999,
          "retries": 9, "cache": {"ttl_s": 0}, "accept_status": ["2xy", 700], "bogus": 1,
          "auth": "not a name", "next": "b"},
    "b": {"verb": "http", "url": "{{vars.base}}/x", "body": {"json": {"a": "{{1 +}}"}},
          "method": "GET", "next": "c"},
    "c": {"verb": "http", "url": "https://x/y", "method": "POST", "body": {"yaml": "a"},
          "cache": {"ttl_s": 5}, "next": "d"},
    "d": {"verb": "hangup"}}})J");
  for (const char *want : {
           "/nodes/a/method: method is one of GET",
           "/nodes/a/url: url must start with http:// or https://",
           "/nodes/a/headers/Bad Header: not a valid header name",
           "/nodes/a/headers/Ok: must be a string (a template)",
           "/nodes/a: an http node has at most one of \"body\", \"graphql\" and \"soap\"",
           "/nodes/a/timeout_ms: must be an integer from 100 to 60000",
           "/nodes/a/retries: must be an integer from 0 to 5",
           "/nodes/a/cache/ttl_s: must be an integer from 1 to 86400",
           "/nodes/a/accept_status/0: a status is a number from 100 to 599",
           "/nodes/a/accept_status/1: a status is a number from 100 to 599",
           "/nodes/a/bogus: unknown field \"bogus\" for verb \"http\"",
           "/nodes/a/auth: auth names an auth profile",
           "/nodes/b/url: url must start with http:// or https:// (not a template)",
           "/nodes/b/body/json/a: bad expression",
           "/nodes/b/method: GET requests carry no body",
           "/nodes/c/body/yaml: unknown body kind \"yaml\"",
           "/nodes/c/cache: only GET, GraphQL and SOAP lookups are cached",
       }) {
    INFO(want);
    CHECK(t.find(want) != std::string::npos);
  }
}

TEST_CASE("http: a GET renders its query and headers, and 200 takes next") {
  SimulationOptions o;
  o.call.from = "+1 555/0100&x";
  o.http["lookup"] = {reply(200, R"({"tier": "gold"})")};
  auto r = run(kLookup, o);
  CHECK(path_text(r) == "lookup > found");
  CHECK(r.hangup_reason == "status 200");
  CHECK(var(r, "steps.lookup.body") == R"({"tier": "gold"})");
  CHECK(var(r, "steps.lookup.content_type") == "application/json");
  CHECK(var(r, "steps.lookup.reason") == "");
  REQUIRE(r.http_requests.size() == 1);
  const HttpStart &hs = r.http_requests[0].second;
  CHECK(hs.request.method == "GET");
  CHECK(hs.request.url ==
        "https://crm.example.com/customers?phone=%2B1%20555%2F0100%26x&fields=tier%2Cname");
  CHECK(hs.request.timeout_ms == 2000);
  CHECK(hs.request.body.empty());
  REQUIRE(hs.request.headers.size() == 2);
  CHECK(hs.request.headers[1].second == "+1 555/0100&x");
}

TEST_CASE("http: statuses, transport errors and timeouts pick their exits") {
  SimulationOptions o;
  o.http["lookup"] = {reply(503, "busy")};
  auto r = run(kLookup, o);
  CHECK(path_text(r) == "lookup > failed");
  CHECK(r.hangup_reason == "failed status: http status: HTTP 503 from crm.example.com");
  CHECK(var(r, "steps.lookup.status") == "503");

  SimHttpReply refused;
  refused.reason = "connect";
  refused.error = "connection refused";
  o.http["lookup"] = {refused};
  r = run(kLookup, o);
  CHECK(r.hangup_reason == "failed connect: http connect: connection refused");

  o.http["lookup"] = {reply(200, "{}", 2500)};  // later than timeout_ms
  r = run(kLookup, o);
  CHECK(path_text(r) == "lookup > slow");
  CHECK(r.hangup_reason == "slow timeout");
  CHECK(r.duration_ms == 2000);

  // Without on_timeout a timeout is an error like any other.
  std::string no_timeout_exit = kLookup;
  no_timeout_exit.erase(no_timeout_exit.find(R"(, "on_timeout": "slow")"),
                        std::string(R"(, "on_timeout": "slow")").size());
  no_timeout_exit.erase(no_timeout_exit.find(R"(,
  "slow")"));
  no_timeout_exit += "}}";
  r = run(no_timeout_exit, o);
  CHECK(path_text(r) == "lookup > failed");
  CHECK(r.hangup_reason.find("failed timeout: http timeout: no answer within 2000 ms") == 0);

  // accept_status makes a 404 ("not a customer") an answer, not an error.
  std::string accept_404 = kLookup;
  accept_404.replace(accept_404.find(R"("timeout_ms": 2000)"), 18,
                     R"("timeout_ms": 2000, "accept_status": ["2xx", 404])");
  o.http["lookup"] = {reply(404, "{}")};
  r = run(accept_404, o);
  CHECK(r.hangup_reason == "status 404");
}

TEST_CASE("http: JSON, form, GraphQL and SOAP bodies are escaped for their format") {
  const char *doc = R"J({"flow": "b", "start": "json", "nodes": {
    "json": {"verb": "http", "method": "PUT", "url": "http://svc/a",
             "body": {"json": {"caller": "{{call.from}}", "n": 3, "ok": true, "tags": ["x", "{{call.to}}"], "none": null}},
             "next": "form"},
    "form": {"verb": "http", "url": "http://svc/b", "body": {"form": {"who": "{{call.from}}", "a b": "c=d"}}, "next": "gql"},
    "gql": {"verb": "http", "url": "https://svc/graphql",
            "graphql": {"query": "query($p: String!) { customer(phone: $p) { tier } }", "variables": {"p": "{{call.from}}"}},
            "next": "soap"},
    "soap": {"verb": "http", "url": "https://svc/soap",
             "soap": {"action": "urn:getStatistics", "envelope": "<soap:Envelope><soap:Body><q>{{call.from}}</q></soap:Body></soap:Envelope>"},
             "next": "done"},
    "done": {"verb": "hangup", "reason": "done"}}})J";
  SimulationOptions o;
  o.call.from = "a\"<b>&'\n";
  o.call.to = "1000";
  for (const char *n : {"json", "form"}) o.http[n] = {reply(200, "{}")};
  o.http["gql"] = {reply(200, R"({"data": {}})")};
  o.http["soap"] = {
      reply(200,
            "<soap:Envelope "
            "xmlns:soap='http://schemas.xmlsoap.org/soap/envelope/'><soap:Body/></soap:Envelope>")};
  auto r = run(doc, o);
  CHECK(r.hangup_reason == "done");
  REQUIRE(r.http_requests.size() == 4);
  auto &json = r.http_requests[0].second.request;
  CHECK(json.method == "PUT");
  CHECK(json.body == R"({"caller":"a\"<b>&'\n","n":3,"ok":true,"tags":["x","1000"],"none":null})");
  CHECK(json.headers[0] == std::pair<std::string, std::string>{"Content-Type", "application/json"});
  auto &form = r.http_requests[1].second.request;
  CHECK(form.method == "POST");  // a body without a method is a POST
  CHECK(form.body == "who=a%22%3Cb%3E%26%27%0A&a%20b=c%3Dd");
  auto &gql = r.http_requests[2].second.request;
  CHECK(
      gql.body ==
      R"({"query":"query($p: String!) { customer(phone: $p) { tier } }","variables":{"p":"a\"<b>&'\n"}})");
  auto &soap = r.http_requests[3].second.request;
  CHECK(
      soap.body ==
      "<soap:Envelope><soap:Body><q>a&quot;&lt;b&gt;&amp;&apos;\n</q></soap:Body></soap:Envelope>");
  bool action = false;
  for (auto &[k, v] : soap.headers)
    action = action || (k == "SOAPAction" && v == "\"urn:getStatistics\"");
  CHECK(action);
}

TEST_CASE("http: GraphQL errors in a 200 answer take on_error") {
  const char *doc = R"J({"flow": "g", "start": "q", "nodes": {
    "q": {"verb": "http", "url": "https://svc/graphql", "graphql": {"query": "{ customer { tier } }"},
          "next": "ok", "on_error": "bad"},
    "ok": {"verb": "hangup", "reason": "ok"},
    "bad": {"verb": "hangup", "reason": "{{steps.q.reason}}: {{steps.q.error}}"}}})J";
  SimulationOptions o;
  o.http["q"] = {reply(
      200,
      R"({"data": null, "errors": [{"message": "not found", "path": ["customer", 0]}, {"message": "denied"}]})")};
  auto r = run(doc, o);
  CHECK(r.hangup_reason == "graphql: http graphql: not found (path: customer.0); denied");
  o.http["q"] = {reply(200, R"({"data": {"customer": {"tier": "gold"}}})")};
  CHECK(run(doc, o).hangup_reason == "ok");
  o.http["q"] = {reply(200, "<html>")};
  CHECK(run(doc, o).hangup_reason.find("parse: http parse: body is not JSON") == 0);
}

TEST_CASE("http: the call's budget bounds every request and then refuses more") {
  const char *doc = R"J({"flow": "b", "start": "a", "http_budget_ms": 2500, "nodes": {
    "a": {"verb": "http", "url": "http://svc/a", "timeout_ms": 2000, "next": "b", "on_timeout": "b"},
    "b": {"verb": "http", "url": "http://svc/b", "timeout_ms": 2000, "next": "c", "on_timeout": "late"},
    "c": {"verb": "hangup", "reason": "c"},
    "late": {"verb": "http", "url": "http://svc/c", "next": "c", "on_timeout": "out"},
    "out": {"verb": "hangup", "reason": "{{steps.late.reason}}: {{steps.late.error}}"}}})J";
  SimulationOptions o;
  o.http["a"] = {reply(200, "{}", 1500)};
  o.http["b"] = {reply(200, "{}", 1500)};  // only 1000 ms of the budget is left
  o.http["late"] = {reply(200, "{}", 10)};
  auto r = run(doc, o);
  REQUIRE(r.http_requests.size() == 2);
  CHECK(r.http_requests[1].second.request.timeout_ms == 1000);
  CHECK(r.http_requests[1].second.budget_ms == 1000);
  CHECK(path_text(r) == "a > b > late > out");
  CHECK(r.hangup_reason == "budget: the call's lookup budget (http_budget_ms) of 2500 ms is spent");
}

TEST_CASE("http: hold audio repeats while waiting; a hang-up cancels the request") {
  const char *doc = R"J({"flow": "h", "start": "answer", "nodes": {
    "answer": {"verb": "answer", "next": "lookup"},
    "lookup": {"verb": "http", "url": "http://svc/a", "timeout_ms": 5000, "hold": {"file": "hold.wav"},
               "next": "done"},
    "done": {"verb": "play", "file": "done.wav"}}})J";
  SimulationOptions o;
  o.prompt_ms = 1000;
  o.http["lookup"] = {reply(200, "{}", 3500)};
  auto r = run(doc, o);
  CHECK(path_text(r) == "answer > lookup > done");
  CHECK(r.duration_ms == 4500);  // the answer at 3.5 s stops the hold; done.wav takes 1 s
  bool traced = false;
  for (auto &s : r.trace) traced = traced || s.entry.detail == "hold audio while waiting";
  CHECK(traced);

  o.hangup_at_ms = 1200;
  r = run(doc, o);
  CHECK(r.end == EndReason::caller_hangup);
  CHECK(path_text(r) == "answer > lookup");
}

TEST_CASE("http: a template that fails to render is the node's error") {
  const char *doc = R"J({"flow": "t", "start": "a", "nodes": {
    "a": {"verb": "http", "url": "http://svc/{{call.from + 1}}", "next": "b", "on_error": "e"},
    "b": {"verb": "hangup"},
    "e": {"verb": "hangup", "reason": "{{steps.a.reason}}"}}})J";
  auto r = run(doc);
  CHECK(r.hangup_reason == "request");
  CHECK(r.http_requests.empty());
}

TEST_CASE("http: map puts JSON and XPath answers into variables; faults and bad bodies fail") {
  const char *doc = R"J({"flow": "m", "start": "crm", "nodes": {
    "crm": {"verb": "http", "url": "https://crm/c",
            "map": {"tier": "/customer/tier", "vars.score": "/customer/score", "id": "/customer/id",
                    "tags": "/customer/tags/*", "orders": "/orders/#", "missing": "/nope"},
            "next": "stats", "on_error": "bad"},
    "stats": {"verb": "http", "url": "https://five9/ws", "soap": {"action": "getStatistics",
              "envelope": "<soap:Envelope xmlns:soap='http://schemas.xmlsoap.org/soap/envelope/'><soap:Body/></soap:Envelope>"},
              "namespaces": {"s": "urn:stats"},
              "map": {"agents": "string(//s:agentsReady)", "waiting": "count(//s:call)"},
              "next": "route", "on_error": "bad"},
    "route": {"verb": "if", "condition": "vars.tier == 'gold' && vars.score > 70 && number(vars.agents) > 0",
              "then": "done", "else": "bad"},
    "done": {"verb": "hangup", "reason": "{{vars.id}} {{vars.tags}} {{vars.orders}} {{vars.waiting}}"},
    "bad": {"verb": "hangup", "reason": "{{steps.crm.reason}}{{steps.stats.reason}}: {{steps.crm.error}}{{steps.stats.error}}"}}})J";
  const std::string soap_ok =
      "<soap:Envelope xmlns:soap='http://schemas.xmlsoap.org/soap/envelope/' xmlns:s='urn:stats'>"
      "<soap:Body><s:r><s:agentsReady>3</s:agentsReady><s:call/><s:call/></s:r></soap:Body>"
      "</soap:Envelope>";
  SimulationOptions o;
  o.http["crm"] = {
      reply(200, R"({"customer": {"tier": "gold", "score": 88, "id": 12345678901234567890,
                                   "tags": ["vip", "emea"]}, "orders": [1, 2, 3]})")};
  o.http["stats"] = {reply(200, soap_ok)};
  auto r = run(doc, o);
  CHECK(r.hangup_reason == "12345678901234567890 vip,emea 3 2");
  CHECK(var(r, "vars.missing") == "");  // null renders as nothing

  // A SOAP fault (status 500) takes on_error with its code and reason.
  SimHttpReply fault =
      reply(500,
            "<soap:Envelope "
            "xmlns:soap='http://schemas.xmlsoap.org/soap/envelope/'><soap:Body><soap:Fault>"
            "<faultcode>soap:Server</faultcode><faultstring>session expired</faultstring>"
            "</soap:Fault></soap:Body></soap:Envelope>");
  o.http["stats"] = {fault};
  r = run(doc, o);
  CHECK(r.hangup_reason == "soap_fault: http soap_fault: soap:Server: session expired");

  // A body that is not JSON is reason "parse".
  o.http["crm"] = {reply(200, "<html>oops</html>")};
  r = run(doc, o);
  CHECK(r.hangup_reason.find("parse: http parse: body is not JSON") == 0);
}

TEST_CASE("http: bad maps are validation problems with their entry") {
  std::string t = flowtest::problems_text(R"J({"flow": "f", "start": "a", "nodes": {
    "a": {"verb": "http", "url": "https://x/", "map": {"t": "/a/~2", "steps.x": "/a", "n": 3},
          "next": "b"},
    "b": {"verb": "http", "url": "https://x/", "response": "xml", "map": {"x": "//q:a"}, "next": "c"},
    "c": {"verb": "http", "url": "https://x/", "namespaces": {"q": "urn:q"}, "response": "yaml", "next": "d"},
    "d": {"verb": "hangup"}}})J");
  for (const char *want : {
           "/nodes/a/map/t: variable \"vars.t\": column 4: '~2' is not an escape",
           "/nodes/a/map/steps.x: map sets flow variables",
           "/nodes/a/map/n: a JSON path",
           "/nodes/b/map/x: variable \"vars.x\"",
           "/nodes/c/response: response is \"json\" or \"xml\"",
           "/nodes/c/namespaces: namespaces go with XML answers",
       }) {
    INFO(want);
    CHECK(t.find(want) != std::string::npos);
  }
}
