// The C++ wrapper (ivr/ivr.hpp) over the shared library's C ABI: RAII handles, errors as
// exceptions, flow validation, and real SIPp calls through a flow whose custom verb and
// database connector are C++ callbacks answering from other threads, with the exceptions
// they throw turned into the steps' error exits.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ivr/ivr.hpp"

extern char **environ;

namespace {

using namespace std::chrono_literals;

// A loopback UDP port free right now.
unsigned short free_udp_port() {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr);
  getsockname(fd, reinterpret_cast<sockaddr *>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

// Options for a test engine: any free SIP port, a small RTP range of this process's own.
ivr::EngineOptions test_options(const std::string &prompt_dir) {
  ivr::EngineOptions o;
  o.sip_port = 0;
  o.rtp_port_min = static_cast<unsigned short>(30000 + (getpid() % 300) * 20);
  o.rtp_port_max = static_cast<unsigned short>(o.rtp_port_min + 19);
  o.prompt_dir = prompt_dir;
  return o;
}

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/ivr-cxx-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

// One SIPp caller (tests/capi/scenarios/info_call.xml: caller 5551234, X-Lead-Id L-42, DTMF
// 4 2 # by SIP INFO, then waits for our BYE). Bounded by SIPp's -timeout. Returns its exit
// status (0: the scenario passed).
int place_call(unsigned short sip_port) {
  std::string scenario = std::string(IVR_TEST_CAPI_DIR) + "/scenarios/info_call.xml";
  std::string target = "127.0.0.1:" + std::to_string(sip_port);
  std::string local_port = std::to_string(free_udp_port());
  std::vector<std::string> args = {"sipp",     "-sf", scenario,         "-m",  "1",
                                   "-nostdin", "-i",  "127.0.0.1",      "-p",  local_port,
                                   "-timeout", "30s", "-timeout_error", target};
  std::vector<char *> argv;
  for (auto &a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  posix_spawn_file_actions_t quiet;  // SIPp's screens go nowhere; its errors to stderr
  posix_spawn_file_actions_init(&quiet);
  posix_spawn_file_actions_addopen(&quiet, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  int rc = posix_spawnp(&pid, "sipp", &quiet, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&quiet);
  if (rc != 0) return -1;
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Catches the Error a statement throws, for its code and message.
template <typename Fn>
ivr::Error error_of(Fn &&fn) {
  try {
    fn();
  } catch (const ivr::Error &e) {
    return e;
  }
  return ivr::Error(0, "no exception");
}

ivr::DbOptions memory_db() {
  ivr::DbOptions o;
  o.url = "sqlite::memory:";
  return o;
}

bool contains(const std::string &s, const std::string &part) {
  return s.find(part) != std::string::npos;
}

// Counts live callback objects: every std::function the engine holds captures one.
std::atomic<int> g_probes{0};
struct Probe {
  Probe() { ++g_probes; }
  Probe(const Probe &) { ++g_probes; }
  ~Probe() { --g_probes; }
};

// Exceptions reported by callbacks, captured for the duration of a test.
struct HandlerCapture {
  std::mutex mutex;
  std::vector<std::pair<std::string, std::string>> seen;
  ivr::CallbackExceptionHandler previous;
  HandlerCapture() {
    previous = ivr::set_callback_exception_handler(
        [this](const std::string &where, const std::string &message) {
          std::lock_guard lock(mutex);
          seen.emplace_back(where, message);
        });
  }
  ~HandlerCapture() { ivr::set_callback_exception_handler(previous); }
  bool has(const std::string &where, const std::string &message) {
    std::lock_guard lock(mutex);
    for (auto &[w, m] : seen)
      if (contains(w, where) && contains(m, message)) return true;
    return false;
  }
};

const char *kBroken =
    "{\"flow\": \"b\", \"start\": \"a\", \"nodes\": {\n"
    "  \"a\": {\"verb\": \"cxx.lookup\", \"next\": \"zz\"}}}";

}  // namespace

TEST_CASE("options mirror the C defaults; errors become ivr::Error with code and message") {
  ivr::EngineOptions d;
  ivr_engine_options c = IVR_ENGINE_OPTIONS_INIT;
  CHECK(d.sip_address == c.sip_address);
  CHECK(d.sip_port == c.sip_port);
  CHECK(d.rtp_port_min == c.rtp_port_min);
  CHECK(d.rtp_port_max == c.rtp_port_max);
  CHECK(d.media_threads == c.media_threads);
  CHECK(d.prompt_dir == c.prompt_dir);
  CHECK(d.log_level == ivr::LogLevel::info);
  CHECK(d.sip_transport == ivr::SipTransport::udp);
  CHECK(ivr::WebhookOptions().max_attempts == 16);
  CHECK(ivr::DbOptions().pool_size == 2);
  CHECK(ivr::CollectOptions().terminators == "#");
  CHECK(ivr::SayOptions().rate_wpm == 160);
  CHECK(ivr::version() == ivr_version(nullptr, nullptr, nullptr));

  ivr::EngineOptions bad;
  bad.sip_address = "not-an-ip";
  auto e = error_of([&] { ivr::Engine engine(bad); });
  CHECK(e.code() == IVR_EINVAL);
  CHECK(contains(e.what(), "options.sip_address"));
  CHECK(std::string(e.code_name()) == "invalid argument");

  bad = ivr::EngineOptions();
  bad.media_threads = 0;
  e = error_of([&] { ivr::Engine engine(bad); });
  CHECK(e.code() == IVR_EINVAL);
  CHECK(contains(e.what(), "options.media_threads"));
  CHECK_THROWS_AS(ivr::Engine{bad}, std::runtime_error);  // ivr::Error is one
}

TEST_CASE("engine lifecycle: start, state errors, move, stop") {
  TempDir prompts;
  std::mutex mutex;
  std::vector<std::string> lines;
  auto options = test_options(prompts.path);
  options.log = [&](ivr::LogLevel level, const std::string &sub, const std::string &msg) {
    std::lock_guard lock(mutex);
    if (level <= ivr::LogLevel::info) lines.push_back(sub + ": " + msg);
  };
  ivr::Engine engine(options);
  CHECK(engine);
  CHECK(engine.sip_port() == 0);
  engine.set_event_callback([](const ivr::Event &) {});
  engine.start();
  CHECK(engine.sip_port() != 0);
  CHECK(engine.call_count() == 0);

  auto e = error_of([&] { engine.start(); });
  CHECK(e.code() == IVR_ESTATE);
  CHECK(contains(e.what(), "already started"));
  e = error_of([&] { engine.set_event_callback([](const ivr::Event &) {}); });
  CHECK(e.code() == IVR_ESTATE);

  ivr::Engine moved(std::move(engine));
  CHECK(!engine);  // a moved-from engine is empty: its calls fail with IVR_EINVAL
  CHECK(moved.sip_port() != 0);
  e = error_of([&] { engine.start(); });
  CHECK(e.code() == IVR_EINVAL);
  CHECK(contains(e.what(), "engine"));
  moved.stop("done");
  moved.stop();  // idempotent
  {
    std::lock_guard lock(mutex);
    bool listening = false;
    for (auto &l : lines) listening = listening || contains(l, "engine: listening on sip:");
    CHECK(listening);
  }
  ivr::Engine other(test_options(prompts.path));
  other = std::move(moved);  // frees other's engine, takes moved's
  CHECK(other);

  // A log callback that throws: reported, never into the library.
  HandlerCapture handler;
  auto throwing = test_options(prompts.path);
  throwing.log = [](ivr::LogLevel, const std::string &, const std::string &msg) {
    throw std::runtime_error("log sink full: " + msg);
  };
  ivr::Engine noisy(throwing);
  noisy.start();
  noisy.stop();
  CHECK(handler.has("log callback", "log sink full: listening on sip:"));
}

TEST_CASE("flows: validation report, ValidationError with every problem, versions") {
  TempDir prompts;
  ivr::Engine engine(test_options(prompts.path));

  auto report = engine.flow_validate(kBroken);
  CHECK(!report.valid());
  REQUIRE(report.problems.size() == 2);
  CHECK(report.problems[0].pointer == "/nodes/a/verb");
  CHECK(report.problems[0].line == 2);
  CHECK(report.problems[0].column == 17);
  CHECK(contains(report.problems[0].message, "unknown verb \"cxx.lookup\""));
  CHECK(contains(report.text, "/nodes/a/next: no node named \"zz\""));
  CHECK(error_of([&] { engine.flow_validate(""); }).code() == IVR_EINVAL);

  try {
    engine.flow_load(kBroken);
    FAIL("flow_load accepted a broken document");
  } catch (const ivr::ValidationError &v) {
    CHECK(v.code() == IVR_EPARSE);
    CHECK(contains(v.what(), "2 problems"));
    REQUIRE(v.problems().size() == 2);
    CHECK(v.problems()[1].pointer == "/nodes/a/next");
    CHECK(contains(v.problems()[1].message, "no node named \"zz\""));
    CHECK(contains(v.text(), "line 2, column 17: /nodes/a/verb"));
  }
  CHECK_THROWS_AS(engine.flow_load("{not json"), ivr::Error);

  engine.register_verb("cxx.lookup", [](ivr::VerbRequest r) { r.complete(); });
  auto fixed = std::string(kBroken);
  fixed.replace(fixed.find("\"zz\""), 4, "\"a\"");
  CHECK(engine.flow_validate(fixed).valid());
  auto loaded = engine.flow_load(fixed, false);
  CHECK(loaded.flow_id == "b");
  CHECK(loaded.version == "1");  // assigned: the document names none
  REQUIRE(engine.flow_list().size() == 1);
  CHECK(engine.flow_list()[0].active);  // a flow's first version is always active
  auto again = engine.flow_load(fixed);
  CHECK(again.version == "2");
  auto flows = engine.flow_list();
  REQUIRE(flows.size() == 2);
  CHECK(flows[0].flow_id == "b");
  CHECK(flows[0].version == "1");
  CHECK(flows[0].nodes == 1);
  CHECK(!flows[0].active);
  CHECK(flows[1].active);  // loaded with activate
  engine.flow_activate("b", "1");
  CHECK(engine.flow_list()[0].active);
  CHECK(!engine.flow_list()[1].active);
  auto e = error_of([&] { engine.flow_activate("b", "9"); });
  CHECK(e.code() == IVR_ENOTFOUND);
  CHECK(error_of([&] { engine.flow_map("", "b"); }).code() == IVR_EINVAL);
  engine.flow_map("4000", "b");
  engine.flow_unmap("4000");
}

TEST_CASE("argument errors of verbs, databases, auth and webhooks name their field") {
  TempDir prompts;
  ivr::Engine engine(test_options(prompts.path));
  auto e = error_of([&] { engine.register_verb("play", [](ivr::VerbRequest) {}); });
  CHECK(e.code() == IVR_EINVAL);
  CHECK(contains(e.what(), "built-in verb"));
  CHECK(error_of([&] { engine.register_verb("a b", [](ivr::VerbRequest) {}); }).code() ==
        IVR_EINVAL);
  CHECK(error_of([&] { engine.register_verb("x", nullptr); }).code() == IVR_EINVAL);

  e = error_of([&] { engine.add_db("local", ivr::DbOptions()); });
  CHECK(e.code() == IVR_EINVAL);
  CHECK(contains(e.what(), "db.local.url: required"));
  CHECK(error_of([&] { engine.add_db("9bad", memory_db()); }).code() == IVR_EINVAL);
  CHECK(error_of([&] { engine.remove_db("nothing"); }).code() == IVR_ENOTFOUND);
  CHECK(error_of([&] { engine.register_db_connector("leads", nullptr); }).code() == IVR_EINVAL);
  engine.add_db("mem", memory_db());
  engine.remove_db("mem");

  CHECK(error_of([&] { engine.set_auth_profiles("{"); }).code() == IVR_EPARSE);
  e = error_of([&] { engine.set_auth_profiles(R"({"crm": {"type": "bearer"}})"); });
  CHECK(e.code() == IVR_EINVAL);
  CHECK(contains(e.what(), "auth.crm"));
  engine.set_auth_profiles(R"({"crm": {"type": "bearer", "token_secret": "crm.token"}})");
  CHECK(error_of([&] { engine.set_secret("bad name!", "x"); }).code() == IVR_EINVAL);
  engine.set_secret("crm.token", "s3cret");
  engine.remove_secret("crm.token");

  ivr::WebhookOptions hook;
  hook.name = "crm";
  hook.url = "http://127.0.0.1:9/hook";
  hook.secrets = {"whsec"};
  e = error_of([&] { engine.set_webhook(hook); });
  CHECK(e.code() == IVR_ESTATE);  // no spool directory: webhooks are off
  CHECK(error_of([&] { engine.webhook_stats(); }).code() == IVR_ESTATE);
}

TEST_CASE("webhooks: set, stats, dead letters, remove") {
  TempDir prompts, spool;
  auto options = test_options(prompts.path);
  options.webhook_spool_dir = spool.path + "/spool";
  ivr::Engine engine(options);
  ivr::WebhookOptions hook;
  hook.name = "crm";
  hook.url = "http://127.0.0.1:9/hook";
  hook.event_types = "call.started,call.ended";
  auto e = error_of([&] { engine.set_webhook(hook); });
  CHECK(e.code() == IVR_EINVAL);
  CHECK(contains(e.what(), "secrets"));
  hook.secrets = {"whsec_old", "whsec_new"};
  engine.set_webhook(hook);
  engine.start();
  auto stats = engine.webhook_stats();
  CHECK(stats.healthy);
  CHECK(stats.published == 0);
  CHECK(engine.webhook_dead_letters().empty());
  std::string none(32, '0');
  CHECK(error_of([&] { engine.webhook_requeue(none); }).code() == IVR_ENOTFOUND);
  CHECK(error_of([&] { engine.webhook_purge(none); }).code() == IVR_ENOTFOUND);
  engine.remove_webhook("crm");
  CHECK(error_of([&] { engine.remove_webhook("crm"); }).code() == IVR_ENOTFOUND);
  engine.stop();
  CHECK(error_of([&] { engine.set_webhook(hook); }).code() == IVR_EGONE);
}

// Two targets on a closed port, no health probes: routing state without any SIP traffic.
static std::string routing_config(const std::string &vici_capacity = "4") {
  return R"({"targets": {
      "vici": {"uris": ["sip:8300@127.0.0.1:9"], "capacity": )" +
         vici_capacity + R"(, "probe": {"enabled": false},
               "availability": {"rule": "idle_agent", "stale_after_s": 600}},
      "five9": {"uris": ["sip:8400@127.0.0.1:9"], "capacity": 2, "probe": {"enabled": false}}},
    "plans": {"sales": {"entries": [{"strategy": "failover", "targets": ["vici", "five9"]}]}}})";
}

