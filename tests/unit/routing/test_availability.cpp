// Availability connectors: the mapping of each format, the presets' configuration, and the
// poller against a real local HTTP server answering in each vendor's documented format
// (tests/net/vendor_availability_server.py), including garbage, partial, slow and failing
// answers.
#include <memory>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include "../net/test_server.h"
#include "net/auth_profiles.h"
#include "net/http_service.h"
#include "routing/availability.h"
#include "routing/availability_poller.h"
#include "routing/config.h"

using namespace ivr;
using namespace ivr::routing;
using std::chrono::milliseconds;

namespace {

bool same(const AvailabilitySample &s, uint32_t a, uint32_t l, uint32_t w, uint32_t longest) {
  return s.agents_available == a && s.agents_logged_in == l && s.calls_waiting == w &&
         s.longest_wait_s == longest;
}

FieldSource column(std::string name) {
  FieldSource f;
  f.column = std::move(name);
  return f;
}
FieldSource index(uint32_t i) {
  FieldSource f;
  f.index = i;
  return f;
}

std::string error_of(const AvailabilityMapping &m, std::string_view body) {
  auto r = map_availability(m, body);
  REQUIRE_FALSE(r.ok());
  return r.error().message;
}

AvailabilityMapping csv_mapping() {
  AvailabilityMapping m;
  m.format = AvailabilityFormat::csv;
  m.header = true;
  m.key_value = "Sales";
  m.fields[0] = column("agents, available");
  m.fields[1] = column("logged_in");
  m.fields[2] = index(3);
  m.fields[3] = column("longest");
  return m;
}

}  // namespace

TEST_CASE("availability: figures read as counts or [H:]MM:SS") {
  CHECK(parse_figure("12").value() == 12);
  CHECK(parse_figure(" 12.9 ").value() == 12);
  CHECK(parse_figure("01:15").value() == 75);
  CHECK(parse_figure("1:00:01").value() == 3601);
  CHECK(parse_figure("4294967295").value() == 4294967295u);
  for (const char *bad : {"", "-1", "abc", "4294967296", "1:60", "1:2:3:4", ":", "1e3", "12."})
    CHECK_MESSAGE(!parse_figure(bad).ok(), bad);
  CHECK(parse_figure("x").error().message.find("'x' is not a number") != std::string::npos);
}

TEST_CASE("availability: pipe text (VICIdial in_group_status)") {
  ConnectorConfig c =
      vicidial_in_group_status("vici", {"http://h/vicidial", "api", "ivr", "SALES", "vici"});
  CHECK(c.url ==
        "http://h/vicidial/non_agent_api.php?source=ivr&user=api&function=in_group_status"
        "&in_groups=SALES&header=NO");
  CHECK(validate_connector(c, "routing.connectors.vici").ok());
  auto s = map_availability(c.mapping, "OTHER|1|1|1|1|1|0|0|0\nSALES|14|2|9|5|4|0|0|0\n");
  REQUIRE(s.ok());
  CHECK(same(s.value(), 4, 9, 2, 0));
  CHECK(error_of(c.mapping, "ERROR: in_group_status INVALID IN-GROUP ID - X\n")
            .find("the dialing system answered an error: ERROR: in_group_status INVALID") !=
        std::string::npos);
  CHECK(error_of(c.mapping, "SALES|14|2|9|5\n") ==
        "agents_available: the row has 5 fields, no column 5");
  CHECK(error_of(c.mapping, "SALES|14|x|9|5|4\n").rfind("calls_waiting: column 2 'x' is not", 0) ==
        0);
  CHECK(error_of(c.mapping, "") == "row: no row whose column 0 is 'SALES'");
}

