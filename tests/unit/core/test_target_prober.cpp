// SipStack::send_options and TargetProber against real SIPp UAS peers on loopback: one answers
// 200 (scenarios uas_options.xml), one 503 (uas_options_503.xml); a bound socket that never
// answers plays the silent host.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../loopback_ports.h"
#include "core/event_loop.h"
#include "core/target_prober.h"
#include "routing/target_pool.h"
#include "sip/sip_stack.h"

extern char **environ;

namespace {

using ivr::test::bind_loopback;
using ivr::test::free_media_port;
using ivr::test::free_port;

using namespace std::chrono_literals;
using ivr::core::EventLoop;
using ivr::core::TargetProber;
using ivr::sip::OptionsResult;
using Outcome = ivr::sip::OptionsResult::Outcome;

const std::filesystem::path kScenarios =
    std::filesystem::path(IVR_SOURCE_DIR) / "tests" / "integration" / "scenarios";
constexpr const char *kSipp = "/usr/bin/sipp";

ivr::LoggerPtr test_logger() {
  const char *env = std::getenv("IVR_TEST_SIP_DEBUG");
  return ivr::make_stderr_logger(env && *env == '1' ? ivr::LogLevel::debug : ivr::LogLevel::warn);
}

// A SIPp UAS on 127.0.0.1:port answering every OPTIONS per its scenario, until destroyed
// (killed then; its own -timeout bounds it if the test dies first).
class SippUas {
 public:
  SippUas(const std::string &scenario, uint16_t port) : port_(port) {
    log_ = std::string(IVR_TEST_BUILD_DIR) + "/sipp_" + scenario + "_" +
           std::to_string(::getpid()) + "_" + std::to_string(port) + ".log";
    std::vector<std::string> args = {kSipp,
                                     "-sf",
                                     (kScenarios / (scenario + ".xml")).string(),
                                     "-i",
                                     "127.0.0.1",
                                     "-p",
                                     std::to_string(port),
                                     "-mp",
                                     std::to_string(free_media_port()),
                                     "-t",
                                     "u1",
                                     "-nostdin",
                                     "-timeout",
                                     "60s"};
    std::vector<char *> argv;
    for (auto &a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);  // Sofia's sockets stay ours
    int rc = posix_spawn(&pid_, kSipp, &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    REQUIRE_MESSAGE(rc == 0, "cannot spawn sipp: " << std::strerror(rc));
    // Ready once SIPp holds its port (bounded).
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < deadline) {
      int fd = bind_loopback(SOCK_DGRAM, port, nullptr);
      if (fd < 0) return;
      ::close(fd);
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        FAIL("sipp exited at start: " << output());
      }
      std::this_thread::sleep_for(20ms);
    }
    FAIL("sipp did not bind 127.0.0.1:" << port << ": " << output());
  }
  SippUas(const SippUas &) = delete;
  SippUas &operator=(const SippUas &) = delete;
  ~SippUas() { stop(); }
  void stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  std::string uri() const { return "sip:ping@127.0.0.1:" + std::to_string(port_); }
  std::string output() const {
    std::ifstream in(log_);
    std::stringstream s;
    s << in.rdbuf();
    std::string t = s.str();
    return t.size() > 3000 ? t.substr(t.size() - 3000) : t;
  }

 private:
  uint16_t port_;
  pid_t pid_ = -1;
  std::string log_;
};

// An engine stand-in: the loop, and a SIP stack whose sink delivers probe results on it.
struct Rig {
  Rig() {
    auto created = EventLoop::create();
    REQUIRE(created.ok());
    loop = std::move(*created);
    loop->start();
    ivr::sip::SipOptions o;
    o.address = "127.0.0.1";
    o.port = 0;
    o.logger = test_logger();
    o.sink = [this](ivr::sip::SipEvent &&ev) {
      if (ev.kind != ivr::sip::SipEvent::Kind::options) return;
      loop->post([ev = std::move(ev)]() mutable {
        if (ev.options_done) ev.options_done(std::move(ev.options));
      });
    };
    auto started = ivr::sip::SipStack::start(std::move(o));
    if (!started) FAIL("SipStack::start: " << started.error().message);
    sip = std::move(*started);
  }
  ~Rig() {
    on_loop([this] { prober.reset(); });
    sip->shutdown("test over");
    loop->stop();
  }

  // Runs fn on the loop thread and waits for it (bounded).
  template <typename F>
  auto on_loop(F fn) -> decltype(fn()) {
    std::packaged_task<decltype(fn())()> task(std::move(fn));
    auto result = task.get_future();
    REQUIRE(loop->post([&task] { task(); }));
    REQUIRE(result.wait_for(10s) == std::future_status::ready);
    return result.get();
  }