TEST_CASE("routing: errors name the field; availability, draining and queue state round trip") {
  TempDir prompts;
  ivr::Engine engine(test_options(prompts.path));

  auto e = error_of([&] {
    engine.set_routing(R"({"targets": {"x": {"uris": ["sip:a@127.0.0.1:9"], "capacity": 0}},
                           "plans": {"p": {"entries": [{"targets": ["x"]}]}}})");
  });
  CHECK(e.code() == IVR_EINVAL);
  CHECK(contains(e.what(), "routing.targets.x.capacity"));
  CHECK(contains(e.what(), "1 to 100000"));
  e = error_of([&] { engine.set_routing("{\"targets\": "); });
  CHECK(e.code() == IVR_EPARSE);
  CHECK(error_of([&] { engine.set_routing(R"({"targets": {}})"); }).code() == IVR_EINVAL);

  // Before start: kept for start; nothing live to read or push to yet.
  engine.set_routing(routing_config());
  ivr::Availability sample;
  sample.agents_available = 3;
  sample.agents_logged_in = 5;
  sample.calls_waiting = 1;
  sample.longest_wait_s = 12;
  CHECK(error_of([&] { engine.push_availability("vici", sample); }).code() == IVR_ESTATE);
  CHECK(error_of([&] { engine.target_state("vici"); }).code() == IVR_ESTATE);
  CHECK(error_of([&] { engine.queue_stats(); }).code() == IVR_ESTATE);

  engine.start();
  ivr::TargetState s = engine.target_state("vici");
  CHECK(s.health == ivr::TargetHealth::up);
  CHECK(std::string(ivr::name(s.health)) == "up");
  CHECK(s.capacity == 4);
  CHECK(s.active == 0);
  CHECK(s.reserved == 0);
  CHECK(s.offered == 0);
  CHECK(s.failed == 0);
  CHECK(!s.availability_fresh);
  CHECK(s.idle_agents == 0);

  engine.push_availability("vici", sample);
  s = engine.target_state("vici");
  CHECK(s.availability_fresh);
  CHECK(s.idle_agents == 3);  // calls_waiting is not subtracted for this target
  engine.mark_availability_stale("vici");
  s = engine.target_state("vici");
  CHECK(!s.availability_fresh);
  CHECK(s.idle_agents == 0);
  engine.push_availability("vici", sample);

  engine.set_target_draining("five9");
  CHECK(engine.target_state("five9").health == ivr::TargetHealth::draining);
  CHECK(std::string(ivr::name(ivr::TargetHealth::draining)) == "draining");
  engine.set_target_draining("five9", false);
  CHECK(engine.target_state("five9").health == ivr::TargetHealth::up);

  ivr::QueueStats q = engine.queue_stats();
  CHECK(q.waiting == 0);
  CHECK(q.offered == 0);
  CHECK(q.oldest_wait_ms == 0);
  CHECK(q.service_interval_ms == -1);
  CHECK(q.enqueued == 0);
  CHECK(q.served == 0);

  for (auto *fn : {+[](ivr::Engine &en) { en.push_availability("nope", ivr::Availability()); },
                   +[](ivr::Engine &en) { en.mark_availability_stale("nope"); },
                   +[](ivr::Engine &en) { en.set_target_draining("nope"); },
                   +[](ivr::Engine &en) { en.target_state("nope"); }}) {
    e = error_of([&] { fn(engine); });
    CHECK(e.code() == IVR_ENOTFOUND);
    CHECK(contains(e.what(), "nope"));
  }

  // A new configuration keeps the live state of targets of the same name; a refused one
  // changes nothing.
  engine.set_routing(routing_config("8"));
  s = engine.target_state("vici");
  CHECK(s.capacity == 8);
  CHECK(s.availability_fresh);
  CHECK(error_of([&] { engine.set_routing(routing_config("-1")); }).code() == IVR_EINVAL);
  CHECK(engine.target_state("vici").capacity == 8);

  CHECK(error_of([] { ivr::Call().queue_position(); }).code() == IVR_EINVAL);
  engine.stop();
  CHECK(error_of([&] { engine.push_availability("vici", sample); }).code() == IVR_EGONE);
  CHECK(error_of([&] { engine.set_routing(routing_config()); }).code() == IVR_EGONE);
}

