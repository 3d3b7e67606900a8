// Starts tests/net/http_test_server.py as a child process for a test and stops it after.
//
//   TestHttpServer server({.tls = true});
//   client.start({.url = server.url("/echo")}, ...);
//
// TestLoop is an event_base for one test, run in bounded steps.
//
// The server binds 127.0.0.1 on kernel-chosen ports and reports them on stdout; TLS
// material (a throwaway CA, a server certificate for 127.0.0.1, a client certificate) is
// generated into a temporary directory that the destructor removes.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "script_process.h"

extern char **environ;

namespace ivr::test {

// One event_base per test. Every run is bounded by a safety timer.
class TestLoop {
 public:
  TestLoop() : base_(event_base_new()) {
    if (!base_) throw std::runtime_error("event_base_new failed");
  }
  ~TestLoop() {
    for (auto &p : pending_) event_free(p->ev);
    pending_.clear();
    event_base_free(base_);
  }
  TestLoop(const TestLoop &) = delete;
  TestLoop &operator=(const TestLoop &) = delete;
  event_base *base() const { return base_; }

  // Runs the loop until done() holds or `limit` passes (the safety net); returns done().
  bool run_until(const std::function<bool()> &done,
                 std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    bool expired = false;
    event *guard = evtimer_new(base_, &TestLoop::on_expire, &expired);
    const timeval tv = to_timeval(limit);
    evtimer_add(guard, &tv);
    while (!done() && !expired) event_base_loop(base_, EVLOOP_ONCE);
    event_free(guard);
    return done();
  }
  // Runs the loop for a while (to let time pass, or to show that nothing else happens).
  void run_for(std::chrono::milliseconds span) {
    run_until([] { return false; }, span);
  }
  // Calls fn once after `delay`, from the loop (dropped if the loop is freed first).
  void after(std::chrono::milliseconds delay, std::function<void()> fn) {
    auto p = std::make_unique<Pending>();
    p->loop = this;
    p->fn = std::move(fn);
    p->ev = evtimer_new(base_, &TestLoop::on_pending, p.get());
    const timeval tv = to_timeval(delay);
    evtimer_add(p->ev, &tv);
    pending_.push_back(std::move(p));
  }

 private:
  struct Pending {
    TestLoop *loop = nullptr;
    event *ev = nullptr;
    std::function<void()> fn;
  };
  static void on_pending(evutil_socket_t, short, void *arg) {
    auto *p = static_cast<Pending *>(arg);
    std::function<void()> fn = std::move(p->fn);
    TestLoop *loop = p->loop;
    event_free(p->ev);
    loop->pending_.remove_if([p](const std::unique_ptr<Pending> &q) { return q.get() == p; });
    fn();
  }
  static timeval to_timeval(std::chrono::milliseconds d) {
    return timeval{static_cast<time_t>(d.count() / 1000),
                   static_cast<suseconds_t>(d.count() % 1000 * 1000)};
  }
  static void on_expire(evutil_socket_t, short, void *arg) { *static_cast<bool *>(arg) = true; }
  event_base *base_;
  std::list<std::unique_ptr<Pending>> pending_;
};

struct TestHttpServerOptions {
  bool tls = false;   // also serve HTTPS (no client certificate asked for)
  bool mtls = false;  // also serve HTTPS that requires a client certificate
};

class TestHttpServer {
 public:
  using Options = TestHttpServerOptions;

  explicit TestHttpServer(Options options = {}) {
    char dir_template[] = "/tmp/ivr-http-test-XXXXXX";
    if (!mkdtemp(dir_template)) throw std::runtime_error("mkdtemp failed");
    dir_ = dir_template;

    std::vector<std::string> args = {IVR_SOURCE_DIR "/tests/net/http_test_server.py", "--dir",
                                     dir_};
    if (options.tls) args.emplace_back("--tls");
    if (options.mtls) args.emplace_back("--mtls");
    if (std::getenv("IVR_HTTP_TEST_VERBOSE")) args.emplace_back("--verbose");
    try {
      process_.emplace(std::move(args));
    } catch (...) {
      stop();
      throw;
    }
    port_ = process_->port("listening");
    tls_port_ = process_->port("listening-tls");
    mtls_port_ = process_->port("listening-mtls");
    ca_file_ = process_->value("ca");
    client_cert_ = process_->value("client-cert");
    client_key_ = process_->value("client-key");
  }

  ~TestHttpServer() { stop(); }

  TestHttpServer(const TestHttpServer &) = delete;
  TestHttpServer &operator=(const TestHttpServer &) = delete;

  uint16_t port() const { return port_; }
  uint16_t tls_port() const { return tls_port_; }
  uint16_t mtls_port() const { return mtls_port_; }
  const std::string &ca_file() const { return ca_file_; }
  const std::string &client_cert() const { return client_cert_; }
  const std::string &client_key() const { return client_key_; }

  std::string url(std::string_view path) const { return base("http", port_) + std::string(path); }
  std::string tls_url(std::string_view path) const {
    return base("https", tls_port_) + std::string(path);
  }
  std::string mtls_url(std::string_view path) const {
    return base("https", mtls_port_) + std::string(path);
  }

 private:
  void stop() {
    process_.reset();
    std::error_code ignored;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
    dir_.clear();
  }

  static std::string base(const char *scheme, uint16_t port) {
    return std::string(scheme) + "://127.0.0.1:" + std::to_string(port);
  }

  std::optional<ScriptProcess> process_;  // the CA is made while it starts
  std::string dir_;
  uint16_t port_ = 0, tls_port_ = 0, mtls_port_ = 0;
  std::string ca_file_, client_cert_, client_key_;
};

}  // namespace ivr::test
