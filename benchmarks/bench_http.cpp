// Benchmark for lib/net (issue 4, item 8): what an HTTP lookup adds to a call's decision.
// A loopback HTTP server (libevent's evhttp, its own thread and event_base) answers a
// CRM-like JSON body and times its own part of every request (callback entry to reply
// written); the client side runs on the main thread's event_base, like the engine loop, and
// times every lookup from fetch()/start() to its callback. Measured:
//   (a) sequential lookups through a blocking raw socket (the floor), the bare HttpClient and
//       the HttpService, interleaved: total latency and added latency (total - server's own);
//       again with an artificial service delay; then (a2) each path alone, for the CPU
//       time per lookup of the client and server threads;
//   (b) HttpService cache hits (fetch() to callback);
//   (c) rounds of N concurrent lookups issued at once: time until all complete, per-lookup
//       latency, connections the server saw, errors;
//   (d) ResponseMap::apply on the answer body.
// Each part also reports the client and server threads' CPU time and run-queue wait
// (/proc/self/task/<tid>/schedstat), since on a shared 2-core VM the wait sets the p99.
// Self-contained: std::chrono::steady_clock only, no benchmark library.
// Results and how to read them: docs/benchmarks.md, "HTTP lookups".
//
//   bench-http [--lookups N] [--delay-us D] [--delay-lookups N] [--hits N]
//              [--concurrent N] [--rounds R] [--per-host A,B,...] [--maps N]
//              [--precise-timer]
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include "net/http_client.h"
#include "net/http_service.h"
#include "net/response_map.h"

namespace {

using Clock = std::chrono::steady_clock;
using ivr::net::FetchRequest;
using ivr::net::FetchResult;
using ivr::net::HttpClient;
using ivr::net::HttpClientOptions;
using ivr::net::HttpErrc;
using ivr::net::HttpRequest;
using ivr::net::HttpResponse;
using ivr::net::HttpService;
using ivr::net::HttpServiceOptions;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

[[noreturn]] void die(const std::string &why) {
  std::fprintf(stderr, "bench-http: %s\n", why.c_str());
  std::exit(1);
}

pid_t thread_id() {
  return static_cast<pid_t>(::syscall(SYS_gettid));
}

// One thread's scheduler account (/proc/self/task/<tid>/schedstat): time on a CPU, time
// runnable but waiting for one (another task had it), and how many times it got one.
struct SchedStat {
  int64_t cpu_ns = 0, wait_ns = 0, slices = 0;
  SchedStat operator-(const SchedStat &o) const {
    return {cpu_ns - o.cpu_ns, wait_ns - o.wait_ns, slices - o.slices};
  }
};
SchedStat sched_stat(pid_t tid) {
  SchedStat s;
  std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/schedstat");
  in >> s.cpu_ns >> s.wait_ns >> s.slices;
  return s;
}

// A CRM lookup answer, about 300 bytes.
constexpr std::string_view kBody =
    R"({"customer":{"id":"C-0012345678","name":"Ada Lovelace","tier":"gold",)"
    R"("language":"en-GB","account":{"number":"4410-2231-99","balance":"1250.40",)"
    R"("currency":"GBP","overdue":false},"open_tickets":2,"last_order":{"id":987654321,)"
    R"("status":"shipped","eta":"2026-12-04"},"agent":{"id":"a-117","queue":"priority"},)"
    R"("flags":["vip","callback_ok"]}})";

// ---- statistics ----

struct Summary {
  size_t count = 0;
  double p50 = 0, p90 = 0, p99 = 0, max = 0, mean = 0;  // in the samples' unit
};

// Nearest-rank percentiles.
Summary summarize(std::vector<double> v) {
  Summary s;
  s.count = v.size();
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  auto rank = [&](double q) {
    size_t r = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
    return v[std::min(v.size(), std::max<size_t>(r, 1)) - 1];
  };
  s.p50 = rank(0.50);
  s.p90 = rank(0.90);
  s.p99 = rank(0.99);
  s.max = v.back();
  double sum = 0;
  for (double x : v) sum += x;
  s.mean = sum / static_cast<double>(v.size());
  return s;
}

// ---- machine noise ----

// How much of a spinning thread's time the machine takes away (other tasks, interrupts, the
// hypervisor): every stretch of more than 5 us between two clock reads counts as lost. Every
// latency below that overlaps such a stretch grows by its length.
void print_machine_noise() {
  constexpr int64_t kThresholdNs = 5000;
  constexpr int64_t kSpanNs = 1'000'000'000;
  std::vector<double> lost;
  lost.reserve(1 << 16);
  int64_t reads = 0;
  const int64_t begin = now_ns();
  int64_t last = begin;
  while (last - begin < kSpanNs) {
    int64_t t = now_ns();
    ++reads;
    if (t - last > kThresholdNs && lost.size() < lost.capacity())
      lost.push_back(static_cast<double>(t - last));
    last = t;
  }
  const double span = static_cast<double>(last - begin);
  double lost_ns = 0;
  for (double g : lost) lost_ns += g;
  Summary g = summarize(lost);
  std::printf(
      "machine: spinning %.2f s: %zu stretches > 5 us lost (median %.1f us, p99 %.1f us, "
      "longest %.1f us), %.1f %% of the time; steady_clock::now() %.1f ns\n",
      span / 1e9, lost.size(), g.p50 / 1e3, g.p99 / 1e3, g.max / 1e3, 100.0 * lost_ns / span,
      (span - lost_ns) / static_cast<double>(reads));
}

// ---- libevent handles ----

struct BaseFree {
  void operator()(event_base *b) const { event_base_free(b); }
};
struct HttpFree {
  void operator()(evhttp *h) const { evhttp_free(h); }
};
struct EventFree {
  void operator()(event *e) const { event_free(e); }
};
using BasePtr = std::unique_ptr<event_base, BaseFree>;
using HttpPtr = std::unique_ptr<evhttp, HttpFree>;
using EventPtr = std::unique_ptr<event, EventFree>;

struct ConfigFree {
  void operator()(event_config *c) const { event_config_free(c); }
};

// precise: EVENT_BASE_FLAG_PRECISE_TIMER; otherwise what event_base_new() makes, as the
// engine's loop does.
BasePtr make_base(bool precise) {
  std::unique_ptr<event_config, ConfigFree> cfg(event_config_new());
  if (!cfg) die("event_config_new failed");
  if (precise) event_config_set_flag(cfg.get(), EVENT_BASE_FLAG_PRECISE_TIMER);
  BasePtr base(event_base_new_with_config(cfg.get()));
  if (!base) die("event_base_new_with_config failed");
  return base;
}

// An owned file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd &&o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd &operator=(Fd &&o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  ~Fd() { reset(); }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// A listening TCP socket on 127.0.0.1, a port picked by the kernel.
Fd listen_loopback(int backlog, bool nonblocking, uint16_t &port) {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0));
  if (fd.get() < 0) die(std::string("socket: ") + std::strerror(errno));
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd.get(), reinterpret_cast<sockaddr *>(&a), sizeof a) != 0 ||
      ::listen(fd.get(), backlog) != 0)
    die(std::string("bind/listen: ") + std::strerror(errno));
  socklen_t len = sizeof a;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr *>(&a), &len);
  port = ntohs(a.sin_port);
  return fd;
}