TEST_CASE("routing events: the version 3 fields are read only from version 3 events") {
  ivr_event c{};
  c.version = 3;
  c.type = IVR_EVENT_CALL_QUEUED;
  c.route_plan = "sales";
  c.route_target = "";
  c.route_uri = "";
  c.route_detail = "no target can take the call: vici full";
  c.queue_position = 2;
  c.queue_priority = 10;
  ivr::Event ev = ivr::Event::from_c(c);
  CHECK(ev.type == ivr::EventType::call_queued);
  CHECK(std::string(ev.type_name()) == "call.queued");
  CHECK(!ev.call);
  CHECK(ev.route_plan == "sales");
  CHECK(ev.route_detail == "no target can take the call: vici full");
  CHECK(ev.queue_position == 2);
  CHECK(ev.queue_priority == 10);

  c.type = IVR_EVENT_ROUTE_ATTEMPT;
  c.route_target = "vici";
  c.route_uri = "sip:8300@127.0.0.1:9";
  c.route_attempt = 1;
  c.sip_code = 486;
  ev = ivr::Event::from_c(c);
  CHECK(ev.type == ivr::EventType::route_attempt);
  CHECK(ev.route_target == "vici");
  CHECK(ev.route_uri == "sip:8300@127.0.0.1:9");
  CHECK(ev.route_attempt == 1);
  CHECK(ev.sip_code == 486);

  c.version = 2;  // an older library: the fields after flow_error are not there
  ev = ivr::Event::from_c(c);
  CHECK(ev.route_plan.empty());
  CHECK(ev.route_target.empty());
  CHECK(ev.route_attempt == 0);
  CHECK(ev.queue_position == 0);

  CHECK(std::string(ivr::name(ivr::EventType::route_decided)) == "route.decided");
  CHECK(std::string(ivr::name(ivr::EventType::route_attempt)) == "route.attempt");
  CHECK(std::string(ivr::name(ivr::EventType::call_delivered)) == "call.delivered");
}