TEST_CASE("availability: CSV by column name, index and key row") {
  AvailabilityMapping m = csv_mapping();
  REQUIRE(validate_mapping(m).ok());
  auto s = map_availability(
      m,
      "queue,\"agents, available\",logged_in,waiting,longest\r\nSupport,1,3,0,0\r\n"
      "\"Sales\",4,9,2,\"01:15\"\r\n");
  REQUIRE(s.ok());
  CHECK(same(s.value(), 4, 9, 2, 75));
  CHECK(error_of(m, "queue,logged_in\nSales,1\n") ==
        "agents_available: column 'agents, available' not found in the header row");
  CHECK(error_of(m, "a,b\n\"Sales,1\n") == "line 2: unterminated quoted field");
  CHECK(error_of(m, "a,b\n\"Sales\"x,1\n") == "line 2: text after a closing quote");
  m.fields[0] = column("x");
  m.header = false;
  CHECK(validate_mapping(m).error().message ==
        "fields.agents_available: a column name needs \"header\": true");
}

TEST_CASE("availability: the delimited parser keeps to its limits") {
  std::string wide(kMaxDelimitedColumns + 5, '|');
  CHECK(parse_delimited(wide, '|', false).error().message == "line 1: more than 256 fields");
  std::string tall;
  for (size_t i = 0; i < kMaxDelimitedRows + 1; ++i) tall += "1\n";
  CHECK(parse_delimited(tall, ',', true).error().message.find("more than 10000 rows") !=
        std::string::npos);
  CHECK(parse_delimited(std::string(kMaxDelimitedField + 1, 'a'), ',', true)
            .error()
            .message.find("a field longer than 4096 bytes") != std::string::npos);
  auto rows = parse_delimited("a,\"b\"\"c\",\"d\ne\"\n\n\r\nx", ',', true);
  REQUIRE(rows.ok());
  REQUIRE(rows.value().size() == 2);
  CHECK(rows.value()[0] == std::vector<std::string>{"a", "b\"c", "d\ne"});
  CHECK(rows.value()[1] == std::vector<std::string>{"x"});
}

TEST_CASE("availability: JSON and XML errors name the figure") {
  ConnectorConfig t = twilio_taskqueue_statistics("tw", {"http://h", "WS1", "WQ1", "tw"});
  CHECK(error_of(t.mapping, "{\"total_available_workers\": 1}") ==
        "agents_logged_in: /total_eligible_workers is missing");
  CHECK(error_of(t.mapping, "{\"total_available_workers\": -1}")
            .rfind("agents_available: /total_available_workers is -1, not a count", 0) == 0);
  CHECK(error_of(t.mapping, "{\"total_available_workers\": true}") ==
        "agents_available: /total_available_workers is a boolean, not a number");
  CHECK(error_of(t.mapping, "<html>").rfind("body is not JSON", 0) == 0);
  ConnectorConfig a = amazon_connect_current_metrics("ac", {"http://h", "i-1", "q-1", "aws"});
  CHECK(error_of(a.mapping, R"({"MetricResults":[{"Collections":[]}]})") ==
        "agents_available: no element of /MetricResults/0/Collections has /Metric/Name = "
        "'AGENTS_AVAILABLE'");
  CHECK(error_of(a.mapping, R"({"MetricResults":[]})") ==
        "agents_available: /MetricResults/0/Collections is not an array");
  ConnectorConfig f = five9_acd_status("f9", {"http://h/ws", "Sales", "f9"});
  CHECK(validate_connector(f, "routing.connectors.f9").ok());
  CHECK(error_of(f.mapping, "<a>").rfind("body is not", 0) == 0);
}