  OptionsResult options(const std::string &uri, uint32_t timeout_ms) {
    auto promise = std::make_shared<std::promise<OptionsResult>>();
    auto result = promise->get_future();
    REQUIRE(sip->send_options(uri, timeout_ms, [this, promise](OptionsResult r) {
      CHECK(loop->in_loop_thread());
      promise->set_value(std::move(r));
    }));
    REQUIRE(result.wait_for(std::chrono::milliseconds(timeout_ms) + 5s) ==
            std::future_status::ready);
    return result.get();
  }

  // Waits (bounded) until pred, evaluated on the loop, holds.
  template <typename P>
  bool wait_for(P pred, std::chrono::milliseconds limit = 10s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (on_loop(pred)) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

  std::unique_ptr<EventLoop> loop;
  std::unique_ptr<ivr::sip::SipStack> sip;
  ivr::routing::TargetPool pool;
  std::unique_ptr<TargetProber> prober;
};

ivr::routing::TargetConfig target(const std::string &name, const std::string &uri) {
  ivr::routing::TargetConfig t;
  t.name = name;
  t.uris.push_back({uri, ivr::routing::Transport::udp});
  t.probe.interval_s = 1;  // overridden by ProberOptions::interval_ms below
  t.probe.down_after = 3;
  t.probe.up_after = 2;
  return t;
}

}  // namespace

TEST_CASE("send_options: 200, 503, no answer, closed port") {
  Rig rig;
  SippUas ok("uas_options", free_port());
  SippUas busy("uas_options_503", free_port());

  OptionsResult r = rig.options(ok.uri(), 2000);
  CHECK_MESSAGE(r.outcome == Outcome::response, ivr::core::describe_probe(r) << ok.output());
  CHECK(r.status == 200);
  CHECK(r.phrase == "OK");
  CHECK(r.uri == ok.uri());
  CHECK(ivr::core::probe_success(r));

  r = rig.options(busy.uri(), 2000);
  CHECK(r.outcome == Outcome::response);
  CHECK(r.status == 503);
  CHECK(r.phrase == "Service Unavailable");
  CHECK_FALSE(ivr::core::probe_success(r));

  // A host that swallows the request: our own timer ends the probe long before timer F.
  uint16_t silent_port = 0;
  int silent = bind_loopback(SOCK_DGRAM, 0, &silent_port);
  REQUIRE(silent >= 0);
  r = rig.options("sip:ping@127.0.0.1:" + std::to_string(silent_port), 300);
  ::close(silent);
  CHECK(r.outcome == Outcome::timeout);
  CHECK(r.rtt_ms >= 250);
  CHECK_FALSE(ivr::core::probe_success(r));

  // Nobody on the port: whatever Sofia makes of it (ICMP error or silence), a failure.
  r = rig.options("sip:ping@127.0.0.1:" + std::to_string(free_port()), 500);
  MESSAGE("closed port: " << ivr::core::describe_probe(r));
  CHECK(r.outcome == Outcome::transport_error);  // ICMP port unreachable on loopback
  CHECK_FALSE(ivr::core::probe_success(r));

  // Many at once, each answered once.
  std::vector<std::future<OptionsResult>> many;
  for (int i = 0; i < 20; ++i) {
    auto p = std::make_shared<std::promise<OptionsResult>>();
    many.push_back(p->get_future());
    REQUIRE(rig.sip->send_options(ok.uri(), 2000, [p](OptionsResult x) { p->set_value(x); }));
  }
  for (auto &f : many) {
    REQUIRE(f.wait_for(10s) == std::future_status::ready);
    CHECK(f.get().status == 200);
  }
}

TEST_CASE("send_options: probes in flight at shutdown are cancelled; a stopped stack refuses") {
  Rig rig;
  uint16_t silent_port = 0;
  int silent = bind_loopback(SOCK_DGRAM, 0, &silent_port);
  REQUIRE(silent >= 0);
  auto p = std::make_shared<std::promise<OptionsResult>>();
  auto f = p->get_future();
  REQUIRE(rig.sip->send_options("sip:ping@127.0.0.1:" + std::to_string(silent_port), 30000,
                                [p](OptionsResult x) { p->set_value(x); }));
  std::this_thread::sleep_for(100ms);
  rig.sip->shutdown("test");
  REQUIRE(f.wait_for(5s) == std::future_status::ready);
  CHECK(f.get().outcome == Outcome::cancelled);
  CHECK_FALSE(rig.sip->send_options("sip:x@127.0.0.1:1", 100, [](OptionsResult) {}));
  ::close(silent);
}

