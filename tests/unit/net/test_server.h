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
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

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

    int out[2], in[2];
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(in, O_CLOEXEC) != 0)
      throw std::runtime_error("pipe2 failed");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);

    std::vector<std::string> args = {"/usr/bin/python3",
                                     IVR_SOURCE_DIR "/tests/net/http_test_server.py",
                                     "--exit-on-stdin-eof", "--dir", dir_};
    if (options.tls) args.emplace_back("--tls");
    if (options.mtls) args.emplace_back("--mtls");
    if (std::getenv("IVR_HTTP_TEST_VERBOSE")) args.emplace_back("--verbose");
    std::vector<char *> argv;
    for (auto &a : args) argv.push_back(a.data());
    argv.push_back(nullptr);

    const int rc = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(out[1]);
    close(in[0]);
    stdin_ = in[1];  // closing it tells the server to exit, even if we crash
    if (rc != 0) {
      close(out[0]);
      pid_ = -1;
      stop();
      throw std::runtime_error("posix_spawn python3 failed");
    }
    try {
      read_banner(out[0]);
    } catch (...) {
      close(out[0]);
      stop();
      throw;
    }
    close(out[0]);
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
    if (stdin_ >= 0) close(stdin_);
    stdin_ = -1;
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      int status = 0;
      while (waitpid(pid_, &status, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() > deadline) {
          kill(pid_, SIGKILL);
          waitpid(pid_, &status, 0);
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      pid_ = -1;
    }
    std::error_code ignored;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
    dir_.clear();
  }

  static std::string base(const char *scheme, uint16_t port) {
    return std::string(scheme) + "://127.0.0.1:" + std::to_string(port);
  }

  // Reads "key value" lines up to "ready" (bounded: the CA is made on the way).
  void read_banner(int fd) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    std::string buffer;
    for (;;) {
      size_t eol;
      while ((eol = buffer.find('\n')) != std::string::npos) {
        const std::string line = buffer.substr(0, eol);
        buffer.erase(0, eol + 1);
        if (line == "ready") return;
        const size_t space = line.find(' ');
        const std::string key = line.substr(0, space);
        const std::string value = space == std::string::npos ? "" : line.substr(space + 1);
        if (key == "listening") port_ = static_cast<uint16_t>(std::stoi(value));
        if (key == "listening-tls") tls_port_ = static_cast<uint16_t>(std::stoi(value));
        if (key == "listening-mtls") mtls_port_ = static_cast<uint16_t>(std::stoi(value));
        if (key == "ca") ca_file_ = value;
        if (key == "client-cert") client_cert_ = value;
        if (key == "client-key") client_key_ = value;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) throw std::runtime_error("http_test_server.py did not start");
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[512];
      const ssize_t n = read(fd, chunk, sizeof chunk);
      if (n <= 0) throw std::runtime_error("http_test_server.py exited before 'ready'");
      buffer.append(chunk, static_cast<size_t>(n));
    }
  }

  pid_t pid_ = -1;
  int stdin_ = -1;
  std::string dir_;
  uint16_t port_ = 0, tls_port_ = 0, mtls_port_ = 0;
  std::string ca_file_, client_cert_, client_key_;
};

}  // namespace ivr::test