TEST_CASE("register and free cycles release every callback") {
  TempDir prompts;
  for (int i = 0; i < 12; ++i) {
    {
      Probe probe;
      auto options = test_options(prompts.path);
      options.log = [probe](ivr::LogLevel, const std::string &, const std::string &) {};
      ivr::Engine engine(options);
      engine.set_event_callback([probe](const ivr::Event &) {});
      engine.set_event_callback([probe](const ivr::Event &) {});  // frees the first
      engine.register_verb("v.one", [probe](ivr::VerbRequest) {});
      engine.register_verb("v.one", [probe](ivr::VerbRequest) {});  // replaces
      engine.register_verb("v.two", [probe](ivr::VerbRequest) {});
      engine.register_db_connector(
          "one", [probe](ivr::DbQuery) {}, [probe](uint64_t) {});
      engine.register_db_connector("two", [probe](ivr::DbQuery) {});
      engine.remove_db("two");
      if (i % 4 == 0) {  // started engines free their callbacks too
        engine.start();
        if (i == 4) engine.stop();
      }
      ivr::Engine moved(std::move(engine));
      CHECK(g_probes.load() > 1);
    }
    CHECK(g_probes.load() == 0);
  }
}

namespace {

// The flow of the call test: the custom verb picks the exit, a gather reads the caller's
// digits (so the SIPp scenario runs to its end), the host connector scores the lead.
const char *kCallFlow = R"({"flow": "cxx", "version": "1", "start": "hello", "nodes": {
  "hello": {"verb": "answer", "next": "lookup"},
  "lookup": {"verb": "cxx.lookup", "args": {"phone": "{{call.from}}",
             "lead": "{{call.headers.x_lead_id}}"}, "exits": {"vip": "code"},
             "next": "code", "on_error": "oops", "timeout_ms": 5000},
  "oops": {"verb": "gather", "max_digits": 4, "store": "vars.code",
           "next": "failed", "on_no_input": "failed"},
  "failed": {"verb": "hangup", "reason": "verb failed: {{steps.lookup.error}}"},
  "code": {"verb": "gather", "max_digits": 4, "store": "vars.code",
           "next": "score", "on_no_input": "bye"},
  "score": {"verb": "db", "connector": "leads", "query": "lead_score",
            "params": ["{{call.from}}", "{{vars.code}}", null], "timeout_ms": 1000,
            "map": {"score": "score"}, "next": "done", "on_error": "dberr"},
  "done": {"verb": "hangup", "reason": "tier {{steps.lookup.tier}} code {{vars.code}} score {{vars.score}} ratio {{steps.score.row.ratio}} vip {{steps.score.row.vip}} note [{{steps.score.row.note}}]"},
  "dberr": {"verb": "hangup", "reason": "db failed: {{steps.score.reason}}: {{steps.score.error}}"},
  "bye": {"verb": "hangup", "reason": "no input"}}})";