TEST_CASE("availability: configuration from JSON, errors naming the field") {
  auto ok = parse_availability_connectors(R"J({
    "vici": {"preset": "vicidial", "base_url": "http://10.0.0.5/vicidial", "user": "api",
             "in_group": "SALES", "auth": "vici", "interval_s": 2, "target": "vicidial"},
    "tw": {"preset": "twilio", "workspace_sid": "WS1", "task_queue_sid": "WQ1", "auth": "tw"},
    "ac": {"preset": "amazon_connect", "base_url": "https://connect.eu-central-1.amazonaws.com",
           "instance_id": "i-1", "queue_id": "q-1", "auth": "aws", "stale_after_s": 60},
    "f9": {"preset": "five9", "base_url": "https://api.five9.eu/wssupervisor/v13/SupervisorWebService",
           "skill": "Sales", "columns": {"calls_waiting": "Queued"}},
    "csv": {"url": "http://10.0.0.7/stats.csv", "format": "csv", "header": true,
            "key_value": "Sales", "interval_s": 0.5, "timeout_ms": 400,
            "fields": {"agents_available": "ready", "calls_waiting": {"index": 3}}}
  })J");
  REQUIRE_MESSAGE(ok.ok(), ok.error().message);
  const auto &c = ok.value();
  REQUIRE(c.size() == 5);
  CHECK(c[0].target == "vicidial");
  CHECK(c[0].interval == milliseconds(2000));
  CHECK(c[0].stale_after == milliseconds(30000));
  CHECK(c[1].url.rfind("https://taskrouter.twilio.com/v1/Workspaces/WS1/", 0) == 0);
  CHECK(c[2].stale_after == milliseconds(60000));
  CHECK(c[2].method == "POST");
  CHECK(c[3].mapping.fields[2]->path.find("'Queued'") != std::string::npos);
  CHECK(c[4].interval == milliseconds(500));
  CHECK(c[4].mapping.fields[2]->index == 3u);

  auto err = [](const char *text) {
    auto r = parse_availability_connectors(text);
    REQUIRE_FALSE(r.ok());
    return r.error().message;
  };
  CHECK(err(R"({"vici": {"preset": "vicidial", "base_url": "http://h", "user": "u",
               "in_group": "S", "interval_s": 0}})") ==
        "routing.connectors.vici.interval_s: must be a number from 0.05 to 3600");
  CHECK(err(R"({"vici": {"preset": "vicidial", "base_url": "http://h", "in_group": "S"}})") ==
        "routing.connectors.vici.user: missing");
  CHECK(err(R"({"x": {"preset": "genesys"}})") ==
        "routing.connectors.x.preset: must be vicidial, twilio, amazon_connect or five9");
  CHECK(err(R"({"x": {"url": "http://h", "fields": {"agents_idle": "/a"}}})")
            .rfind("routing.connectors.x.fields.agents_idle: unknown field", 0) == 0);
  CHECK(err(R"({"x": {"url": "ftp://h", "fields": {"calls_waiting": "/a"}}})") ==
        "routing.connectors.x.url: must start with http:// or https://");
  CHECK(err(R"({"x": {"url": "http://h", "format": "csv", "fields": {"calls_waiting": "q"}}})") ==
        "routing.connectors.x.fields.calls_waiting: a column name needs \"header\": true");
  CHECK(err(R"({"x": {"url": "http://h", "fields": {}}})") ==
        "routing.connectors.x.fields: map at least one figure");
  CHECK(err(R"({"x": {"url": "http://h", "stale_after_s": 1, "interval_s": 5,
               "fields": {"calls_waiting": "/a"}}})") ==
        "routing.connectors.x.stale_after_s: must be at least interval_s and at most 86400");
}

// ---- the poller against the vendor server ----

namespace {

struct Rig {
  test::TestLoop loop;
  test::ScriptProcess server{{IVR_SOURCE_DIR "/tests/net/vendor_availability_server.py"}};
  std::unique_ptr<net::AuthProfiles> auth;
  std::unique_ptr<net::HttpService> http;
  std::unique_ptr<AvailabilityPoller> poller;
  std::vector<std::pair<std::string, AvailabilitySample>> samples;
  std::vector<std::string> errors, stale;

  Rig() {
    net::AuthProfilesOptions o;
    o.secrets = std::make_shared<net::MapSecretStore>(
        std::initializer_list<std::pair<const std::string, std::string>>{
            {"vici.pass", "secret-pass"},
            {"twilio.token", "twilio-token"},
            {"aws.secret", "aws-secret-key"},
            {"five9.pass", "five9-pass"},
        });
    auth = net::AuthProfiles::create(loop.base(), o).value();
    using net::AuthConfig;
    REQUIRE(auth->set("vici", AuthConfig(net::ApiKeyAuth{"vici.pass", net::ApiKeyPlacement::query,
                                                         "pass", ""}))
                .ok());
    REQUIRE(auth->set("tw", AuthConfig(net::BasicAuth{"ACtest", "twilio.token"})).ok());
    REQUIRE(auth->set("aws", AuthConfig(net::SigV4Auth{
                                 "AKIDTEST", "aws.secret", "",
                                 net::SigV4Options::for_service("eu-central-1", "connect")}))
                .ok());
    REQUIRE(auth->set("f9", AuthConfig(net::BasicAuth{"admin", "five9.pass"})).ok());
    http = net::HttpService::create(loop.base(), {}, auth.get()).value();
  }

  // The server's base URL; with a key, its answers follow `script` (see the server).
  std::string base(const std::string &key = "", const std::string &script = "") const {
    std::string b = "http://127.0.0.1:" + std::to_string(server.port("listening"));
    return key.empty() ? b : b + "/ctl/" + key + "/" + script;
  }

  void start(std::vector<ConnectorConfig> connectors) {
    AvailabilityHandlers h;
    h.on_sample = [this](const ConnectorConfig &c, const AvailabilitySample &s) {
      samples.emplace_back(c.name, s);
    };
    h.on_error = [this](const ConnectorConfig &, const Error &e) { errors.push_back(e.message); };
    h.on_stale = [this](const ConnectorConfig &, const std::string &why) { stale.push_back(why); };
    auto p = AvailabilityPoller::create(loop.base(), *http, std::move(connectors), std::move(h));
    REQUIRE_MESSAGE(p.ok(), p.error().message);
    poller = std::move(p.value());
    poller->start();
  }

  bool wait(const std::function<bool()> &done) { return loop.run_until(done, milliseconds(15000)); }
};

ConnectorConfig quick(ConnectorConfig c, int interval_ms = 100, int stale_ms = 5000) {
  c.interval = milliseconds(interval_ms);
  c.stale_after = milliseconds(stale_ms);
  c.timeout = milliseconds(2000);
  return c;
}

}  // namespace

TEST_CASE("availability poller: every preset against the vendor's documented answer") {
  Rig rig;
  rig.start({
      quick(vicidial_in_group_status("vici",
                                     {rig.base() + "/vicidial", "api", "ivr", "SALES", "vici"})),
      quick(twilio_taskqueue_statistics("tw", {rig.base() + "/twilio", "WS1", "WQ1", "tw"})),
      quick(amazon_connect_current_metrics("ac", {rig.base() + "/connect", "i-1", "q-1", "aws"})),
      quick(five9_acd_status("f9", {rig.base() + "/five9/ws", "Sales", "f9"})),
  });
  auto got = [&](const std::string &name) -> const AvailabilitySample * {
    for (auto &[n, s] : rig.samples)
      if (n == name) return &s;
    return nullptr;
  };
  REQUIRE(rig.wait([&] { return got("vici") && got("tw") && got("ac") && got("f9"); }));
  CHECK(rig.errors.empty());
  CHECK(same(*got("vici"), 4, 9, 2, 0));
  CHECK(same(*got("tw"), 4, 9, 2, 75));
  CHECK(same(*got("ac"), 4, 9, 2, 75));
  CHECK(same(*got("f9"), 4, 9, 2, 75));
  // Polling goes on every interval.
  REQUIRE(rig.wait([&] { return rig.poller->state("tw")->samples >= 3; }));
  CHECK_FALSE(rig.poller->state("tw")->stale);
}

TEST_CASE("availability poller: a generic CSV connector from JSON configuration") {
  Rig rig;
  auto c = parse_availability_connectors(
      R"({"csv": {"url": ")" + rig.base() +
      R"(/csv", "format": "csv", "header": true, "key_value": "Sales", "interval_s": 0.1,
         "fields": {"agents_available": "agents, available", "agents_logged_in": "logged_in",
                    "calls_waiting": {"index": 3}, "longest_wait_s": "longest"}}})");
  REQUIRE_MESSAGE(c.ok(), c.error().message);
  rig.start(std::move(c.value()));
  REQUIRE(rig.wait([&] { return !rig.samples.empty(); }));
  CHECK(same(rig.samples[0].second, 4, 9, 2, 75));
}