TEST_CASE("TargetProber: 200 stays up, 503 and silence go down, recovery comes back up") {
  Rig rig;
  const uint16_t busy_port = free_port();
  SippUas good("uas_options", free_port());
  std::optional<SippUas> busy;
  busy.emplace("uas_options_503", busy_port);
  uint16_t silent_port = 0;
  int silent = bind_loopback(SOCK_DGRAM, 0, &silent_port);
  REQUIRE(silent >= 0);

  std::vector<std::string> changes;  // loop thread only
  REQUIRE(rig.pool
              .configure({target("good", good.uri()), target("busy", busy->uri()),
                          target("silent", "sip:ping@127.0.0.1:" + std::to_string(silent_port))},
                         std::chrono::steady_clock::now())
              .ok());
  rig.on_loop([&] {
    ivr::core::ProberOptions o;
    o.interval_ms = 300;
    o.timeout_ms = 250;  // generous for a loaded machine; the silent host still times out
    o.logger = test_logger();
    o.on_change = [&](const ivr::routing::HealthChange &c, const std::string &why) {
      changes.push_back(rig.pool.name(c.target) + " " + ivr::routing::health_name(c.to) + " (" +
                        why + ")");
    };
    rig.prober = std::make_unique<TargetProber>(rig.loop->base(), *rig.sip, rig.pool, o);
    rig.prober->start();
  });

  auto health = [&](const char *name) {
    return rig.on_loop([&] { return rig.pool.health(*rig.pool.find(name)); });
  };
  auto stats = [&](const char *name) {
    return rig.on_loop([&] { return *rig.prober->stats(name); });
  };

  // busy: 503 three times -> down; silent: three timeouts -> down.
  CHECK(rig.wait_for(
      [&] { return rig.pool.health(*rig.pool.find("busy")) == ivr::routing::Health::down; }));
  CHECK(rig.wait_for(
      [&] { return rig.pool.health(*rig.pool.find("silent")) == ivr::routing::Health::down; }));
  auto b = stats("busy");
  CHECK(b.failures >= 3);
  CHECK(b.last.find("503 Service Unavailable") != std::string::npos);
  CHECK(stats("silent").last.find("timeout") != std::string::npos);

  // good: several successes and never a change.
  CHECK(rig.wait_for([&] { return rig.prober->stats("good")->successes >= 3; }));
  CHECK(health("good") == ivr::routing::Health::up);
  CHECK(stats("good").successes > stats("good").failures);

  // busy recovers: a 200 peer on the same port -> up after up_after (2) successes.
  busy.reset();
  SippUas recovered("uas_options", busy_port);
  CHECK(rig.wait_for(
      [&] { return rig.pool.health(*rig.pool.find("busy")) == ivr::routing::Health::up; }));
  CHECK(stats("busy").successes >= 2);

  auto log = rig.on_loop([&] { return changes; });
  std::string all;
  for (auto &c : log) all += c + "\n";
  MESSAGE(all);
  CHECK(all.find("busy down (3 failures: 503 Service Unavailable") != std::string::npos);
  CHECK(all.find("silent down (3 failures: timeout") != std::string::npos);
  CHECK(all.find("busy up (2 successes: 200 OK") != std::string::npos);
  CHECK(all.find("good") == std::string::npos);
  ::close(silent);
}

TEST_CASE("probe_success: 2xx and 3xx-4xx (but 408) are up; 408, 5xx, 6xx, timeouts are not") {
  auto response = [](int status) {
    OptionsResult r;
    r.outcome = Outcome::response;
    r.status = status;
    return ivr::core::probe_success(r);
  };
  for (int s : {200, 202, 302, 401, 403, 404, 405, 407, 481, 488}) CHECK_MESSAGE(response(s), s);
  for (int s : {408, 500, 501, 503, 600, 603}) CHECK_MESSAGE(!response(s), s);
  OptionsResult local;
  local.status = 200;  // never a success unless the peer answered
  for (Outcome o : {Outcome::timeout, Outcome::transport_error, Outcome::cancelled}) {
    local.outcome = o;
    CHECK_FALSE(ivr::core::probe_success(local));
  }
  local.outcome = Outcome::timeout;
  local.rtt_ms = 150;
  local.status = 408;
  local.phrase = "Request Timeout";
  CHECK(ivr::core::describe_probe(local) == "timeout after 150 ms (408 Request Timeout)");
}