enum class Mode { normal, verb_throws, verb_drops, db_throws, db_silent };

struct CallTest {
  std::mutex mutex;
  std::condition_variable cond;
  std::vector<ivr::Event> events;
  int ended = 0;
  std::atomic<Mode> mode{Mode::normal};
  std::vector<std::thread> threads;
  // what the callbacks saw
  std::string verb, node, phone, lead, header, call_from, statement;
  std::vector<std::optional<std::string>> params;
  size_t arg_count = 0;
  bool arg_missing = false, set_refused = false, twice_refused = false, count_refused = false;
  std::optional<ivr::DbQuery> held;  // a query the host sits on (db_silent)
  std::vector<uint64_t> cancelled;
  uint64_t held_id = 0;

  ~CallTest() { join(); }

  void on_event(const ivr::Event &ev) {
    std::lock_guard lock(mutex);
    events.push_back(ev);
    if (ev.type == ivr::EventType::call_ended) ++ended;
    cond.notify_all();
    if (mode == Mode::db_throws && ev.type == ivr::EventType::call_answered)
      throw std::runtime_error("event handler exploded");
  }

  void on_verb(ivr::VerbRequest r) {
    {
      std::lock_guard lock(mutex);
      verb = r.verb();
      node = r.node();
      phone = r.arg("phone").value_or("(none)");
      lead = r.arg("lead").value_or("(none)");
      arg_missing = !r.arg("nothing");
      arg_count = r.args().size();
      call_from = r.call().from_user();
      header = r.call().header("X-Lead-Id").value_or("(none)");
    }
    if (mode == Mode::verb_throws) throw std::runtime_error("crm exploded");
    if (mode == Mode::verb_drops) return;  // destroyed unfinished: on_error
    std::lock_guard lock(mutex);
    threads.emplace_back([this, r = std::move(r)]() mutable {
      std::this_thread::sleep_for(100ms);
      r.set("tier", "gold");
      bool refused = error_of([&] { r.set("bad name", "x"); }).code() == IVR_EINVAL;
      r.complete("vip");
      bool twice = error_of([&] { r.complete(); }).code() == IVR_ESTATE;
      std::lock_guard lock(mutex);
      set_refused = refused;
      twice_refused = twice && r.completed();
    });
  }

