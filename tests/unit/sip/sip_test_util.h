// Helpers for the SipStack tests against real SIPp peers on loopback (scenarios/ next to this
// file): the stack with its events in a queue, SIPp as caller (UAC) or called party (UAS).
#pragma once

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../loopback_ports.h"
#include "sip/sip_stack.h"

extern char **environ;

namespace ivr::test::sipt {

using ivr::test::bind_loopback;
using ivr::test::free_media_port;
using ivr::test::free_port;

using namespace std::chrono_literals;
using ivr::sip::SipEvent;
using ivr::sip::SipOptions;
using ivr::sip::SipStack;
using ivr::sip::TerminationCause;
using ivr::sip::Transport;
using Kind = ivr::sip::SipEvent::Kind;

inline const std::filesystem::path kScenarios =
    std::filesystem::path(__FILE__).parent_path() / "scenarios";
constexpr const char *kSipp = "/usr/bin/sipp";

inline const char *kind_name(Kind k) {
  switch (k) {
    case Kind::invite:
      return "invite";
    case Kind::reinvite:
      return "reinvite";
    case Kind::ack:
      return "ack";
    case Kind::info_dtmf:
      return "info_dtmf";
    case Kind::terminated:
      return "terminated";
    case Kind::options:
      return "options";
    case Kind::progress:
      return "progress";
    case Kind::answered:
      return "answered";
    case Kind::refer:
      return "refer";
  }
  return "?";
}

// IVR_TEST_SIP_DEBUG=1 shows the stack's and Sofia's debug logs.
inline ivr::LoggerPtr test_logger() {
  const char *env = std::getenv("IVR_TEST_SIP_DEBUG");
  return ivr::make_stderr_logger(env && *env == '1' ? ivr::LogLevel::debug : ivr::LogLevel::warn);
}

// What the running SIPp said, for failure messages (set by Sipp, see below).
inline std::string (*g_sipp_report)() = nullptr;

inline std::string sipp_report() {
  return g_sipp_report ? g_sipp_report() : std::string();
}

class EventQueue {
 public:
  void push(SipEvent &&ev) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      events_.push_back(std::move(ev));
    }
    cv_.notify_all();
  }
  std::optional<SipEvent> pop(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (!cv_.wait_for(lock, timeout, [this] { return !events_.empty(); })) return std::nullopt;
    SipEvent ev = std::move(events_.front());
    events_.pop_front();
    return ev;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<SipEvent> events_;
};

struct Stack {
  explicit Stack(Transport transport = Transport::udp, uint16_t fixed_port = 0,
                 const std::string &address = "127.0.0.1", uint32_t transaction_timeout_ms = 0) {
    SipOptions options;
    options.transaction_timeout_ms = transaction_timeout_ms;
    options.address = address;
    options.port = fixed_port;
    options.transport = transport;
    options.user_agent = "libivr-test";
    options.logger = test_logger();
    options.sink = [this](SipEvent &&ev) { events.push(std::move(ev)); };
    auto started = SipStack::start(std::move(options));
    if (!started) FAIL("SipStack::start: " << started.error().message);
    sip = std::move(*started);
    port = sip->bound_port();
    REQUIRE(port != 0);
  }

  // The next event, which must be of the given kind.
  SipEvent expect(Kind kind, std::chrono::milliseconds timeout = 10s) {
    auto ev = events.pop(timeout);
    if (!ev)
      FAIL("no " << std::string(kind_name(kind)) << " event within " << timeout.count() << " ms\n"
                 << sipp_report());
    if (ev->kind != kind)
      FAIL("expected " << std::string(kind_name(kind)) << ", got "
                       << std::string(kind_name(ev->kind)) << " (cause "
                       << static_cast<int>(ev->cause) << ", " << ev->status << " " << ev->phrase
                       << ")");
    return std::move(*ev);
  }

  void expect_quiet(std::chrono::milliseconds for_ = 300ms) {
    auto ev = events.pop(for_);
    if (ev)
      FAIL("unexpected " << std::string(kind_name(ev->kind)) << " event for dialog " << ev->dialog);
  }

  EventQueue events;
  std::unique_ptr<SipStack> sip;
  uint16_t port = 0;
};

// SIPp as the called party (tag for the Sipp constructor).
struct Uas {};