TEST_CASE("availability poller: garbage, partial and failing answers are named, then retried") {
  Rig rig;
  rig.start({
      quick(twilio_taskqueue_statistics(
          "tw", {rig.base("tw", "503,garbage,partial,ok") + "/twilio", "WS1", "WQ1", "tw"})),
      quick(vicidial_in_group_status(
          "vici", {rig.base("vici", "partial,ok") + "/vicidial", "api", "ivr", "SALES", "vici"})),
      quick(five9_acd_status("f9", {rig.base("f9", "partial,ok") + "/five9/ws", "Sales", "f9"})),
  });
  REQUIRE(rig.wait([&] {
    return rig.poller->state("tw")->samples >= 1 && rig.poller->state("vici")->samples >= 1 &&
           rig.poller->state("f9")->samples >= 1;
  }));
  std::string all;
  for (auto &e : rig.errors) all += e + "\n";
  INFO(all);
  CHECK(all.find("connector tw: HTTP 503 from http://127.0.0.1:") != std::string::npos);
  CHECK(all.find("connector tw: body is not JSON") != std::string::npos);
  CHECK(all.find("connector tw: calls_waiting: /tasks_by_status/pending is missing") !=
        std::string::npos);
  CHECK(all.find("connector vici: agents_available: the row has 5 fields, no column 5") !=
        std::string::npos);
  CHECK(all.find("connector f9: calls_waiting: ") != std::string::npos);
  CHECK(all.find("is missing") != std::string::npos);
  CHECK(rig.poller->state("tw")->errors == 3);
  CHECK(rig.poller->state("tw")->samples >= 1);
  // The query (VICIdial's password) never reaches a message.
  CHECK(all.find("secret-pass") == std::string::npos);
}