  void on_query(ivr::DbQuery q) {
    {
      std::lock_guard lock(mutex);
      statement = q.statement();
      params = q.params();
    }
    CHECK(q.connector() == "leads");
    if (mode == Mode::db_throws) throw std::runtime_error("db exploded");
    if (mode == Mode::db_silent) {
      std::lock_guard lock(mutex);
      held_id = q.id();
      held = std::move(q);
      return;
    }
    std::lock_guard lock(mutex);
    threads.emplace_back([this, q = std::move(q)]() mutable {
      std::this_thread::sleep_for(50ms);
      q.set_columns({"score", "ratio", "vip", "note"});
      bool refused = contains(error_of([&] {
                                q.add_row({int64_t{87}, 0.5, true});
                              }).what(),
                              "count: 3 values for 4 columns");
      q.add_row({int64_t{87}, 0.5, true, std::monostate{}});
      q.complete();
      std::lock_guard lock(mutex);
      count_refused = refused;
    });
  }

  void on_cancel(uint64_t id) {
    std::lock_guard lock(mutex);
    cancelled.push_back(id);
  }

  // Places one call and waits (bounded) for its call.ended; returns SIPp's status.
  int call(unsigned short port) {
    int before;
    {
      std::lock_guard lock(mutex);
      before = ended;
    }
    int status = place_call(port);
    std::unique_lock lock(mutex);
    CHECK(cond.wait_for(lock, 30s, [&] { return ended > before; }));
    return status;
  }

