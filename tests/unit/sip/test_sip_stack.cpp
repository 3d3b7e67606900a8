// SipStack against a real peer: SIPp plays the caller on loopback (scenarios/ next to this
// file), the test plays the engine (reads events, sends commands).
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

namespace {

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

const std::filesystem::path kScenarios =
    std::filesystem::path(__FILE__).parent_path() / "scenarios";
constexpr const char *kSipp = "/usr/bin/sipp";

const char *kind_name(Kind k) {
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
ivr::LoggerPtr test_logger() {
  const char *env = std::getenv("IVR_TEST_SIP_DEBUG");
  return ivr::make_stderr_logger(env && *env == '1' ? ivr::LogLevel::debug : ivr::LogLevel::warn);
}

// What the running SIPp said, for failure messages (set by Sipp, see below).
std::string (*g_sipp_report)() = nullptr;

std::string sipp_report() {
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

// One SIPp run as the caller, bounded by its own -timeout and by wait().
class Sipp {
 public:
  Sipp(const std::string &scenario, uint16_t port, const std::string &transport = "u1",
       const std::string &ip = "127.0.0.1") {
    const std::string host = ip.find(':') != std::string::npos ? "[" + ip + "]" : ip;
    log_ = std::string(IVR_TEST_BUILD_DIR) + "/sipp_" + scenario + "_" +
           std::to_string(::getpid()) + ".log";
    std::vector<std::string> args = {
        kSipp,
        "-sf",
        (kScenarios / (scenario + ".xml")).string(),
        host + ":" + std::to_string(port),
        "-i",
        ip,
        "-p",
        std::to_string(free_port(transport[0] == 't' ? SOCK_STREAM : SOCK_DGRAM)),
        "-mp",
        std::to_string(free_media_port()),
        "-t",
        transport,
        "-s",
        "ivr",
        "-m",
        "1",
        "-nostdin",
        "-timeout",
        "20s",
        "-timeout_error",
        "-max_retrans",
        "3"};
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

  static inline Sipp *g_current = nullptr;
  pid_t pid_ = -1;
  int exit_ = -1;
  std::string log_;
};

std::string sdp(const char *origin, const char *direction) {
  return std::string("v=0\r\no=") + origin +
         " IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
         "m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
         "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=" +
         direction + "\r\n";
}

const ivr::sip::SipHeader *find_header(const SipEvent &ev, const std::string &name,
                                       size_t *index = nullptr) {
  for (size_t i = 0; i < ev.headers.size(); ++i)
    if (ev.headers[i].name == name) {
      if (index) *index = i;
      return &ev.headers[i];
    }
  return nullptr;
}

bool contains(const std::string &s, const std::string &part) {
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

}  // namespace

TEST_CASE("SipStack: start reports the bound port and a bind failure names the address") {
  Stack stack;
  CHECK(stack.port != 0);

  UdpSocket taken;
  SipOptions options;
  options.address = "127.0.0.1";
  options.port = taken.port;
  options.transport = Transport::udp;
  options.logger = test_logger();
  options.sink = [](SipEvent &&) {};
  auto failed = SipStack::start(options);
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.error().code == ivr::Errc::sip);
  CHECK_MESSAGE(contains(failed.error().message, "127.0.0.1:" + std::to_string(taken.port)),
                failed.error().message);

  options.port = 0;
  options.sink = nullptr;
  CHECK_FALSE(SipStack::start(options).ok());  // a stack without a sink would lose calls
}

TEST_CASE("SipStack: inbound INVITE with SDP, answer, ACK, caller BYE") {
  Stack stack;
  Sipp sipp("uac_invite_bye", stack.port);

  SipEvent inv = stack.expect(Kind::invite);
  const std::string port = std::to_string(stack.port);
  CHECK(inv.dialog != 0);
  CHECK_MESSAGE(contains(inv.call_id, "@127.0.0.1"), inv.call_id);  // SIPp: n-pid@ip
  CHECK_MESSAGE(contains(inv.from, "\"Alice Caller\" <sip:alice@127.0.0.1:"), inv.from);
  CHECK_MESSAGE(contains(inv.from, ";tag="), inv.from);
  CHECK(inv.from_user == "alice");
  CHECK(inv.to == "<sip:ivr@127.0.0.1:" + port + ">");
  CHECK(inv.to_user == "ivr");
  CHECK(inv.request_uri == "sip:ivr@127.0.0.1:" + port + ";foo=bar");
  // SIPp's Contact names the port it sends from: the source address must match it.
  const std::string prefix = "<sip:alice@127.0.0.1:";
  REQUIRE_MESSAGE(inv.contact.rfind(prefix, 0) == 0, inv.contact);
  const std::string sipp_port =
      inv.contact.substr(prefix.size(), inv.contact.find('>') - prefix.size());
  CHECK(inv.remote_signaling == "127.0.0.1:" + sipp_port);

  REQUIRE(!inv.headers.empty());
  CHECK(inv.headers.front().name == "Via");
  size_t lead = 0, campaign = 0;
  const auto *lead_h = find_header(inv, "X-Lead-Id", &lead);
  const auto *campaign_h = find_header(inv, "X-Campaign", &campaign);
  REQUIRE(lead_h);
  REQUIRE(campaign_h);
  CHECK(lead_h->value == "4711");
  CHECK(campaign_h->value == "spring sale");
  CHECK(lead < campaign);
  const auto *subject = find_header(inv, "Subject");
  REQUIRE(subject);
  CHECK(subject->value == "sip stack unit test");
  const auto *ctype = find_header(inv, "Content-Type");
  REQUIRE(ctype);
  CHECK(ctype->value == "application/sdp");
  CHECK(find_header(inv, "Call-ID")->value == inv.call_id);
  CHECK(inv.has_sdp);
  CHECK(inv.sdp.rfind("v=0", 0) == 0);
  CHECK(contains(inv.sdp, "a=rtpmap:101 telephone-event/8000"));

  stack.sip->answer(inv.dialog, sdp("unit-test 42 1", "sendrecv"));
  SipEvent ack = stack.expect(Kind::ack);
  CHECK(ack.dialog == inv.dialog);
  CHECK_FALSE(ack.has_sdp);
  SipEvent end = stack.expect(Kind::terminated);
  CHECK(end.dialog == inv.dialog);
  CHECK(end.cause == TerminationCause::remote_bye);
  sipp.expect_success();
  stack.expect_quiet();  // exactly one terminated event
  // Commands for a finished dialog are ignored.
  stack.sip->hangup(inv.dialog, "late");
  stack.sip->answer(inv.dialog, "v=0\r\n");
  stack.expect_quiet();
}

TEST_CASE("SipStack: INVITE without SDP gets our offer, the ACK carries the answer") {
  Stack stack;
  Sipp sipp("uac_invite_nosdp", stack.port);
  SipEvent inv = stack.expect(Kind::invite);
  CHECK_FALSE(inv.has_sdp);
  CHECK(inv.sdp.empty());
  stack.sip->answer(inv.dialog, sdp("unit-test 43 1", "sendrecv"));
  SipEvent ack = stack.expect(Kind::ack);
  CHECK(ack.dialog == inv.dialog);
  CHECK(ack.has_sdp);
  CHECK_MESSAGE(contains(ack.sdp, "o=sipp-answer 7 7 IN IP4 127.0.0.1"), ack.sdp);
  SipEvent end = stack.expect(Kind::terminated);
  CHECK(end.cause == TerminationCause::remote_bye);
  sipp.expect_success();
}

TEST_CASE("SipStack: CANCEL before the answer") {
  Stack stack;
  Sipp sipp("uac_cancel", stack.port);
  SipEvent inv = stack.expect(Kind::invite);
  stack.sip->ringing(inv.dialog);
  SipEvent end = stack.expect(Kind::terminated);
  CHECK(end.dialog == inv.dialog);
  CHECK(end.cause == TerminationCause::remote_cancel);
  CHECK(end.status == 487);
  sipp.expect_success();
  stack.expect_quiet();
}

TEST_CASE("SipStack: reject carries the status and an RFC 3326 Reason") {
  Stack stack;
  Sipp sipp("uac_reject", stack.port);
  SipEvent inv = stack.expect(Kind::invite);
  stack.sip->reject(inv.dialog, 486, "all agents \"busy\"");
  SipEvent end = stack.expect(Kind::terminated);
  CHECK(end.dialog == inv.dialog);
  CHECK(end.cause == TerminationCause::local);
  CHECK(end.status == 486);
  sipp.expect_success();
}

TEST_CASE("SipStack: our hangup sends BYE with a Reason") {
  Stack stack;
  Sipp sipp("uac_wait_bye_hangup", stack.port);
  SipEvent inv = stack.expect(Kind::invite);
  stack.sip->answer(inv.dialog, sdp("unit-test 44 1", "sendrecv"));
  stack.expect(Kind::ack);
  stack.sip->hangup(inv.dialog, "flow finished");
  SipEvent end = stack.expect(Kind::terminated);
  CHECK(end.dialog == inv.dialog);
  CHECK(end.cause == TerminationCause::local);
  CHECK(end.status == 200);
  sipp.expect_success();
  stack.expect_quiet();
}

TEST_CASE("SipStack: hangup before the answer refuses the call with 480 and a Reason") {
  Stack stack;
  Sipp sipp("uac_hangup_unanswered", stack.port);
  SipEvent inv = stack.expect(Kind::invite);
  stack.sip->hangup(inv.dialog, "no agents");
  SipEvent end = stack.expect(Kind::terminated);
  CHECK(end.cause == TerminationCause::local);
  CHECK(end.status == 480);
  sipp.expect_success();
}

TEST_CASE("SipStack: hangup right after the answer still sends BYE (after the ACK)") {
  Stack stack;
  Sipp sipp("uac_wait_bye_hangup", stack.port);
  SipEvent inv = stack.expect(Kind::invite);
  stack.sip->answer(inv.dialog, sdp("unit-test 49 1", "sendrecv"));
  stack.sip->hangup(inv.dialog, "flow finished");  // most likely before the ACK is in
  stack.expect(Kind::ack);
  SipEvent end = stack.expect(Kind::terminated);
  CHECK(end.cause == TerminationCause::local);
  CHECK(end.status == 200);
  sipp.expect_success();
}

TEST_CASE("SipStack: re-INVITE (hold) is handed to the engine and answered by it") {
  Stack stack;
  Sipp sipp("uac_reinvite", stack.port);
  SipEvent inv = stack.expect(Kind::invite);
  stack.sip->answer(inv.dialog, sdp("unit-test 45 1", "sendrecv"));
  stack.expect(Kind::ack);
  SipEvent re = stack.expect(Kind::reinvite);
  CHECK(re.dialog == inv.dialog);
  CHECK(re.has_sdp);
  CHECK_MESSAGE(contains(re.sdp, "a=sendonly"), re.sdp);
  stack.sip->answer_reinvite(re.dialog, 200, sdp("unit-test 45 2", "recvonly"));
  SipEvent ack = stack.expect(Kind::ack);
  CHECK(ack.dialog == inv.dialog);
  SipEvent end = stack.expect(Kind::terminated);
  CHECK(end.cause == TerminationCause::remote_bye);
  sipp.expect_success();
}

TEST_CASE("SipStack: INFO DTMF in both formats; other bodies get 415 or 400") {
  Stack stack;
  Sipp sipp("uac_info", stack.port);
  SipEvent inv = stack.expect(Kind::invite);
  stack.sip->answer(inv.dialog, sdp("unit-test 46 1", "sendrecv"));
  stack.expect(Kind::ack);
  SipEvent five = stack.expect(Kind::info_dtmf);
  CHECK(five.dialog == inv.dialog);
  CHECK(five.dtmf.digit == '5');
  CHECK(five.dtmf.duration_ms == 160);
  CHECK(five.dtmf.source == ivr::media::DtmfSource::info);
  SipEvent seven = stack.expect(Kind::info_dtmf);
  CHECK(seven.dtmf.digit == '7');
  // text/plain (415) and the bad relay body (400) produce no events.
  SipEvent end = stack.expect(Kind::terminated);
  CHECK(end.cause == TerminationCause::remote_bye);
  sipp.expect_success();
}

TEST_CASE("SipStack: OPTIONS out of dialog is answered 200 over UDP and TCP") {
  SUBCASE("udp") {
    Stack stack(Transport::udp);
    Sipp sipp("uac_options", stack.port);
    sipp.expect_success();
    stack.expect_quiet(100ms);
  }
  SUBCASE("tcp") {
    Stack stack(Transport::tcp);
    Sipp sipp("uac_options", stack.port, "t1");
    sipp.expect_success();
    stack.expect_quiet(100ms);
  }
}

TEST_CASE("SipStack: udp_tcp binds both transports on one port") {
  uint16_t port = 0;
  for (int attempt = 0; attempt < 20 && port == 0; ++attempt) {
    UdpSocket probe;  // a UDP port whose TCP twin is free as well
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(probe.port);
    if (::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0) port = probe.port;
    ::close(fd);
  }
  REQUIRE(port != 0);
  Stack stack(Transport::udp_tcp, port);
  CHECK(stack.port == port);
  {
    Sipp udp("uac_options", stack.port, "u1");
    udp.expect_success();
  }
  {
    Sipp tcp("uac_options", stack.port, "t1");
    tcp.expect_success();
  }
}

TEST_CASE("SipStack: IPv6 loopback") {
  Stack stack(Transport::udp, 0, "::1");
  Sipp sipp("uac_options", stack.port, "u1", "::1");
  sipp.expect_success();
}

TEST_CASE("SipStack: malformed datagrams do not hurt the stack") {
  Stack stack;
  UdpSocket raw;
  const std::string port = std::to_string(stack.port);
  const std::string via = "Via: SIP/2.0/UDP 127.0.0.1:" + std::to_string(raw.port);
  raw.send_to(stack.port, std::string("\x00\x01\x02\xff garbage\r\n\r\n", 17));
  raw.send_to(stack.port, std::string(4000, 'A'));
  raw.send_to(stack.port, "INVITE sip:ivr@127.0.0.1 SIP/2.0\r\nVia: nonsense\r\n\r\n");
  raw.send_to(stack.port, "INVITE sip:ivr@127.0.0.1:" + port + " SIP/2.0\r\n" + via +
                              ";branch=z9hG4bK-bad-1\r\nCall-ID: bad-1\r\nCSeq: x INVITE\r\n"
                              "Content-Length: 9999\r\n\r\nv=0\r\n");
  // Mandatory From/To missing: Sofia answers 400.
  raw.send_to(stack.port, "OPTIONS sip:ivr@127.0.0.1:" + port + " SIP/2.0\r\n" + via +
                              ";branch=z9hG4bK-bad-2\r\nCall-ID: bad-2\r\nCSeq: 1 OPTIONS\r\n"
                              "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n");
  int replies = 0;
  while (auto reply = raw.receive(500ms)) {
    INFO("reply: " << *reply);
    CHECK(reply->rfind("SIP/2.0 400 ", 0) == 0);
    ++replies;
  }
  CHECK(replies >= 1);  // requests with a usable Via are refused, not ignored
  stack.expect_quiet(100ms);

  // Commands for dialogs that never existed are ignored.
  stack.sip->answer(987654, "v=0\r\n");
  stack.sip->hangup(987655, "nothing");
  stack.sip->answer_reinvite(987656, 200, "");

  Sipp sipp("uac_options", stack.port);
  sipp.expect_success();
  stack.expect_quiet(100ms);
}

TEST_CASE("SipStack: shutdown sends BYE with the reason to established calls") {
  Stack stack;
  Sipp sipp("uac_wait_bye_shutdown", stack.port);
  SipEvent inv = stack.expect(Kind::invite);
  stack.sip->answer(inv.dialog, sdp("unit-test 47 1", "sendrecv"));
  stack.expect(Kind::ack);

  auto t0 = std::chrono::steady_clock::now();
  stack.sip->shutdown("maintenance window");
  auto took = std::chrono::steady_clock::now() - t0;
  CHECK(took < 10s);
  SipEvent end = stack.expect(Kind::terminated, 1s);  // emitted before shutdown returned
  CHECK(end.dialog == inv.dialog);
  CHECK(end.cause == TerminationCause::shutdown);
  sipp.expect_success();

  stack.sip->shutdown("again");  // idempotent
  stack.sip->hangup(inv.dialog, "after shutdown");
  stack.expect_quiet(100ms);
  stack.sip.reset();  // the destructor after shutdown is a no-op
}

TEST_CASE("SipStack: shutdown refuses an unanswered call with 503 and the reason") {
  Stack stack;
  Sipp sipp("uac_shutdown_unanswered", stack.port);
  SipEvent inv = stack.expect(Kind::invite);
  stack.sip->shutdown("maintenance window");
  SipEvent end = stack.expect(Kind::terminated, 1s);
  CHECK(end.dialog == inv.dialog);
  CHECK(end.cause == TerminationCause::shutdown);
  CHECK(end.status == 503);
  sipp.expect_success();
}

TEST_CASE("SipStack: shutdown is bounded when the peer never answers our BYE") {
  Stack stack;
  Sipp sipp("uac_ignore_bye", stack.port);
  SipEvent inv = stack.expect(Kind::invite);
  stack.sip->answer(inv.dialog, sdp("unit-test 48 1", "sendrecv"));
  stack.expect(Kind::ack);
  auto t0 = std::chrono::steady_clock::now();
  stack.sip->shutdown("maintenance window");
  auto took = std::chrono::steady_clock::now() - t0;
  CHECK(took >= 1500ms);  // it waited for the BYE to be answered...
  CHECK(took < 6s);       // ...but not for Sofia's 32 s transaction timeout
  SipEvent end = stack.expect(Kind::terminated, 1s);
  CHECK(end.dialog == inv.dialog);
  CHECK(end.cause == TerminationCause::shutdown);
  sipp.expect_success();
  stack.expect_quiet(100ms);
}

TEST_CASE("SipStack: no ACK for our 200 ends the dialog with cause error (408)") {
  // A short 64*T1 keeps the test quick; the default is RFC 3261's 32 s.
  Stack stack(Transport::udp, 0, "127.0.0.1", 2000);
  SipEvent inv;
  {
    Sipp sipp("uac_invite_vanish", stack.port);
    inv = stack.expect(Kind::invite);
    sipp.expect_success();  // gone: the 200 will never be acknowledged
  }
  auto t0 = std::chrono::steady_clock::now();
  stack.sip->answer(inv.dialog, sdp("unit-test 50 1", "sendrecv"));
  SipEvent end = stack.expect(Kind::terminated, 10s);
  auto took = std::chrono::steady_clock::now() - t0;
  CHECK(end.dialog == inv.dialog);
  CHECK(end.cause == TerminationCause::error);
  CHECK(end.status == 408);
  CHECK(took >= 1500ms);  // the stack did wait for the ACK
  stack.expect_quiet();
}