TEST_CASE("availability poller: wrong credentials are errors, never samples") {
  Rig rig;
  REQUIRE(rig.auth
              ->set("vici", net::AuthConfig(net::ApiKeyAuth{
                                "twilio.token", net::ApiKeyPlacement::query, "pass", ""}))
              .ok());
  rig.start(
      {quick(vicidial_in_group_status("vici",
                                      {rig.base() + "/vicidial", "api", "ivr", "SALES", "vici"})),
       quick(twilio_taskqueue_statistics("tw", {rig.base() + "/twilio", "WS1", "WQ1", "f9"}))});
  REQUIRE(rig.wait([&] { return rig.errors.size() >= 4; }));
  CHECK(rig.samples.empty());
  std::string all;
  for (auto &e : rig.errors) all += e + "\n";
  INFO(all);
  CHECK(all.find("connector vici: the dialing system answered an error: ERROR: in_group_status "
                 "USER DOES NOT HAVE PERMISSION") != std::string::npos);
  CHECK(all.find("connector tw: HTTP 401") != std::string::npos);
}

TEST_CASE("availability poller: data goes stale after stale_after, the last sample is kept") {
  Rig rig;
  rig.start({quick(
      twilio_taskqueue_statistics("tw", {rig.base("st", "ok,503") + "/twilio", "WS1", "WQ1", "tw"}),
      100, 400)});
  REQUIRE(rig.wait([&] { return !rig.stale.empty(); }));
  CHECK(rig.samples.size() == 1);
  CHECK(rig.stale.size() == 1);  // once per stale period
  CHECK(rig.stale[0].find("connector tw: no good sample for 400 ms (last error: HTTP 503") == 0);
  const ConnectorState *st = rig.poller->state("tw");
  CHECK(st->stale);
  REQUIRE(st->last.has_value());
  CHECK(same(*st->last, 4, 9, 2, 75));
  rig.loop.run_for(milliseconds(300));
  CHECK(rig.stale.size() == 1);
}