  void join() {
    std::vector<std::thread> done;
    {
      std::lock_guard lock(mutex);
      done.swap(threads);
    }
    for (auto &t : done) t.join();
  }

  // The last call's events, in order, and how it ended.
  std::vector<ivr::Event> last_call() {
    std::lock_guard lock(mutex);
    std::vector<ivr::Event> out;
    if (events.empty()) return out;
    std::string id;
    for (auto it = events.rbegin(); it != events.rend(); ++it)
      if (it->type == ivr::EventType::call_ended) {
        id = it->call.id();
        break;
      }
    for (auto &ev : events)
      if (ev.call.id() == id) out.push_back(ev);
    return out;
  }
};

std::string end_reason(const std::vector<ivr::Event> &events) {
  return events.empty() ? "(no events)" : events.back().reason;
}

}  // namespace

TEST_CASE("a real call: a C++ verb completed on another thread, a C++ db connector, events") {
  TempDir prompts;
  HandlerCapture handler;
  CallTest t;
  std::optional<ivr::DbQuery> outlived;
  {
    ivr::Engine engine(test_options(prompts.path));
    engine.set_event_callback([&](const ivr::Event &ev) { t.on_event(ev); });
    engine.register_verb("cxx.lookup", [&](ivr::VerbRequest r) { t.on_verb(std::move(r)); });
    engine.register_db_connector(
        "leads", [&](ivr::DbQuery q) { t.on_query(std::move(q)); },
        [&](uint64_t id) { t.on_cancel(id); });
    auto loaded = engine.flow_load(kCallFlow);
    CHECK(loaded.version == "1");
    engine.flow_map("*", "cxx");
    engine.start();
    struct Joiner {  // completions under way finish before the engine goes, even on failure
      CallTest &t;
      ~Joiner() { t.join(); }
    } joiner{t};

    // 1. Everything answers: the verb's exit and value, the connector's typed row.
    CHECK(t.call(engine.sip_port()) == 0);
    t.join();
    auto events = t.last_call();
    REQUIRE(events.size() >= 4);
    CHECK(end_reason(events) == "tier gold code 42 score 87 ratio 0.5 vip true note []");
    CHECK(events.front().type == ivr::EventType::call_started);
    CHECK(std::string(events.front().type_name()) == "call.started");
    CHECK(events.back().type == ivr::EventType::call_ended);
    CHECK(std::string(events.back().type_name()) == "call.ended");
    CHECK(events.back().flow_path == "hello > lookup > code > score > done");
    CHECK(events.back().flow_end == "hangup");
    CHECK(events.back().flow_id == "cxx");
    CHECK(events.back().flow_version == "1");
    CHECK(events.back().end_reason == ivr::EndReason::local_hangup);
    size_t answered = 0, started = 0, ended = 0, steps = 0;
    for (size_t i = 0; i < events.size(); ++i) {
      if (events[i].type == ivr::EventType::call_started) ++started;
      if (events[i].type == ivr::EventType::call_ended) ++ended;
      if (events[i].type == ivr::EventType::flow_step) ++steps;
      if (events[i].type == ivr::EventType::call_answered && answered == 0) answered = i;
    }
    CHECK(started == 1);
    CHECK(ended == 1);
    CHECK(steps >= 5);
    CHECK(answered > 0);  // after call.started, before call.ended
    CHECK(answered < events.size() - 1);
    CHECK(events.back().call.from_user() == "5551234");  // a kept Call stays readable
    {
      std::lock_guard lock(t.mutex);
      CHECK(t.verb == "cxx.lookup");
      CHECK(t.node == "lookup");
      CHECK(t.phone == "5551234");
      CHECK(t.lead == "L-42");
      CHECK(t.header == "L-42");
      CHECK(t.call_from == "5551234");
      CHECK(t.arg_count == 2);
      CHECK(t.arg_missing);
      CHECK(t.set_refused);
      CHECK(t.twice_refused);
      CHECK(t.count_refused);
      CHECK(t.statement == "lead_score");
      REQUIRE(t.params.size() == 3);
      CHECK(t.params[0] == "5551234");
      CHECK(t.params[1] == "42");
      CHECK(!t.params[2].has_value());  // null in the flow: SQL NULL
    }

    // 2. The verb throws: its on_error, with the exception's message; reported.
    t.mode = Mode::verb_throws;
    CHECK(t.call(engine.sip_port()) == 0);
    events = t.last_call();
    CHECK(end_reason(events) == "verb failed: cxx.lookup: crm exploded");
    CHECK(events.back().flow_path == "hello > lookup > oops > failed");
    CHECK(handler.has("custom verb \"cxx.lookup\"", "crm exploded"));

    // 3. A request dropped unfinished takes on_error too.
    t.mode = Mode::verb_drops;
    CHECK(t.call(engine.sip_port()) == 0);
    CHECK(contains(end_reason(t.last_call()), "dropped the verb request without completing"));

    // 4. The connector throws: the db step fails with reason query and the message; an
    // event callback that throws is reported and the call goes on.
    t.mode = Mode::db_throws;
    CHECK(t.call(engine.sip_port()) == 0);
    t.join();
    auto reason = end_reason(t.last_call());
    CHECK(contains(reason, "db failed: query: "));
    CHECK(contains(reason, "db exploded"));
    CHECK(handler.has("db connector \"leads\"", "db exploded"));
    CHECK(handler.has("event callback", "event handler exploded"));

    // 5. The host sits on the query: the step times out, the cancel callback names it, and
    // the query, kept past the engine, is failed by the wrapper when the engine goes.
    t.mode = Mode::db_silent;
    CHECK(t.call(engine.sip_port()) == 0);
    CHECK(contains(end_reason(t.last_call()), "db failed: timeout"));
    {
      std::lock_guard lock(t.mutex);
      REQUIRE(t.held.has_value());
      CHECK(!t.held->completed());
      CHECK(t.cancelled == std::vector<uint64_t>{t.held_id});
      outlived = std::move(t.held);
    }
    engine.stop("done");
  }
  REQUIRE(outlived.has_value());
  CHECK(outlived->completed());
  CHECK(error_of([&] { outlived->complete(); }).code() == IVR_ESTATE);
  CHECK(outlived->statement() == "lead_score");  // copies stay readable
  t.join();
}