Fd connect_loopback(uint16_t port) {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (fd.get() < 0 || ::connect(fd.get(), reinterpret_cast<sockaddr *>(&a), sizeof a) != 0)
    die(std::string("connect: ") + std::strerror(errno));
  int one = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

// ---- the loopback server ----

// Answers GET /crm/lookup?...&n=<sequence> with kBody. Every request carries a distinct
// sequence number so the client can pair its own latency with the server's own time for the
// same request. Runs its own event_base on its own thread.
class LoopbackServer {
 public:
  explicit LoopbackServer(size_t capacity) : own_ns_(capacity, -1), slots_(capacity) {
    // A precise clock, so the artificial delay is what was asked for: by default libevent
    // reads CLOCK_MONOTONIC_COARSE, which moves in jiffies (4 ms here) and makes a 1 ms
    // timer fire after up to 4 ms.
    base_ = make_base(true);
    http_.reset(evhttp_new(base_.get()));
    if (!base_ || !http_) die("server: evhttp_new failed");
    evhttp_set_gencb(http_.get(), &LoopbackServer::on_request, this);
    // Our own listener: evhttp_bind_socket's backlog (128) would drop SYNs when hundreds of
    // connections open at once. evhttp owns and closes the fd from here on.
    Fd fd = listen_loopback(4096, true, port_);
    if (!evhttp_accept_socket_with_handle(http_.get(), fd.get())) die("server: accept socket");
    fd.release();
    thread_ = std::thread([this] {
      tid_.store(thread_id());
      event_base_dispatch(base_.get());
    });
    while (tid_.load() == 0) std::this_thread::yield();
  }
  ~LoopbackServer() {
    event_base_loopbreak(base_.get());  // thread-safe: evthread_use_pthreads() ran first
    thread_.join();
    http_.reset();
    base_.reset();
  }
  LoopbackServer(const LoopbackServer &) = delete;
  LoopbackServer &operator=(const LoopbackServer &) = delete;

  uint16_t port() const { return port_; }
  pid_t tid() const { return tid_.load(); }
  size_t capacity() const { return own_ns_.size(); }
  // Change only while nothing is in flight.
  void set_delay_us(int us) { delay_us_.store(us, std::memory_order_relaxed); }
  uint64_t completed() const { return completed_.load(std::memory_order_acquire); }
  uint64_t rejected() const { return rejected_.load(std::memory_order_relaxed); }
  // The server notes a reply as sent after the client may already have it: wait for it.
  void wait_completed(uint64_t total) const {
    auto limit = Clock::now() + std::chrono::seconds(30);
    while (completed() < total) {
      if (Clock::now() > limit) die("server: replies never completed");
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
  // Callback entry to reply written, in ns; -1 if not (yet) known.
  int64_t own_ns(uint64_t n) const { return n < own_ns_.size() ? own_ns_[n] : -1; }

  // Distinct client ports (= connections) since the last reset, and ever.
  void reset_round_ports() {
    std::lock_guard lock(ports_mu_);
    round_ports_.clear();
  }
  size_t round_ports() {
    std::lock_guard lock(ports_mu_);
    return round_ports_.size();
  }
  size_t all_ports() {
    std::lock_guard lock(ports_mu_);
    return all_ports_.size();
  }

 private:
  struct Slot {
    LoopbackServer *server = nullptr;
    evhttp_request *req = nullptr;
    int64_t start_ns = 0;
    uint64_t n = 0;
  };

  static uint64_t sequence_of(const char *uri) {
    const char *q = uri ? std::strstr(uri, "&n=") : nullptr;
    if (!q) return UINT64_MAX;
    return std::strtoull(q + 3, nullptr, 10);
  }

  static void on_request(evhttp_request *req, void *arg) {
    const int64_t start = now_ns();
    auto &self = *static_cast<LoopbackServer *>(arg);
    const uint64_t n = sequence_of(evhttp_request_get_uri(req));
    if (n >= self.slots_.size()) {
      self.rejected_.fetch_add(1, std::memory_order_relaxed);
      evhttp_send_error(req, 404, "no sequence number");
      return;
    }
    Slot &slot = self.slots_[n];
    slot = Slot{&self, req, start, n};
    const int delay = self.delay_us_.load(std::memory_order_relaxed);
    if (delay <= 0) return self.reply(slot);
    timeval tv{delay / 1000000, delay % 1000000};
    event_base_once(self.base_.get(), -1, EV_TIMEOUT, &LoopbackServer::on_delay_done, &slot, &tv);
  }
  static void on_delay_done(evutil_socket_t, short, void *arg) {
    auto &slot = *static_cast<Slot *>(arg);
    slot.server->reply(slot);
  }
  void reply(Slot &slot) {
    evbuffer *out = evbuffer_new();
    evbuffer_add_reference(out, kBody.data(), kBody.size(), nullptr, nullptr);
    evhttp_add_header(evhttp_request_get_output_headers(slot.req), "Content-Type",
                      "application/json");
    evhttp_request_set_on_complete_cb(slot.req, &LoopbackServer::on_complete, &slot);
    note_port(slot.req);
    evhttp_send_reply(slot.req, 200, "OK", out);
    evbuffer_free(out);
  }
  // Runs once the reply has been written to the socket.
  static void on_complete(evhttp_request *, void *arg) {
    auto &slot = *static_cast<Slot *>(arg);
    LoopbackServer &self = *slot.server;
    self.own_ns_[slot.n] = now_ns() - slot.start_ns;
    self.completed_.fetch_add(1, std::memory_order_release);
  }
  void note_port(evhttp_request *req) {
    char *addr = nullptr;
    uint16_t port = 0;
    evhttp_connection_get_peer(evhttp_request_get_connection(req), &addr, &port);
    std::lock_guard lock(ports_mu_);
    round_ports_.insert(port);
    all_ports_.insert(port);
  }

  BasePtr base_;
  HttpPtr http_;
  uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<pid_t> tid_{0};
  std::atomic<int> delay_us_{0};
  std::atomic<uint64_t> completed_{0};
  std::atomic<uint64_t> rejected_{0};
  std::vector<int64_t> own_ns_;  // written by the server thread before completed_ moves
  std::vector<Slot> slots_;      // server thread only
  std::mutex ports_mu_;
  std::unordered_set<uint16_t> round_ports_, all_ports_;
};

// ---- the floors: loopback round trip, and HTTP over a blocking socket ----

// 1-byte TCP ping-pong between two threads, both blocking: the kernel's loopback path plus
// two thread wake-ups, nothing of HTTP.
Summary tcp_ping_pong(size_t count) {
  uint16_t port = 0;
  Fd listener = listen_loopback(1, false, port);
  std::thread echo([&] {
    Fd c(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    int one = 1;
    ::setsockopt(c.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char b;
    while (::recv(c.get(), &b, 1, 0) == 1)
      if (::send(c.get(), &b, 1, MSG_NOSIGNAL) != 1) break;
  });
  Fd fd = connect_loopback(port);
  std::vector<double> rtt;
  rtt.reserve(count);
  char b = 'x';
  for (size_t i = 0; i < count + count / 10; ++i) {  // the first tenth warms up
    int64_t t0 = now_ns();
    if (::send(fd.get(), &b, 1, MSG_NOSIGNAL) != 1 || ::recv(fd.get(), &b, 1, 0) != 1)
      die("ping-pong failed");
    if (i >= count / 10) rtt.push_back(static_cast<double>(now_ns() - t0));
  }
  fd.reset();
  echo.join();
  return summarize(std::move(rtt));
}

// HTTP/1.1 keep-alive GETs over one blocking socket: what the server and loopback cost with
// the least possible client.
class RawHttpClient {
 public:
  explicit RawHttpClient(uint16_t port) : fd_(connect_loopback(port)) { buf_.resize(16384); }
  // False on anything unexpected; the body must be kBody.
  bool get(const std::string &target) {
    std::string req = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\n\r\n";
    if (::send(fd_.get(), req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size()))
      return false;
    size_t have = 0, header_end = std::string_view::npos, need = 0;
    for (;;) {
      ssize_t r = ::recv(fd_.get(), buf_.data() + have, buf_.size() - have, 0);
      if (r <= 0) return false;
      have += static_cast<size_t>(r);
      std::string_view got(buf_.data(), have);
      if (header_end == std::string_view::npos) {
        header_end = got.find("\r\n\r\n");
        if (header_end == std::string_view::npos) continue;
        size_t cl = got.find("Content-Length: ");
        if (cl == std::string_view::npos || cl > header_end) return false;
        need = header_end + 4 + std::strtoull(buf_.data() + cl + 16, nullptr, 10);
        if (got.compare(0, 12, "HTTP/1.1 200") != 0) return false;
      }
      if (have >= need) return got.substr(header_end + 4, need - header_end - 4) == kBody;
    }
  }

 private:
  Fd fd_;
  std::vector<char> buf_;
};

// ---- the client side: lookups on the main thread's event_base ----

enum class Path { raw, client, service };
const char *path_name(Path p) {
  switch (p) {
    case Path::raw:
      return "raw socket";
    case Path::client:
      return "HttpClient";
    case Path::service:
      return "HttpService";
  }
  return "?";
}

struct Sample {
  int64_t start_ns = 0, end_ns = 0;
  uint64_t n = 0;
};

struct Errors {
  size_t count = 0;
  std::string first;
  void note(std::string what) {
    if (count++ == 0) first = std::move(what);
  }
};

bool good_response(const HttpResponse &r, Errors &errors) {
  if (r.error != HttpErrc::none) {
    errors.note(std::string(ivr::net::http_errc_name(r.error)) + ": " + r.error_text);
    return false;
  }
  if (r.status != 200 || r.body != kBody) {
    errors.note("status " + std::to_string(r.status) + ", " + std::to_string(r.body.size()) +
                " bytes");
    return false;
  }
  return true;
}

// The lookups, the loop and the sequence numbers of one run.
class Bench {
 public:
  Bench(event_base *base, LoopbackServer &server) : base_(base), server_(server) {
    kick_.reset(event_new(
        base_, -1, 0,
        [](evutil_socket_t, short, void *self) { static_cast<Bench *>(self)->on_kick(); }, this));
    prefix_ = "http://127.0.0.1:" + std::to_string(server.port());
  }

  uint64_t issued() const { return next_n_; }
  std::string target(uint64_t n) const {
    return "/crm/lookup?ani=%2B15551234567&n=" + std::to_string(n);
  }
  HttpRequest request(uint64_t n) const {
    HttpRequest r;
    r.url = prefix_ + target(n);
    r.headers = {{"Accept", "application/json"}};
    r.timeout_ms = 5000;
    return r;
  }
  uint64_t take_sequence() {
    if (next_n_ >= server_.capacity()) die("more requests than the server has slots for");
    return next_n_++;
  }

  // Sequential lookups: path i % paths.size() for lookup i, each started from its own loop
  // event once the previous one completed (as a flow step starts from the loop).
  void sequential(const std::vector<Path> &paths, size_t per_path, HttpClient &client,
                  HttpService &service, RawHttpClient &raw) {
    paths_ = paths;
    client_ = &client;
    service_ = &service;
    raw_ = &raw;
    per_path_.assign(paths.size(), {});
    for (auto &v : per_path_) v.reserve(per_path);
    errors_.assign(paths.size(), {});
    left_ = per_path * paths.size();
    step_ = 0;
    mode_ = Mode::sequential;
    run_loop();
  }
  const std::vector<Sample> &samples(size_t path_index) const { return per_path_[path_index]; }
  double last_issue_ns() const { return issue_ns_; }  // the last burst's fetch()/start() loop
  const Errors &errors(size_t path_index) const { return errors_[path_index]; }

  // Cache hits: `count` fetches of one cached request, after the miss that fills the cache.
  // Returns fetch() to callback per hit, in ns.
  std::vector<double> cache_hits(HttpService &service, size_t count, Errors &errors) {
    hit_request_ = FetchRequest{};
    hit_request_.request = request(take_sequence());
    hit_request_.cache_ttl = std::chrono::minutes(10);
    service_ = &service;
    hit_errors_ = &errors;
    // The miss.
    hits_.clear();
    expect_cached_ = false;
    left_ = 1;
    mode_ = Mode::hits;
    run_loop();
    hits_.reserve(count);
    expect_cached_ = true;
    left_ = count;
    run_loop();
    return hits_;
  }

  // `count` lookups issued at once through the client or the service; per-lookup latency in
  // ns, and the time from the first start to the last completion.
  std::vector<double> burst(Path path, size_t count, HttpClient &client, HttpService &service,
                            Errors &errors, double &all_done_ns) {
    client_ = &client;
    service_ = &service;
    burst_path_ = path;
    burst_errors_ = &errors;
    burst_.clear();
    burst_.reserve(count);
    burst_size_ = count;
    left_ = count;
    mode_ = Mode::burst;
    burst_first_ = 0;
    burst_last_ = 0;
    run_loop();
    all_done_ns = static_cast<double>(burst_last_ - burst_first_);
    issue_ns_ = static_cast<double>(burst_issued_ - burst_first_);
    return burst_;
  }

 private:
  enum class Mode { sequential, hits, burst };

  void run_loop() {
    event_active(kick_.get(), 0, 0);
    event_base_dispatch(base_);
  }
  void done_one() {
    if (--left_ == 0)
      event_base_loopbreak(base_);
    else if (mode_ != Mode::burst)
      event_active(kick_.get(), 0, 0);
  }

  void on_kick() {
    switch (mode_) {
      case Mode::sequential:
        return start_sequential();
      case Mode::hits:
        return start_hit();
      case Mode::burst:
        return start_burst();
    }
  }

  void start_sequential() {
    const size_t k = step_++ % paths_.size();
    const uint64_t n = take_sequence();
    auto finish = [this, k, n](int64_t start, bool ok) {
      const int64_t end = now_ns();
      if (ok) per_path_[k].push_back(Sample{start, end, n});
      done_one();
    };
    switch (paths_[k]) {
      case Path::raw: {
        std::string t = target(n);
        const int64_t start = now_ns();
        bool ok = raw_->get(t);
        if (!ok) errors_[k].note("raw request failed");
        finish(start, ok);
        return;
      }
      case Path::client: {
        HttpRequest r = request(n);
        const int64_t start = now_ns();
        client_->start(std::move(r), [this, k, start, finish](HttpResponse &&resp) {
          finish(start, good_response(resp, errors_[k]));
        });
        return;
      }
      case Path::service: {
        FetchRequest f;
        f.request = request(n);
        const int64_t start = now_ns();
        service_->fetch(std::move(f), [this, k, start, finish](FetchResult &&r) {
          bool ok = r.reason.empty() || (errors_[k].note(r.reason + ": " + r.error), false);
          finish(start, ok && good_response(r.response, errors_[k]));
        });
        return;
      }
    }
  }

  void start_hit() {
    FetchRequest f = hit_request_;
    const bool expect_cached = expect_cached_;
    const int64_t start = now_ns();
    service_->fetch(std::move(f), [this, start, expect_cached](FetchResult &&r) {
      const int64_t end = now_ns();
      if (!r.reason.empty())
        hit_errors_->note(r.reason + ": " + r.error);
      else if (r.cached != expect_cached)
        hit_errors_->note(expect_cached ? "a hit went to the server" : "the miss was cached");
      else if (good_response(r.response, *hit_errors_) && expect_cached)
        hits_.push_back(static_cast<double>(end - start));
      done_one();
    });
  }

  void start_burst() {
    burst_first_ = now_ns();
    for (size_t i = 0; i < burst_size_; ++i) {
      const uint64_t n = take_sequence();
      auto done = [this](int64_t start, bool ok) {
        const int64_t end = now_ns();
        burst_last_ = std::max(burst_last_, end);
        if (ok) burst_.push_back(static_cast<double>(end - start));
        done_one();
      };
      if (burst_path_ == Path::client) {
        HttpRequest r = request(n);
        const int64_t start = now_ns();
        client_->start(std::move(r), [this, start, done](HttpResponse &&resp) {
          done(start, good_response(resp, *burst_errors_));
        });
      } else {
        FetchRequest f;
        f.request = request(n);
        const int64_t start = now_ns();
        service_->fetch(std::move(f), [this, start, done](FetchResult &&r) {
          bool ok = r.reason.empty() || (burst_errors_->note(r.reason + ": " + r.error), false);
          done(start, ok && good_response(r.response, *burst_errors_));
        });
      }
    }
    burst_issued_ = now_ns();
  }

  event_base *base_;
  LoopbackServer &server_;
  EventPtr kick_;
  std::string prefix_;
  uint64_t next_n_ = 0;
  Mode mode_ = Mode::sequential;
  size_t left_ = 0;

  // sequential
  std::vector<Path> paths_;
  HttpClient *client_ = nullptr;
  HttpService *service_ = nullptr;
  RawHttpClient *raw_ = nullptr;
  std::vector<std::vector<Sample>> per_path_;
  std::vector<Errors> errors_;
  size_t step_ = 0;

  // cache hits
  FetchRequest hit_request_;
  Errors *hit_errors_ = nullptr;
  std::vector<double> hits_;
  bool expect_cached_ = false;

  // bursts
  Path burst_path_ = Path::service;
  Errors *burst_errors_ = nullptr;
  std::vector<double> burst_;
  size_t burst_size_ = 0;
  int64_t burst_first_ = 0, burst_last_ = 0, burst_issued_ = 0;
  double issue_ns_ = 0;
};

std::unique_ptr<HttpService> make_service(event_base *base, HttpClientOptions client) {
  HttpServiceOptions o;
  o.client = std::move(client);
  o.seed = 1;
  auto s = HttpService::create(base, std::move(o));
  if (!s.ok()) die("HttpService::create: " + s.error().message);
  return std::move(s).value();
}

// ---- reporting ----

// The scheduler accounts of the client (main) thread and the server thread.
struct Threads {
  pid_t client, server;
  SchedStat c0, s0;
  Threads(pid_t c, pid_t s) : client(c), server(s), c0(sched_stat(c)), s0(sched_stat(s)) {}
  SchedStat client_delta() const { return sched_stat(client) - c0; }
  SchedStat server_delta() const { return sched_stat(server) - s0; }
};

void print_threads(const Threads &t, size_t lookups) {
  const SchedStat c = t.client_delta(), s = t.server_delta();
  const double n = static_cast<double>(lookups) * 1e3;
  std::printf(
      "  per lookup: client thread cpu %.1f us, waited for a cpu %.1f us; server thread cpu "
      "%.1f us, waited %.1f us\n",
      static_cast<double>(c.cpu_ns) / n, static_cast<double>(c.wait_ns) / n,
      static_cast<double>(s.cpu_ns) / n, static_cast<double>(s.wait_ns) / n);
}

void print_header(const char *what) {
  std::printf("%-12s %9s %8s %8s %8s | %9s %8s %8s %8s | %9s %8s | %s\n", what, "total p50", "p90",
              "p99", "max", "added p50", "p90", "p99", "max", "server p50", "p99", "errors");
}

struct PathFigures {
  Summary total, added, own;
};

// Pairs each lookup with the server's own time for the same request; all in us.
PathFigures figures(const std::vector<Sample> &samples, const LoopbackServer &server) {
  std::vector<double> total, added, own;
  for (const Sample &s : samples) {
    const double t = static_cast<double>(s.end_ns - s.start_ns) / 1e3;
    const int64_t o = server.own_ns(s.n);
    if (o < 0) die("no server time for request " + std::to_string(s.n));
    total.push_back(t);
    own.push_back(static_cast<double>(o) / 1e3);
    added.push_back(t - static_cast<double>(o) / 1e3);
  }
  return {summarize(total), summarize(added), summarize(own)};
}

void print_row(const char *name, const PathFigures &f, const Errors &e) {
  std::printf("%-12s %9.1f %8.1f %8.1f %8.1f | %9.1f %8.1f %8.1f %8.1f | %9.1f %8.1f | %zu%s%s\n",
              name, f.total.p50, f.total.p90, f.total.p99, f.total.max, f.added.p50, f.added.p90,
              f.added.p99, f.added.max, f.own.p50, f.own.p99, e.count, e.count ? ", first: " : "",
              e.first.c_str());
}

size_t parse_size(const char *flag, const char *text) {
  char *end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(text, &end, 10);
  if (errno || end == text || *end || text[0] == '-')
    die(std::string(flag) + ": '" + text + "' is not a count");
  return static_cast<size_t>(v);
}

std::vector<size_t> parse_list(const char *flag, const char *text) {
  std::vector<size_t> out;
  std::string s(text);
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t comma = s.find(',', pos);
    if (comma == std::string::npos) comma = s.size();
    out.push_back(parse_size(flag, s.substr(pos, comma - pos).c_str()));
    pos = comma + 1;
  }
  return out;
}

}  // namespace

int main(int argc, char **argv) {
  size_t lookups = 20000, delay_us = 1000, delay_lookups = 2000, hits = 100000, concurrent = 1000,
         rounds = 5, maps = 200000;
  std::vector<size_t> per_host = {16, 64};
  bool precise_client_timer = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char * {
      if (i + 1 >= argc) die(a + ": needs a value");
      return argv[++i];
    };
    if (a == "--lookups")
      lookups = parse_size("--lookups", value());
    else if (a == "--delay-us")
      delay_us = parse_size("--delay-us", value());
    else if (a == "--delay-lookups")
      delay_lookups = parse_size("--delay-lookups", value());
    else if (a == "--hits")
      hits = parse_size("--hits", value());
    else if (a == "--concurrent")
      concurrent = parse_size("--concurrent", value());
    else if (a == "--rounds")
      rounds = parse_size("--rounds", value());
    else if (a == "--per-host")
      per_host = parse_list("--per-host", value());
    else if (a == "--precise-timer")
      precise_client_timer = true;
    else if (a == "--maps")
      maps = parse_size("--maps", value());
    else
      die("unknown option " + a +
          " (--lookups N --delay-us D --delay-lookups N --hits N --concurrent N --rounds R "
          "--per-host A,B --maps N --precise-timer)");
  }
  if (lookups < 10 || concurrent == 0 || rounds == 0 || hits == 0)
    die("--lookups at least 10; --concurrent, --rounds, --hits at least 1");

  std::string command;
  for (int i = 0; i < argc; ++i) {
    if (i) command += ' ';
    command += argv[i];
  }
  std::printf("command: %s\n", command.c_str());
  print_machine_noise();

  if (evthread_use_pthreads() != 0) die("evthread_use_pthreads failed");  // as the engine does

  const Summary ping = tcp_ping_pong(20000);
  std::printf(
      "loopback TCP ping-pong (1 byte, two blocking threads, 20000): p50 %.1f us, p90 %.1f, "
      "p99 %.1f, max %.1f\n",
      ping.p50 / 1e3, ping.p90 / 1e3, ping.p99 / 1e3, ping.max / 1e3);

  const size_t warmup = 500;
  const size_t cpu_lookups = std::max<size_t>(lookups / 4, 10);  // (a2), per path
  const size_t capacity = 3 * (warmup + lookups + cpu_lookups) + 3 * delay_lookups + 2 +
                          per_host.size() * rounds * 2 * concurrent + 16;
  LoopbackServer server(capacity);
  std::printf(
      "server: evhttp on 127.0.0.1:%u, its own thread; body %zu bytes (JSON); client loop "
      "clock: %s\n\n",
      server.port(), kBody.size(),
      precise_client_timer ? "precise (EVENT_BASE_FLAG_PRECISE_TIMER)"
                           : "libevent's default (CLOCK_MONOTONIC_COARSE), as the engine's");

  const pid_t main_tid = thread_id();
  BasePtr base = make_base(precise_client_timer);
  Bench bench(base.get(), server);
  auto client = std::make_unique<HttpClient>(base.get());
  auto service = make_service(base.get(), {});
  RawHttpClient raw(server.port());
  const std::vector<Path> paths = {Path::raw, Path::client, Path::service};

  // (a) sequential lookups, the three paths interleaved.
  bench.sequential(paths, warmup, *client, *service, raw);
  server.wait_completed(bench.issued());
  PathFigures service_fig, service_delay_fig;
  size_t sequential_errors = 0;
  for (int pass = 0; pass < 2; ++pass) {
    const bool delayed = pass == 1;
    if (delayed && (delay_us == 0 || delay_lookups == 0)) break;
    const size_t count = delayed ? delay_lookups : lookups;
    server.set_delay_us(delayed ? static_cast<int>(delay_us) : 0);
    const Threads threads(main_tid, server.tid());
    bench.sequential(paths, count, *client, *service, raw);
    server.wait_completed(bench.issued());
    std::printf(
        "(a) sequential lookups, %zu per path, interleaved, server delay %zu us (times in us; "
        "added = total - server's own)\n",
        count, delayed ? delay_us : size_t{0});
    print_header("path");
    for (size_t k = 0; k < paths.size(); ++k) {
      PathFigures f = figures(bench.samples(k), server);
      print_row(path_name(paths[k]), f, bench.errors(k));
      if (paths[k] == Path::service) (delayed ? service_delay_fig : service_fig) = f;
    }
    print_threads(threads, count * paths.size());
    for (size_t k = 0; k < paths.size(); ++k) sequential_errors += bench.errors(k).count;
    std::printf("\n");
  }
  server.set_delay_us(0);

  // (a2) CPU per lookup, each path alone.
  std::printf("(a2) each path alone, %zu sequential lookups, server delay 0 (us per lookup)\n",
              cpu_lookups);
  std::printf("%-12s %9s %9s %12s %12s %12s %12s\n", "path", "total p50", "p99", "client cpu",
              "client wait", "server cpu", "server wait");
  for (Path p : paths) {
    const Threads threads(main_tid, server.tid());
    bench.sequential({p}, cpu_lookups, *client, *service, raw);
    server.wait_completed(bench.issued());
    const SchedStat c = threads.client_delta(), sv = threads.server_delta();
    const PathFigures f = figures(bench.samples(0), server);
    const double n = static_cast<double>(cpu_lookups) * 1e3;
    std::printf("%-12s %9.1f %9.1f %12.1f %12.1f %12.1f %12.1f\n", path_name(p), f.total.p50,
                f.total.p99, static_cast<double>(c.cpu_ns) / n, static_cast<double>(c.wait_ns) / n,
                static_cast<double>(sv.cpu_ns) / n, static_cast<double>(sv.wait_ns) / n);
    sequential_errors += bench.errors(0).count;
  }
  std::printf("\n");

  // (b) cache hits.
  Errors hit_errors;
  const uint64_t before_hits = service->counters().requests;
  const Summary hit = summarize(bench.cache_hits(*service, hits, hit_errors));
  const uint64_t hit_requests = service->counters().requests - before_hits;
  std::printf(
      "(b) HttpService cache hits, %zu after one miss: fetch() to callback p50 %.2f us, p90 "
      "%.2f, p99 %.2f, max %.1f, mean %.2f; requests sent %llu (the miss); errors %zu%s%s\n\n",
      hit.count, hit.p50 / 1e3, hit.p90 / 1e3, hit.p99 / 1e3, hit.max / 1e3, hit.mean / 1e3,
      static_cast<unsigned long long>(hit_requests), hit_errors.count,
      hit_errors.count ? ", first: " : "", hit_errors.first.c_str());

  // (c) bursts of concurrent lookups, fresh client and service per connection limit.
  std::printf(
      "(c) %zu concurrent lookups issued at once, %zu rounds per path (times in ms; issue = the "
      "loop of fetch()/start() calls; conns = distinct client ports the server saw in the "
      "round; cl/sv cpu and wait = client/server thread on a cpu and waiting for one)\n",
      concurrent, rounds);
  std::printf("%-9s %-12s %5s %8s %9s %8s %8s %8s %6s %7s %7s %7s %7s %s\n", "per-host", "path",
              "round", "issue", "all done", "p50", "p99", "max", "conns", "cl cpu", "cl wait",
              "sv cpu", "sv wait", "errors");
  size_t burst_errors = 0, burst_done = 0, burst_expected = 0;
  double worst_all_done = 0;
  for (size_t limit : per_host) {
    HttpClientOptions co;
    co.max_connections_per_host = limit;
    auto burst_client = std::make_unique<HttpClient>(base.get(), co);
    auto burst_service = make_service(base.get(), co);
    for (size_t r = 0; r < rounds; ++r) {
      for (Path p : {Path::service, Path::client}) {
        server.reset_round_ports();
        Errors e;
        double all_done = 0;
        const Threads threads(main_tid, server.tid());
        Summary s =
            summarize(bench.burst(p, concurrent, *burst_client, *burst_service, e, all_done));
        server.wait_completed(bench.issued() - server.rejected());
        burst_errors += e.count;
        burst_done += s.count;
        burst_expected += concurrent;
        if (p == Path::service) worst_all_done = std::max(worst_all_done, all_done);
        const SchedStat c = threads.client_delta(), sv = threads.server_delta();
        std::printf(
            "%-9zu %-12s %5zu %8.2f %9.2f %8.2f %8.2f %8.2f %6zu %7.1f %7.1f %7.1f %7.1f %zu%s%s\n",
            limit, path_name(p), r + 1, bench.last_issue_ns() / 1e6, all_done / 1e6, s.p50 / 1e6,
            s.p99 / 1e6, s.max / 1e6, server.round_ports(), static_cast<double>(c.cpu_ns) / 1e6,
            static_cast<double>(c.wait_ns) / 1e6, static_cast<double>(sv.cpu_ns) / 1e6,
            static_cast<double>(sv.wait_ns) / 1e6, e.count, e.count ? ", first: " : "",
            e.first.c_str());
      }
    }
  }
  std::printf("connections the server saw over the whole run: %zu\n\n", server.all_ports());

  // (d) mapping the answer into call variables.
  auto map = ivr::net::ResponseMap::compile(ivr::net::BodyFormat::json,
                                            {{"name", "/customer/name"},
                                             {"tier", "/customer/tier"},
                                             {"balance", "/customer/account/balance"},
                                             {"tickets", "/customer/open_tickets"},
                                             {"order", "/customer/last_order/status"},
                                             {"flags", "/customer/flags/*"}});
  if (!map.ok()) die("ResponseMap::compile: " + map.error().message);
  if (maps > 0) {
    constexpr size_t kBatch = 1000;
    size_t checksum = 0;
    auto apply = [&] {
      auto m = map->apply(kBody);
      if (!m.ok()) die("apply: " + m.error().message);
      checksum += m->values.back().value.as_string().size();
    };
    for (size_t i = 0; i < maps / 10; ++i) apply();  // warm-up
    std::vector<double> per_apply;
    for (size_t b = 0; b < std::max<size_t>(1, maps / kBatch); ++b) {
      const int64_t t0 = now_ns();
      for (size_t j = 0; j < kBatch; ++j) apply();
      per_apply.push_back(static_cast<double>(now_ns() - t0) / kBatch);
    }
    const Summary s = summarize(per_apply);
    std::printf(
        "(d) ResponseMap::apply, 6 JSON paths on the %zu-byte answer, %zu batches of %zu: "
        "median batch %.0f ns per apply, fastest %.0f (checksum %zu)\n\n",
        kBody.size(), per_apply.size(), kBatch, s.p50,
        *std::min_element(per_apply.begin(), per_apply.end()), checksum);
  }

  const auto &sc = service->counters();
  std::printf(
      "service counters (sequential + hits): fetches %llu, requests %llu, cache hits %llu, "
      "retries %llu, failures %llu\n",
      static_cast<unsigned long long>(sc.fetches), static_cast<unsigned long long>(sc.requests),
      static_cast<unsigned long long>(sc.cache_hits), static_cast<unsigned long long>(sc.retries),
      static_cast<unsigned long long>(sc.failures));
  std::printf("errors: sequential %zu, cache hits %zu, concurrent %zu; server rejected %llu\n\n",
              sequential_errors, hit_errors.count, burst_errors,
              static_cast<unsigned long long>(server.rejected()));

  auto verdict = [](bool met) { return met ? "MET" : "MISSED"; };
  std::printf(
      "verdict: added p99 < 5 ms (HttpService, sequential, no server delay): p50 %.1f us, "
      "p99 %.1f us -> %s\n",
      service_fig.added.p50, service_fig.added.p99,
      verdict(service_fig.added.p99 < 5000 && service_fig.added.count > 0));
  if (service_delay_fig.added.count > 0)
    std::printf(
        "verdict: added p99 < 5 ms (HttpService, sequential, server delay %zu us): p50 "
        "%.1f us, p99 %.1f us -> %s\n",
        delay_us, service_delay_fig.added.p50, service_delay_fig.added.p99,
        verdict(service_delay_fig.added.p99 < 5000));
  std::printf(
      "verdict: cache hit < 100 us (HttpService): p50 %.2f us, p99 %.2f us, max %.1f us "
      "-> %s (p99)\n",
      hit.p50 / 1e3, hit.p99 / 1e3, hit.max / 1e3, verdict(hit.p99 < 100e3 && hit.count == hits));
  std::printf(
      "verdict: %zu concurrent lookups: %zu of %zu completed, %zu errors, slowest "
      "HttpService round %.1f ms -> %s\n",
      concurrent, burst_done, burst_expected, burst_errors, worst_all_done / 1e6,
      verdict(burst_errors == 0 && burst_done == burst_expected));
  return 0;
}