TEST_CASE(
    "availability poller: a connector that never answers goes stale; a slow answer times out") {
  Rig rig;
  auto slow = quick(twilio_taskqueue_statistics(
                        "tw", {rig.base("slow", "slow,ok") + "/twilio", "WS1", "WQ1", "tw"}),
                    100, 300);
  slow.timeout = milliseconds(500);
  rig.start({slow});
  REQUIRE(rig.wait([&] { return !rig.samples.empty(); }));
  CHECK(rig.stale.size() == 1);
  CHECK(rig.errors.size() >= 1);
  CHECK(rig.errors[0].find("connector tw: request to http://127.0.0.1:") == 0);
  CHECK(rig.errors[0].find("failed (timeout)") != std::string::npos);
  CHECK(rig.poller->state("tw")->skipped >= 1);  // polls are not stacked while one is in flight
  CHECK_FALSE(rig.poller->state("tw")->stale);   // a good sample makes the data fresh again
}

TEST_CASE("availability poller: destroyed with a poll in flight, no callback afterwards") {
  Rig rig;
  rig.start({quick(twilio_taskqueue_statistics(
      "tw", {rig.base("gone", "slow") + "/twilio", "WS1", "WQ1", "tw"}))});
  rig.loop.run_for(milliseconds(200));
  rig.poller.reset();
  rig.loop.run_for(milliseconds(300));
  CHECK(rig.samples.empty());
  CHECK(rig.errors.empty());
}

TEST_CASE("availability poller: invalid connectors are refused by name") {
  Rig rig;
  ConnectorConfig c =
      twilio_taskqueue_statistics("tw", {rig.base() + "/twilio", "WS1", "WQ1", "tw"});
  c.interval = milliseconds(10);
  auto p = AvailabilityPoller::create(rig.loop.base(), *rig.http, {c}, {});
  REQUIRE_FALSE(p.ok());
  CHECK(p.error().message ==
        "routing.connectors.tw.interval_s: must be a number from 0.05 to 3600");
  c.interval = milliseconds(100);
  p = AvailabilityPoller::create(rig.loop.base(), *rig.http, {c, c}, {});
  REQUIRE_FALSE(p.ok());
  CHECK(p.error().message == "routing.connectors.tw: connector named twice");
}

TEST_CASE("availability: connectors in the routing configuration feed known targets") {
  const std::string base = R"({"targets": {"vicidial": {"uris": ["sip:1@h"], "capacity": 2}},
    "plans": {"p": {"entries": [{"targets": ["vicidial"]}]}},
    "connectors": {"vici": {"preset": "vicidial", "base_url": "http://h", "user": "u",
                            "in_group": "S", "target": )";
  auto ok = parse_routing_config(base + R"("vicidial"}}})");
  REQUIRE_MESSAGE(ok.ok(), ok.error().message);
  REQUIRE(ok.value().connectors.size() == 1);
  CHECK(ok.value().connectors[0].target == "vicidial");
  auto bad = parse_routing_config(base + R"("five9"}}})");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message == "routing.connectors.vici.target: 'five9' is not a target");
  bad = parse_routing_config(base + R"("vicidial", "interval_s": "5"}}})");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message ==
        "routing.connectors.vici.interval_s: must be a number from 0.05 to 3600");
}