// One SIPp run, as the caller or the called party, bounded by its own -timeout and by wait().
class Sipp {
 public:
  // The caller: SIPp sends to our stack on `port`.
  Sipp(const std::string &scenario, uint16_t port, const std::string &transport = "u1",
       const std::string &ip = "127.0.0.1", std::vector<std::string> extra = {}) {
    const std::string host = ip.find(':') != std::string::npos ? "[" + ip + "]" : ip;
    std::vector<std::string> args = {
        host + ":" + std::to_string(port),
        "-i",
        ip,
        "-p",
        std::to_string(free_port(transport[0] == 't' ? SOCK_STREAM : SOCK_DGRAM)),
        "-t",
        transport,
        "-s",
        "ivr",
        "-max_retrans",
        "3"};
    args.insert(args.end(), extra.begin(), extra.end());
    start(scenario, std::move(args));
  }
  // The called party: SIPp listens on a free loopback UDP port (port()); returns once it is
  // bound, so that our INVITE does not meet a closed port.
  // extra: more arguments (-key name value for the scenario's [name]).
  Sipp(Uas, const std::string &scenario, std::vector<std::string> extra = {}) {
    port_ = free_port(SOCK_DGRAM);
    std::vector<std::string> args = {"-i", "127.0.0.1", "-p", std::to_string(port_), "-t", "u1"};
    args.insert(args.end(), extra.begin(), extra.end());
    start(scenario, std::move(args));
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < deadline && !reap()) {
      // SIPp binds with SO_REUSEADDR; without it our bind fails once SIPp holds the port.
      int fd = bind_loopback(SOCK_DGRAM, port_, nullptr);
      if (fd < 0) return;
      ::close(fd);
      std::this_thread::sleep_for(10ms);
    }
    const std::string why = report();
    if (pid_ > 0) {  // FAIL throws out of the constructor: the destructor will not run
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
    FAIL("SIPp did not bind 127.0.0.1:" << port_ << "\n" << why);
  }

  // The UAS's SIP port.
  uint16_t port() const { return port_; }
  // A URI reaching the UAS.
  std::string uri(const std::string &user = "agent") const {
    return "sip:" + user + "@127.0.0.1:" + std::to_string(port_);
  }

  Sipp(const Sipp &) = delete;
  Sipp &operator=(const Sipp &) = delete;
  ~Sipp() {
    if (g_current == this) g_current = nullptr;
    if (pid_ > 0) {  // never kill(-1, ...): that would signal every process of ours
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }

  // Exit status; -1 when SIPp had to be killed or died on a signal.
  int wait(std::chrono::seconds limit = 30s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!reap() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(20ms);
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
      exit_ = -1;
    }
    return exit_;
  }

  // Asserts a clean SIPp exit (all calls successful); shows its screen otherwise.
  void expect_success() {
    int rc = wait();
    if (rc != 0) FAIL(report());
  }

  // Exit state and the tail of SIPp's output.
  std::string report() {
    reap();
    std::ifstream in(log_);
    std::stringstream text;
    text << in.rdbuf();
    std::string s = text.str();
    if (s.size() > 6000) s = s.substr(s.size() - 6000);
    std::string state =
        pid_ > 0 ? "sipp still running" : "sipp exited with " + std::to_string(exit_);
    return state + "; output (" + log_ + "):\n" + s;
  }

 private:
  // True once SIPp has exited (exit_ then holds its status).
  bool reap() {
    if (pid_ <= 0) return true;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) != pid_) return false;
    pid_ = -1;
    exit_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return true;
  }

  void start(const std::string &scenario, std::vector<std::string> mode_args) {
    log_ = std::string(IVR_TEST_BUILD_DIR) + "/sipp_" + scenario + "_" +
           std::to_string(::getpid()) + ".log";
    std::vector<std::string> args = {kSipp, "-sf", (kScenarios / (scenario + ".xml")).string()};
    args.insert(args.end(), mode_args.begin(), mode_args.end());
    args.insert(args.end(), {"-mp", std::to_string(free_media_port()), "-m", "1", "-nostdin",
                             "-timeout", "20s", "-timeout_error"});
    std::vector<char *> argv;
    for (auto &a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    // Sofia's sockets are not close-on-exec: keep the stack's SIP socket out of SIPp.
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    int rc = posix_spawn(&pid_, kSipp, &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    REQUIRE_MESSAGE(rc == 0, "cannot spawn sipp: " << std::strerror(rc));
    g_current = this;
    g_sipp_report = [] { return g_current ? g_current->report() : std::string(); };
  }

  static inline Sipp *g_current = nullptr;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
  int exit_ = -1;
  std::string log_;
};

inline std::string sdp(const char *origin, const char *direction) {
  return std::string("v=0\r\no=") + origin +
         " IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
         "m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
         "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=" +
         direction + "\r\n";
}

inline const ivr::sip::SipHeader *find_header(const SipEvent &ev, const std::string &name,
                                              size_t *index = nullptr) {
  for (size_t i = 0; i < ev.headers.size(); ++i)
    if (ev.headers[i].name == name) {
      if (index) *index = i;
      return &ev.headers[i];
    }
  return nullptr;
}

inline bool contains(const std::string &s, const std::string &part) {
  return s.find(part) != std::string::npos;
}

// A UDP socket on loopback, for raw datagrams and for holding a port.
struct UdpSocket {
  UdpSocket() {
    fd = bind_loopback(SOCK_DGRAM, 0, &port);
    REQUIRE(fd >= 0);
  }
  ~UdpSocket() { ::close(fd); }
  void send_to(uint16_t to, const std::string &data) const {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(to);
    REQUIRE(::sendto(fd, data.data(), data.size(), 0, reinterpret_cast<sockaddr *>(&a), sizeof a) ==
            static_cast<ssize_t>(data.size()));
  }
  std::optional<std::string> receive(std::chrono::milliseconds timeout) const {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return std::nullopt;
    char buf[8192];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0) return std::nullopt;
    return std::string(buf, static_cast<size_t>(n));
  }
  int fd = -1;
  uint16_t port = 0;
};

}  // namespace ivr::test::sipt
